"""DOCX: paragraphs and tables in document order, as readable Markdown-like text.

The text is what a reader sees in Word: besides plain paragraphs, runs and tables, the
text inside content controls (block, inline, around table rows and cells; where Word
forms keep their fields), tracked insertions and moves, smart tags, custom XML, fields'
results and text boxes (after the paragraph anchoring them). Tracked deletions and
field codes stay out; checkboxes show as ☒/☐.

A DOCX is a zip of XML parts, which makes it the easiest format to weaponise: a few
kilobytes can unpack to gigabytes (zip bomb) or expand entities exponentially (billion
laughs). So before python-docx sees the bytes, the archive is checked from its
central directory alone (entry count, declared unpacked size, compression ratio), and
every part's prolog is scanned for a DTD, which Word never writes. Python's zipfile
refuses to read past a member's declared size (the CRC check fails), so a lying
directory cannot get past the size checks either. python-docx itself parses with
``resolve_entities=False``; the DTD check makes that a typed error instead of
silently dropped text.

Headings become ``#`` lines, list paragraphs ``- `` lines, table rows
``cell | cell`` lines: a model reads that structure, and chunking splits on the blank
lines between blocks.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any, NamedTuple
from xml.parsers import expat

import docx
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.oxml.table import CT_Row, CT_Tbl, CT_Tc
from docx.oxml.text.paragraph import CT_P
from docx.oxml.text.run import CT_R
from docx.text.paragraph import Paragraph
from lxml.etree import _Element

from fieldwise.document import Document

from .encoding import normalize_newlines
from .errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsafeDocumentError,
)
from .limits import ENV_VARS, Limits, check_chars, check_size, human_size

__all__ = ["check_archive", "load_docx"]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_RATIO_FLOOR = 1024 * 1024  # small members compress wildly (runs of spaces) and are harmless
_HEADING = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")


class _DoctypeFound(Exception):
    pass


class _PrologDone(Exception):
    pass


def _declares_dtd(stream: IO[bytes]) -> bool:
    """Whether an XML part declares a DTD, reading only up to its root element.

    A DTD can only come before the root element, so parsing stops there: the cost is
    one small read per part. Expat reports the ``<!DOCTYPE`` before it reads any
    entity declaration, so nothing is expanded. Parts that are not XML (images) fail
    on their first bytes and are left to python-docx.
    """

    def on_doctype(*_: Any) -> None:
        raise _DoctypeFound

    def on_element(*_: Any) -> None:
        raise _PrologDone

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = on_doctype
    parser.StartElementHandler = on_element
    try:
        while chunk := stream.read(64 * 1024):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _DoctypeFound:
        return True
    except (_PrologDone, expat.ExpatError):
        return False
    return False


def check_archive(archive: zipfile.ZipFile, name: str, limits: Limits) -> None:
    """Refuse zip bombs and XML with DTDs, before anything is unpacked in full.

    Sizes come from the central directory; zipfile enforces them while reading.
    """
    members = archive.infolist()
    if len(members) > limits.max_zip_entries:
        raise UnsafeDocumentError(
            f"the archive has {len(members):,} entries (cap {limits.max_zip_entries:,}); "
            f"a Word document has a few dozen. Raise {ENV_VARS['max_zip_entries']} if the "
            "file is genuine.",
            name=name,
        )
    unpacked = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    if unpacked > limits.max_unpacked_bytes:
        raise DocumentTooLargeError(
            f"it unpacks to {human_size(unpacked)}, over the "
            f"{human_size(limits.max_unpacked_bytes)} cap. Raise "
            f"{ENV_VARS['max_unpacked_bytes']} if the file is genuine.",
            name=name,
        )
    ratio_cap = limits.max_compression_ratio
    suspicious = [
        member
        for member in members
        if member.file_size > _RATIO_FLOOR and member.file_size > ratio_cap * member.compress_size
    ]
    if suspicious or (unpacked > _RATIO_FLOOR and unpacked > ratio_cap * max(packed, 1)):
        worst = suspicious[0] if suspicious else None
        detail = (
            f"{worst.filename!r} packs {human_size(worst.file_size)} into "
            f"{human_size(worst.compress_size)}"
            if worst is not None
            else f"{human_size(packed)} unpack to {human_size(unpacked)}"
        )
        raise UnsafeDocumentError(
            f"refusing a likely zip bomb: {detail}, more than {ratio_cap}x. Raise "
            f"{ENV_VARS['max_compression_ratio']} if the file is genuine.",
            name=name,
        )
    for member in members:
        if member.is_dir():
            continue
        with archive.open(member) as stream:
            if _declares_dtd(stream):
                raise UnsafeDocumentError(
                    f"part {member.filename!r} declares an XML DTD, which Word never "
                    "writes and which can hide an entity-expansion bomb; refusing it. "
                    "Re-save the file in Word or LibreOffice.",
                    name=name,
                )


def _clean(text: str) -> str:
    return _SPACES.sub(" ", normalize_newlines(text)).strip()


# The body is walked as lxml elements rather than through python-docx's block API,
# which only sees ``w:p``/``w:tbl``/``w:r``/``w:hyperlink`` children and so drops text
# wrapped in content controls (where Word forms keep their fields), tracked insertions,
# smart tags, custom XML, simple fields and text boxes. Runs are still read by
# python-docx (``CT_R.text``: text, tabs, breaks; not deleted text nor field codes).
_SDT = qn("w:sdt")
_SDT_PR = qn("w:sdtPr")
_SDT_CONTENT = qn("w:sdtContent")
_PLACEHOLDER_SHOWN = qn("w:showingPlcHdr")
_TXBX_CONTENT = qn("w:txbxContent")
_ROW_DELETED = f"{qn('w:trPr')}/{qn('w:del')}"
_FLD_CHAR = qn("w:fldChar")
_FF_DATA = qn("w:ffData")
_FF_CHECKBOX = qn("w:checkBox")
_FF_CHECKED = qn("w:checked")
_FF_DEFAULT = qn("w:default")
_W_VAL = qn("w:val")
_CHECKBOX = qn("w14:checkbox")
_CHECKED = qn("w14:checked")
_CHECKED_VAL = qn("w14:val")
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_ALTERNATE = f"{{{_MC}}}AlternateContent"
_CHOICE = f"{{{_MC}}}Choice"
_FALLBACK = f"{{{_MC}}}Fallback"
# Tracked deletions and the old place of moved text: struck through, not text.
_REMOVED = frozenset({qn("w:del"), qn("w:moveFrom")})
# Elements whose children are read as if they stood in the element's place.
_WRAPPERS = frozenset(
    {
        qn("w:customXml"),
        qn("w:smartTag"),
        qn("w:ins"),
        qn("w:moveTo"),
        qn("w:hyperlink"),
        qn("w:fldSimple"),
        qn("w:dir"),
        qn("w:bdo"),
    }
)
_BOXES = {True: "\u2612", False: "\u2610"}  # ☒ ☐
_FALSE = frozenset({"0", "false", "off"})


class _Para(NamedTuple):
    p: CT_P
    text: str


_Block = _Para | list[str]  # a paragraph, or a table's rows


def _chosen(alternate: _Element) -> _Element | None:
    """The branch of an ``mc:AlternateContent`` to read: Word writes a text box twice,
    as DrawingML (the first choice) and VML (the fallback); reading both doubles it."""
    choice = alternate.find(_CHOICE)
    return choice if choice is not None else alternate.find(_FALLBACK)


def _sdt_content(sdt: _Element) -> _Element | None:
    """A content control's contents, or None while it shows its placeholder ("Click or
    tap here to enter text."): an empty form field, which must not read as a value."""
    if sdt.find(f"{_SDT_PR}/{_PLACEHOLDER_SHOWN}") is not None:
        return None
    return sdt.find(_SDT_CONTENT)


def _unwrapped(parent: _Element) -> Iterator[_Element]:
    """``parent``'s children, looking through content controls and other wrappers."""
    for child in parent.iterchildren():
        tag = child.tag
        if tag in _REMOVED:
            continue
        if tag == _SDT:
            content = _sdt_content(child)
            if content is not None:
                yield from _unwrapped(content)
        elif tag in _WRAPPERS:
            yield from _unwrapped(child)
        elif tag == _ALTERNATE:
            chosen = _chosen(child)
            if chosen is not None:
                yield from _unwrapped(chosen)
        else:
            yield child


def _on(value: str | None) -> bool:
    return value is None or value.lower() not in _FALSE


def _form_checkbox(run: _Element) -> str:
    """The box of a legacy FORMCHECKBOX field, whose state is in its ``w:fldChar``."""
    for field in run.iterchildren(_FLD_CHAR):
        box = field.find(f"{_FF_DATA}/{_FF_CHECKBOX}")
        if box is None:
            continue
        checked = box.find(_FF_CHECKED)
        if checked is None:
            checked = box.find(_FF_DEFAULT)
            return _BOXES[checked is not None and _on(checked.get(_W_VAL))]
        return _BOXES[_on(checked.get(_W_VAL))]
    return ""


def _text_boxes(element: _Element) -> Iterator[_Element]:
    """``w:txbxContent`` under a run's drawing or VML shape, each once, in order."""
    for child in element.iterchildren():
        if child.tag == _TXBX_CONTENT:
            yield child
        elif child.tag == _ALTERNATE:
            chosen = _chosen(child)
            if chosen is not None:
                yield from _text_boxes(chosen)
        else:
            yield from _text_boxes(child)


def _inline(parent: _Element, parts: list[str], boxes: list[_Element]) -> None:
    """Append the text of a paragraph's runs to ``parts``, its text boxes to ``boxes``."""
    for child in parent.iterchildren():
        tag = child.tag
        if isinstance(child, CT_R):
            parts.append(_form_checkbox(child) + child.text)
            boxes.extend(_text_boxes(child))
        elif tag == _SDT:
            content = _sdt_content(child)
            start = len(parts)
            if content is not None:
                _inline(content, parts, boxes)
            checkbox = child.find(f"{_SDT_PR}/{_CHECKBOX}")
            if checkbox is not None and not "".join(parts[start:]).strip():
                # Word writes the box as a glyph run; draw it if that run is missing.
                checked = checkbox.find(_CHECKED)
                parts.append(_BOXES[checked is not None and _on(checked.get(_CHECKED_VAL))])
        elif tag in _WRAPPERS:
            _inline(child, parts, boxes)
        elif tag == _ALTERNATE:
            chosen = _chosen(child)
            if chosen is not None:
                _inline(chosen, parts, boxes)


def _blocks(container: _Element) -> Iterator[_Block]:
    """Paragraphs and tables of a body, cell or text box, in order; a paragraph's
    text boxes follow it."""
    for child in _unwrapped(container):
        if isinstance(child, CT_P):
            parts: list[str] = []
            boxes: list[_Element] = []
            _inline(child, parts, boxes)
            yield _Para(child, "".join(parts))
            for box in boxes:
                yield from _blocks(box)
        elif isinstance(child, CT_Tbl):
            yield _table_rows(child)


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except Exception:  # a broken styles part must not lose the text
        return ""
    return (style.name or "") if style is not None else ""


def _paragraph(paragraph: Paragraph, text: str) -> tuple[str, str]:
    """``(kind, text)`` for one paragraph; kind is heading, item or text."""
    text = _clean(text)
    if not text:
        return "text", ""
    style = _style_name(paragraph)
    heading = _HEADING.match(style)
    if heading:
        return "heading", "#" * int(heading.group(1)) + " " + text
    if style.lower() == "title":
        return "heading", "# " + text
    if style.lower().startswith("list"):
        return "item", "- " + text
    return "text", text


def _cell_text(tc: CT_Tc) -> str:
    """A cell's paragraphs and nested tables on one line, so a row stays one line."""
    parts: list[str] = []
    for block in _blocks(tc):
        if isinstance(block, _Para):
            text = _clean(block.text)
            if text:
                parts.append(text)
        else:
            parts.extend(f"[{row}]" for row in block)
    return " / ".join(parts)


def _table_rows(table: CT_Tbl) -> list[str]:
    """One ``a | b | c`` line per row; a merged cell is written once per row, and a
    vertically merged one again in each row it spans."""
    rows: list[str] = []
    above: dict[int, str] = {}  # grid column -> text of the cell starting there, row above
    for tr in _unwrapped(table):
        if not isinstance(tr, CT_Row):
            continue
        if tr.find(_ROW_DELETED) is not None:
            continue  # a tracked row deletion
        cells: list[str] = []
        here: dict[int, str] = {}
        column = tr.grid_before
        for tc in _unwrapped(tr):
            if not isinstance(tc, CT_Tc):
                continue
            text = above.get(column, "") if tc.vMerge == "continue" else _cell_text(tc)
            here[column] = text
            cells.append(text)
            column += max(tc.grid_span, 1)
        above = here
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _body_text(document: DocxDocument, name: str, limits: Limits) -> str:
    blocks: list[tuple[str, str]] = []
    total = 0
    for block in _blocks(document.element.body):
        if isinstance(block, _Para):
            kind, text = _paragraph(Paragraph(block.p, document), block.text)
        else:
            kind, text = "table", "\n".join(block)
        if not text:
            continue
        total += len(text) + 2
        check_chars(total, name, limits)
        blocks.append((kind, text))
    parts: list[str] = []
    for i, (kind, text) in enumerate(blocks):
        if i:
            # Items of one list stay together; every other block is its own paragraph.
            parts.append("\n" if kind == "item" and blocks[i - 1][0] == "item" else "\n\n")
        parts.append(text)
    return "".join(parts)


def _metadata(document: DocxDocument) -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        props = document.core_properties
        for key, value in (
            ("title", props.title),
            ("author", props.author),
            ("subject", props.subject),
            ("created", props.created),
            ("modified", props.modified),
        ):
            if isinstance(value, datetime):
                found[key] = value.isoformat()
            elif isinstance(value, str) and value.strip():
                found[key] = value.strip()
    except Exception:  # cosmetic: a damaged core.xml must not fail the load
        pass
    return found


def load_docx(data: bytes, name: str) -> Document:
    """Read a DOCX: archive checked first, then paragraphs and tables in order."""
    limits = Limits.from_env()
    check_size(data, name, limits)
    if not data:
        raise EmptyDocumentError("the file is empty (0 bytes).", name=name)
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise EncryptedDocumentError(
                "this Word document is password-protected (encrypted). Open it in Word, "
                "remove the password (File > Info > Protect Document), save, and retry.",
                name=name,
            )
        raise CorruptDocumentError(
            "this is a legacy binary Word file (.doc), not DOCX. Save it as .docx first.",
            name=name,
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise CorruptDocumentError(
            f"this is not a valid DOCX (a DOCX is a zip archive: {exc}). Re-save or "
            "re-download it.",
            name=name,
        ) from exc
    try:
        with archive:
            check_archive(archive, name, limits)
    except DocumentError:
        raise
    except Exception as exc:  # a member that fails its CRC or will not decompress
        raise CorruptDocumentError(
            f"this DOCX archive is damaged ({exc}). Re-save or re-download it.", name=name
        ) from exc
    try:
        document = docx.Document(io.BytesIO(data))
        text = _body_text(document, name, limits)
    except DocumentError:
        raise
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors...
        detail = str(exc).strip() or type(exc).__name__
        raise CorruptDocumentError(
            f"this is not a readable Word document ({detail}). Re-save it as .docx.",
            name=name,
        ) from exc
    if not text.strip():
        raise EmptyDocumentError("the document holds no text.", name=name)
    # Word lays pages out at render time, so the text is one page (no page numbers).
    return Document(text, metadata=_metadata(document), name=name)
