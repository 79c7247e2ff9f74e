"""DOCX: paragraphs and tables in document order, as readable Markdown-like text.

The text is what a reader sees in Word: besides plain paragraphs, runs and tables, the
text inside content controls (block, inline, around table rows and cells; where Word
forms keep their fields), tracked insertions and moves, smart tags, custom XML, fields'
results and text boxes (after the paragraph anchoring them). Tracked deletions, field
codes and hidden text (``w:vanish`` or ``w:specVanish`` on the run, or ``w:vanish`` from
its character style or a style that one is based on) stay out; checkboxes show as ☒/☐.
A line, page or column break ends a line, except inside a table cell, where the lines
join with `` / `` as the cell's paragraphs do, so a row stays one line.

Headers, footers, footnotes and endnotes are read too (an invoice's sender, address and
VAT number often live in its header or footer), with the same rules, and laid out
around the body so a model can tell them apart::

    Header:
    ACME Ltd, 1 Main Street
    VAT GB123456789

    <the body, with [^1] where it refers to footnote 1 and [^i] to endnote i>

    Footnotes:
    [^1]: Payable within 30 days.

    Endnotes:
    [^i]: See the terms.

    Footer:
    Registered in England No. 1234567

Each header or footer is one block (its paragraphs and table rows on single lines)
after its ``Header:``/``Footer:`` line. Those shown in Word are read, section by
section: the first-page one where the section has a different first page, the
default one, the even-page one where the document has different odd and even pages;
a section that links to the previous one's is not read again, and a text already read
(every section with the same letterhead) is written once. Notes are numbered in the
order the body refers to them (footnotes 1, 2, 3, endnotes i, ii, iii: Word's default
formats; decimal past 3999, where Roman numerals would grow without bound), and a note
nothing refers to comes after them, numbered on; a note with a custom mark (``*``) is
listed under that mark and takes no number, as in Word; Word's separator lines are not
notes. A header, footer or note whose markup python-docx refuses is skipped, losing it
alone; the labels and titles count towards the character cap with the text. Comments
are not read. Without headers, footers and notes the text is the body alone, as before;
with them it is still one page. The notes parts are
found through the document part's relationships; python-docx has no class for them, so
their XML goes through python-docx's own parser (no entity is expanded). The archive
checks below cover every part, these included, and the character cap counts the text
of all of them.

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
lines between blocks. Automatic numbers are written as Word draws them (``1.``,
``2.1``, ``(a)``, ``IV)``; see ``_Numbering``): before a list item instead of ``- ``,
before a numbered heading's or clause's text. Numbering in table cells, and number
formats other than decimal, letters and Roman numerals, are not rendered.
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
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.part import Part
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml
from docx.oxml.styles import CT_Styles
from docx.oxml.table import CT_Row, CT_Tbl, CT_Tc
from docx.oxml.text.paragraph import CT_P
from docx.oxml.text.run import CT_R
from docx.section import Section
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError, _Element

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
from .word_numbering import Numbering, on, roman

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
_FOOTNOTE_REFERENCE = qn("w:footnoteReference")
_ENDNOTE_REFERENCE = qn("w:endnoteReference")
_W_ID = qn("w:id")
_W_TYPE = qn("w:type")
_CUSTOM_MARK = qn("w:customMarkFollows")
_W_T = qn("w:t")
_BR = qn("w:br")
# What python-docx's CT_R.text reads, in the order it reads it.
_RUN_CONTENT = "w:br | w:cr | w:noBreakHyphen | w:ptab | w:t | w:tab"
_R_PR = qn("w:rPr")
_R_STYLE = qn("w:rStyle")
_VANISH = qn("w:vanish")
# "Always hidden", even when Word shows hidden text; Word writes it on the paragraph
# mark of a style separator, but on a run it hides the run just as surely.
_SPEC_VANISH = qn("w:specVanish")
_STYLE = qn("w:style")
_STYLE_ID = qn("w:styleId")
_BASED_ON = qn("w:basedOn")


class _Para(NamedTuple):
    p: CT_P
    text: str


_Block = _Para | list[str]  # a paragraph, or a table's rows


class _Notes:
    """A document's footnotes and endnotes (``w:footnote``/``w:endnote`` by ``w:id``,
    in file order), and the labels the text gives them: numbered in the order the text
    refers to them, as Word numbers them."""

    def __init__(
        self,
        notes: dict[str, dict[str, _Element]],
        hidden_styles: frozenset[str] = frozenset(),
    ) -> None:
        self.notes = notes  # kind ("footnote", "endnote") -> id -> element
        # Character styles that hide their runs: carried here because this object
        # already travels through every story's walk down to the runs.
        self.hidden_styles = hidden_styles
        self.labels: dict[str, dict[str, str]] = {kind: {} for kind in notes}
        self._numbered = dict.fromkeys(notes, 0)  # numbers given so far, by kind

    def label(self, kind: str, note_id: str) -> str:
        labels = self.labels[kind]
        if note_id not in labels:
            self._numbered[kind] += 1
            number = self._numbered[kind]
            # Roman numerals grow without bound; Word's own stop at 3999 too
            in_roman = kind == "endnote" and number < 4000
            labels[note_id] = roman(number) if in_roman else str(number)
        return labels[note_id]

    def marks(self, run: _Element) -> str:
        """``[^1]`` for a footnote reference in ``run``, ``[^i]`` for an endnote's; none
        for a reference to a note that is not there. A reference with a custom mark
        (``customMarkFollows``: the next run holds the mark, such as ``*``) takes no
        number, as in Word: the note is listed under that mark, which the text shows."""
        found: list[str] = []
        for reference in run.iterchildren(_FOOTNOTE_REFERENCE, _ENDNOTE_REFERENCE):
            kind = "footnote" if reference.tag == _FOOTNOTE_REFERENCE else "endnote"
            note_id = reference.get(_W_ID)
            if note_id is None or note_id not in self.notes[kind]:
                continue
            custom = reference.get(_CUSTOM_MARK)  # an attribute: absent means off
            if custom is not None and on(custom):
                mark = _custom_mark(run, reference)
                if mark and note_id not in self.labels[kind]:
                    self.labels[kind][note_id] = mark
                    continue
            found.append(f"[^{self.label(kind, note_id)}]")
        return "".join(found)


def _custom_mark(run: _Element, reference: _Element) -> str:
    """A custom note mark: the text after the reference in its run (where Word writes
    it), else the next run's text; stripped."""
    after = "".join(t.text or "" for t in reference.itersiblings(_W_T)).strip()
    if after:
        return after
    following = run.getnext()
    return following.text.strip() if isinstance(following, CT_R) else ""


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


def _form_checkbox(run: _Element) -> str:
    """The box of a legacy FORMCHECKBOX field, whose state is in its ``w:fldChar``."""
    for field in run.iterchildren(_FLD_CHAR):
        box = field.find(f"{_FF_DATA}/{_FF_CHECKBOX}")
        if box is None:
            continue
        checked = box.find(_FF_CHECKED)
        if checked is None:
            checked = box.find(_FF_DEFAULT)
            return _BOXES[checked is not None and on(checked.get(_W_VAL))]
        return _BOXES[on(checked.get(_W_VAL))]
    return ""


def _run_text(run: CT_R) -> str:
    """A run's text as python-docx reads it (``CT_R.text``), except that a page or
    column break ends a line as a line break does: python-docx reads them as nothing,
    which glues the words on either side ("99.00Terms")."""
    return "".join("\n" if item.tag == _BR else str(item) for item in run.xpath(_RUN_CONTENT))


def _hidden(run: CT_R, hidden_styles: frozenset[str]) -> bool:
    """Whether Word hides the run (``w:vanish``): set on the run, which wins, or by its
    character style. Hidden text is not what a reader sees (internal notes, costs)."""
    properties = run.find(_R_PR)
    if properties is None:
        return False
    always = properties.find(_SPEC_VANISH)
    if always is not None and on(always.get(_W_VAL)):
        return True
    vanish = properties.find(_VANISH)
    if vanish is not None:
        return on(vanish.get(_W_VAL))
    style = properties.find(_R_STYLE)
    return style is not None and style.get(_W_VAL) in hidden_styles


def _hidden_styles(document: DocxDocument) -> frozenset[str]:
    """The ids of character styles that hide their text, set on them or on a style they
    are based on (the nearest setting wins); read once per document."""
    try:
        root = document.styles.element
    except Exception:  # a missing or broken styles part hides nothing
        return frozenset()
    styles: dict[str, _Element] = {}
    for style in root.iterchildren(_STYLE):
        style_id = style.get(_STYLE_ID)
        if style_id is not None and style.get(_W_TYPE) == "character":
            styles[style_id] = style
    hidden: set[str] = set()
    for style_id in styles:
        current: str | None = style_id
        seen: set[str] = set()
        while current in styles and current not in seen:  # basedOn loops end too
            seen.add(current)
            vanish = styles[current].find(f"{_R_PR}/{_VANISH}")
            if vanish is not None:
                if on(vanish.get(_W_VAL)):
                    hidden.add(style_id)
                break
            based_on = styles[current].find(_BASED_ON)
            current = based_on.get(_W_VAL) if based_on is not None else None
    return frozenset(hidden)


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


def _inline(parent: _Element, parts: list[str], boxes: list[_Element], notes: _Notes) -> None:
    """Append the text of a paragraph's runs to ``parts``, its text boxes to ``boxes``."""
    for child in parent.iterchildren():
        tag = child.tag
        if isinstance(child, CT_R):
            if _hidden(child, notes.hidden_styles):
                continue
            parts.append(_form_checkbox(child) + _run_text(child) + notes.marks(child))
            boxes.extend(_text_boxes(child))
        elif tag == _SDT:
            content = _sdt_content(child)
            start = len(parts)
            if content is not None:
                _inline(content, parts, boxes, notes)
            checkbox = child.find(f"{_SDT_PR}/{_CHECKBOX}")
            if checkbox is not None and not "".join(parts[start:]).strip():
                # Word writes the box as a glyph run; draw it if that run is missing.
                checked = checkbox.find(_CHECKED)
                parts.append(_BOXES[checked is not None and on(checked.get(_CHECKED_VAL))])
        elif tag in _WRAPPERS:
            _inline(child, parts, boxes, notes)
        elif tag == _ALTERNATE:
            chosen = _chosen(child)
            if chosen is not None:
                _inline(chosen, parts, boxes, notes)


def _blocks(container: _Element, notes: _Notes) -> Iterator[_Block]:
    """Paragraphs and tables of a body, header, footer, note, cell or text box, in
    order; a paragraph's text boxes follow it."""
    for child in _unwrapped(container):
        if isinstance(child, CT_P):
            parts: list[str] = []
            boxes: list[_Element] = []
            _inline(child, parts, boxes, notes)
            yield _Para(child, "".join(parts))
            for box in boxes:
                yield from _blocks(box, notes)
        elif isinstance(child, CT_Tbl):
            yield _table_rows(child, notes)


def _style_name(paragraph: Paragraph, names: dict[str | None, str]) -> str:
    """The paragraph's style name, looked up once per style id (``names`` caches them).

    Why the cache: python-docx finds the default paragraph style, which every paragraph
    without a ``pStyle`` has, by scanning every style of the document each time; a
    20,000-paragraph document took ~11 s to read, almost all of it there."""
    try:
        style_id = paragraph._p.style
        if style_id in names:
            return names[style_id]
        style = paragraph.style
    except Exception:  # a broken styles part or pStyle must not lose the text
        return ""
    name = (style.name or "") if style is not None else ""
    names[style_id] = name
    return name


def _numbering(document: DocxDocument) -> Numbering:
    styles: CT_Styles | None = None
    try:
        styles = document.styles.element
        root = _part_xml(document.part.part_related_by(RT.NUMBERING))
    except Exception:  # no numbering part (KeyError), or a broken one: no numbers
        root = None
    return Numbering(styles, root)


def _paragraph(
    paragraph: Paragraph, text: str, names: dict[str | None, str], number: str | None = None
) -> tuple[str, str]:
    """``(kind, text)`` for one paragraph; kind is heading, item or text. ``number`` is
    its automatic number ("2.1"), "" for a bullet, None when it has none."""
    text = _clean(text)
    if not text:
        return "text", ""
    style = _style_name(paragraph, names)
    numbered = f"{number} {text}" if number else text
    heading = _HEADING.match(style)
    if heading:
        return "heading", "#" * int(heading.group(1)) + " " + numbered
    if style.lower() == "title":
        return "heading", "# " + numbered
    if style.lower().startswith("list") or number == "":
        # A list paragraph, or one with a bullet: an item; its number, else "- ".
        return "item", numbered if number else "- " + text
    # A numbered paragraph of another style (a contract's clauses) stays a paragraph.
    return "text", numbered


def _cell_text(tc: CT_Tc, notes: _Notes) -> str:
    """A cell's paragraphs and nested tables on one line, so a row stays one line."""
    parts: list[str] = []
    for block in _blocks(tc, notes):
        if isinstance(block, _Para):
            # A line break (Shift+Enter, as in an address) joins like a paragraph does:
            # a row split over several lines no longer reads as one row.
            lines = (line.strip() for line in _clean(block.text).split("\n"))
            parts.extend(line for line in lines if line)
        else:
            parts.extend(f"[{row}]" for row in block)
    return " / ".join(parts)


def _table_rows(table: CT_Tbl, notes: _Notes) -> list[str]:
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
            text = above.get(column, "") if tc.vMerge == "continue" else _cell_text(tc, notes)
            here[column] = text
            cells.append(text)
            column += max(tc.grid_span, 1)
        above = here
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


class _Reader:
    """Reads a document's stories (body, headers, footers, notes) into ``(kind, text)``
    blocks, counting every story's text against the character cap."""

    def __init__(self, document: DocxDocument, name: str, limits: Limits) -> None:
        self.document = document
        self.name = name
        self.limits = limits
        self.total = 0
        self.notes = _Notes(_note_parts(document), _hidden_styles(document))
        self.style_names: dict[str | None, str] = {}  # by style id (see _style_name)
        self.numbering = _numbering(document)

    def blocks(self, container: _Element) -> list[tuple[str, str]]:
        """The non-empty blocks of a ``w:body``, ``w:hdr``, ``w:ftr`` or note."""
        found: list[tuple[str, str]] = []
        for block in _blocks(container, self.notes):
            if isinstance(block, _Para):
                paragraph = Paragraph(block.p, self.document)
                number = self.numbering.label(block.p)  # empty paragraphs count too
                kind, text = _paragraph(paragraph, block.text, self.style_names, number)
            else:
                kind, text = "table", "\n".join(block)
            if not text:
                continue
            self.count(text + "\n\n")
            found.append((kind, text))
        return found

    def lines(self, container: _Element) -> str:
        """A header, footer or note as one block: its paragraphs and rows on single lines."""
        return "\n".join(text for _, text in self.blocks(container))

    def count(self, text: str) -> None:
        """Text the layout adds around the stories (titles, note labels) counts too."""
        self.total += len(text)
        check_chars(self.total, self.name, self.limits)

    def story(self, container: _Element) -> str:
        """``lines`` of a header, footer or note; one that python-docx cannot read (markup
        it refuses) is skipped, losing that story, never the document (the character cap
        still stops the reading)."""
        try:
            return self.lines(container)
        except DocumentError:
            raise
        except Exception:
            return ""


def _body(blocks: list[tuple[str, str]]) -> str:
    parts: list[str] = []
    for i, (kind, text) in enumerate(blocks):
        if i:
            # Items of one list stay together; every other block is its own paragraph.
            parts.append("\n" if kind == "item" and blocks[i - 1][0] == "item" else "\n\n")
        parts.append(text)
    return "".join(parts)


# The Section attributes of the headers and footers, in the order their pages come.
_HEADERS = ("first_page_header", "header", "even_page_header")
_FOOTERS = ("first_page_footer", "footer", "even_page_footer")


def _even_pages(document: DocxDocument) -> bool:
    """Whether even pages get their own headers and footers (a document-wide setting)."""
    try:
        return bool(document.settings.odd_and_even_pages_header_footer)
    except Exception:  # a damaged settings part: the default (not distinct) must not lose text
        return False


def _shown(section: Section, attribute: str, even_pages: bool) -> bool:
    """Whether Word shows this kind of header or footer in ``section``: the first-page
    and even-page ones are kept, but hidden, when their option is off."""
    if attribute.startswith("first_page"):
        return bool(section.different_first_page_header_footer)
    if attribute.startswith("even_page"):
        return even_pages
    return True


def _own_part(story: Any) -> Part | None:
    """The part holding a section's own header or footer (``story`` is a python-docx
    ``_Header``/``_Footer`` that is not linked to the previous section's); None when
    the reference's relationship is missing."""
    try:
        part: Part = story.part
    except KeyError:
        return None
    return part


def _margins(reader: _Reader, attributes: tuple[str, str, str], label: str) -> list[str]:
    """``Header:``/``Footer:`` blocks, one per different text, in the order sections
    (and in a section, the first, odd and even pages) show them. A section linked to
    the previous one shows what that one defines, or inherits in turn: carried along,
    so many sections cost no more than one pass."""
    even_pages = _even_pages(reader.document)
    inherited: dict[str, Part | None] = {}
    parts_read: set[str] = set()
    texts: dict[str, None] = {}  # in order, each once
    for section in reader.document.sections:
        for attribute in attributes:
            try:  # markup python-docx refuses in one reference loses that one alone
                story = getattr(section, attribute)
                if not story.is_linked_to_previous:
                    inherited[attribute] = _own_part(story)
                part = inherited.get(attribute)
                if part is None or not _shown(section, attribute, even_pages):
                    continue
            except Exception:
                continue
            if str(part.partname) in parts_read:
                continue
            parts_read.add(str(part.partname))
            element = getattr(part, "element", None)  # not XML when the relationship is wrong
            if element is None or element.tag not in (_HDR, _FTR):
                continue
            text = reader.story(element)
            if text and text not in texts:
                reader.count(f"{label}:\n\n\n")
                texts[text] = None
    return [f"{label}:\n{text}" for text in texts]


_HDR = qn("w:hdr")
_FTR = qn("w:ftr")
_NOTE_PARTS = (
    ("footnote", RT.FOOTNOTES, qn("w:footnote")),
    ("endnote", RT.ENDNOTES, qn("w:endnote")),
)


def _part_xml(part: Part) -> _Element | None:
    """A part's root element, parsed by python-docx's own parser when python-docx left
    it as bytes (it has no class for notes): ``resolve_entities=False``, and DTDs were
    refused with the archive. A part that is not well-formed XML reads as None."""
    element = getattr(part, "element", None)
    if element is not None:
        return element
    try:
        return parse_xml(part.blob)
    except (XMLSyntaxError, ValueError):
        return None


def _note_parts(document: DocxDocument) -> dict[str, dict[str, _Element]]:
    """The footnotes and endnotes, by kind and ``w:id``, in file order; the separator
    lines and continuation notices Word keeps among them (``w:type`` set) are left out."""
    found: dict[str, dict[str, _Element]] = {}
    for kind, reltype, tag in _NOTE_PARTS:
        notes: dict[str, _Element] = {}
        found[kind] = notes
        try:
            part = document.part.part_related_by(reltype)
        except (KeyError, ValueError):  # none, several, or an external target
            continue
        root = _part_xml(part)
        if root is None:
            continue
        for note in root.iterchildren(tag):
            note_id = note.get(_W_ID)
            if note_id is not None and note.get(_W_TYPE, "normal") == "normal":
                notes.setdefault(note_id, note)
    return found


def _notes_block(reader: _Reader, kind: str, title: str) -> str:
    """``Footnotes:`` and a ``[^label]: text`` line per note: those the text refers to
    in the order it does, then any it never refers to (not shown by Word, but text the
    file holds), numbered on."""
    notes = reader.notes
    lines: list[str] = []
    listed: set[str] = set()

    def add(label: str, text: str) -> None:
        reader.count(f"[^{label}]: \n")  # the text itself was counted as it was read
        lines.append(f"[^{label}]: {text}")

    for note_id, label in list(notes.labels[kind].items()):
        listed.add(note_id)
        text = reader.story(notes.notes[kind][note_id])
        if text:
            add(label, text)
    for note_id, note in notes.notes[kind].items():
        if note_id in listed:
            continue
        text = reader.story(note)
        if text:
            add(notes.label(kind, note_id), text)
    if lines:
        reader.count(f"{title}:\n\n\n")
    return f"{title}:\n" + "\n".join(lines) if lines else ""


def _document_text(document: DocxDocument, name: str, limits: Limits) -> str:
    """Headers, body, footnotes, endnotes, footers, in that order (see the module's
    docstring); the body alone is as before when there are none of the others."""
    reader = _Reader(document, name, limits)
    # Notes are numbered as the text refers to them, so they are read last.
    body = _body(reader.blocks(document.element.body))
    headers = _margins(reader, _HEADERS, "Header")
    footers = _margins(reader, _FOOTERS, "Footer")
    footnotes = _notes_block(reader, "footnote", "Footnotes")
    endnotes = _notes_block(reader, "endnote", "Endnotes")
    return "\n\n".join(part for part in (*headers, body, footnotes, endnotes, *footers) if part)


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


# Zip-based files that get renamed .docx by mistake, by a member only they have.
_OTHER_PACKAGES = (
    ("xl/", "an Excel workbook (.xlsx)"),
    ("ppt/", "a PowerPoint presentation (.pptx)"),
    ("content.xml", "an OpenDocument file (.odt, .ods...)"),
)


def _unreadable(name: str, exc: BaseException, members: list[str]) -> CorruptDocumentError:
    """The error for a zip python-docx cannot read. One without Word's ``word/`` part
    is not a Word document at all, which python-docx's own error does not say (for a
    bare ``[Content_Types].xml`` it is an AttributeError on an lxml element)."""
    if not any(member.startswith("word/") for member in members):
        kinds = (
            kind for prefix, kind in _OTHER_PACKAGES if any(m.startswith(prefix) for m in members)
        )
        kind = next(kinds, None)
        looks = f"; it looks like {kind}" if kind else ""
        return CorruptDocumentError(
            f"this is not a readable Word document: the zip archive has no Word document "
            f"part{looks}. Check the file type, or save it as .docx in Word.",
            name=name,
        )
    detail = str(exc).strip() or type(exc).__name__
    return CorruptDocumentError(
        f"this is not a readable Word document ({detail}). Re-save it as .docx.", name=name
    )


def load_docx(data: bytes, name: str) -> Document:
    """Read a DOCX: archive checked first, then headers, body, notes and footers."""
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
            members = archive.namelist()
    except DocumentError:
        raise
    except Exception as exc:  # a member that fails its CRC or will not decompress
        raise CorruptDocumentError(
            f"this DOCX archive is damaged ({exc}). Re-save or re-download it.", name=name
        ) from exc
    try:
        document = docx.Document(io.BytesIO(data))
        text = _document_text(document, name, limits)
    except DocumentError:
        raise
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors...
        raise _unreadable(name, exc, members) from exc
    if not text.strip():
        raise EmptyDocumentError("the document holds no text.", name=name)
    # Word lays pages out at render time, so the text is one page (no page numbers).
    return Document(text, metadata=_metadata(document), name=name)
