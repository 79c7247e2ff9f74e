"""Reading and editing SpreadsheetML as text.

A fill changes a few cells of one sheet; everything else in the workbook must come out
as it went in. So parts are edited where they stand, by splicing new markup between the
bytes that stay, never parsed into objects and written back out (which is what loses
charts, drawings and extensions elsewhere, and costs seconds on a large sheet).

The patterns here are only ever used on markup that holds no comments, CDATA sections,
processing instructions or document type declarations (``plain_markup`` makes sure): in
such XML a ``<`` always opens a tag, so an element's extent can be found by its name.
Entities are never expanded, only the five predefined ones and character references are
decoded, so no part can use entity expansion or external entities against us.
"""

from __future__ import annotations

import codecs
import re
import sys
from functools import cache
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml.ElementTree import fromstring as _defused_fromstring
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from fieldwise.tables import TableError

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"

#: A start tag's attributes; a quoted value may hold ``>``.
_ATTRIBUTES = r"""((?:[^>"']|"[^"]*"|'[^']*')*?)"""
_ATTRIBUTE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REFERENCE = re.compile(r"&(?:#(\d+)|#x([0-9a-fA-F]+)|(lt|gt|amp|quot|apos));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_ROOT = re.compile(r"<(?:([\w.-]+):)?(\w+)[\s>]")
_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
_ENCODING = re.compile(r"""\A\s*<\?xml[^>]*?\sencoding\s*=\s*["']([\w.:-]+)["']""")
#: Characters XML cannot carry at all (beyond the control characters openpyxl strips).
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def qualified(prefix: str, name: str) -> str:
    """An element's tag as the part writes it: ``name``, or ``prefix:name``."""
    return f"{prefix}:{name}" if prefix else name


@cache
def element(prefix: str, name: str) -> re.Pattern[str]:
    """``<name attrs/>`` or ``<name attrs>body</name>``: groups 1 (attributes), 2 (``/>``
    for an empty element) and 3 (the body). Elements of this name must not nest."""
    tag = qualified(prefix, name)
    return re.compile(
        rf"<{re.escape(tag)}(?=[\s/>]){_ATTRIBUTES}(/>|>(.*?)</{re.escape(tag)}\s*>)", re.S
    )


@cache
def start_tag(prefix: str, name: str) -> re.Pattern[str]:
    """An element's start tag alone (group 1: attributes, group 2: ``/`` when empty)."""
    tag = qualified(prefix, name)
    return re.compile(rf"<{re.escape(tag)}(?=[\s/>]){_ATTRIBUTES}(/?)>", re.S)


def attributes(text: str) -> dict[str, str]:
    """A start tag's attributes, values decoded."""
    return {m[1]: unescape(m[2] if m[2] is not None else m[3]) for m in _ATTRIBUTE.finditer(text)}


def unescape(text: str) -> str:
    """Character data as an XML parser gives it: line ends normalized to ``\n`` (a
    literal CR is never data; ``&#13;`` is), then references decoded."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "&" not in text:
        return text
    return _REFERENCE.sub(_decode_reference, text)


def _decode_reference(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name:
        return _NAMED[name]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code > sys.maxunicode:
        raise TableError(f"{match[0]} is not a character; the file is damaged.")
    return chr(code)


def text(value: str) -> str:
    """Character data for an element: characters XML cannot carry dropped, markup
    escaped, a CR kept as a reference (a literal one would be read as a line end)."""
    return escape(_xml_characters(value), {"\r": "&#13;"})


def quoted(value: str) -> str:
    """An attribute value, with its double quotes; tabs and line ends as references, which
    attribute normalization would otherwise turn into spaces."""
    entities = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
    return '"' + escape(_xml_characters(value), entities) + '"'


def _xml_characters(value: str) -> str:
    return _NOT_XML.sub("", ILLEGAL_CHARACTERS_RE.sub("", value))


def root_prefix(xml: str, part: str) -> str:
    """The prefix the part's root element is written with (usually none), after checking
    that it is transitional SpreadsheetML, the only kind Excel writes by default."""
    match = _ROOT.search(xml, _after_declaration(xml))
    if match is None:
        raise TableError(f"{part}: no root element.")
    prefix = match[1] or ""
    declaration = f"xmlns:{prefix}=" if prefix else "xmlns="
    namespace = re.search(re.escape(declaration) + r"""["']([^"']*)["']""", xml[match.start() :])
    uri = namespace[1] if namespace else ""
    if uri == STRICT_NS:
        raise TableError(
            f"{part} is in Strict Open XML form; save the workbook as an ordinary "
            "Excel Workbook (.xlsx) and try again."
        )
    if uri != MAIN_NS:
        raise TableError(f"{part}: not a SpreadsheetML part (namespace {uri or 'missing'}).")
    return prefix


def _after_declaration(xml: str) -> int:
    declaration = _DECLARATION.match(xml)
    return declaration.end() if declaration else 0


def plain_markup(data: bytes, part: str) -> str:
    """A part's text, refused if it declares a document type (no Office part does; it is
    how entity attacks begin). A part in another encoding than UTF-8, or holding comments,
    CDATA or processing instructions, is first re-serialized by a real parser into plain
    UTF-8 markup, so that the patterns above can read it and what is written back is
    what its declaration says."""
    xml = _utf8_text(data)
    if xml is None:
        return _reserialized(data, part)
    body = xml[_after_declaration(xml) :]
    if "<!DOCTYPE" in body or "<!ENTITY" in body:
        raise TableError(f"{part} declares a document type, which no Excel file does; refused.")
    if "<!--" in body or "<![CDATA[" in body or "<?" in body:
        return _reserialized(data, part)
    return xml


def _utf8_text(data: bytes) -> str | None:
    """The part as text when it is UTF-8 (as declared, or by default), else ``None``."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    declared = _ENCODING.match(data[:256].decode("ascii", "replace"))
    try:
        if declared and codecs.lookup(declared[1]).name != "utf-8":
            return None
    except LookupError:  # an encoding Python does not know: let the parser say
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _reserialized(data: bytes, part: str) -> str:
    from lxml import etree

    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, LookupError) as exc:
        raise TableError(f"{part}: not well-formed XML ({exc}).") from None
    if root.getroottree().docinfo.doctype:
        raise TableError(f"{part} declares a document type, which no Excel file does; refused.")
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + str(
        etree.tostring(root, encoding="unicode")
    )


def _parser() -> Any:
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
        huge_tree=True,
    )


def read_tree(data: bytes, part: str) -> Element:
    """A small part (workbook, relationships, strings, a table) parsed for reading only,
    by ``defusedxml``: entity tricks raise instead of expanding."""
    try:
        tree: Element = _defused_fromstring(data)
        return tree
    except Exception as exc:  # defusedxml's refusals and expat's syntax errors alike
        raise TableError(f"{part}: not readable XML ({type(exc).__name__}: {exc}).") from None


def start_of(markup: str) -> str:
    """The start tag of an element's markup."""
    return markup[: markup.index(">") + 1]


_ATTR_IN_TAG = r"""(\s{name}\s*=\s*)(?:"[^"]*"|'[^']*')"""


def with_attributes(markup: str, changes: dict[str, str]) -> str:
    """``markup`` (an element) with these attributes of its start tag set."""
    end = markup.index(">")
    if markup[end - 1] == "/":
        end -= 1
    tag, rest = markup[:end], markup[end:]
    for name, value in changes.items():
        pattern = re.compile(_ATTR_IN_TAG.format(name=re.escape(name)))
        found = pattern.search(tag)
        if found is not None:
            tag = tag[: found.start()] + found[1] + quoted(value) + tag[found.end() :]
        else:
            tag += f" {name}={quoted(value)}"
    return tag + rest


def text_of(body: str, prefix: str) -> str:
    """The text of an ``<is>`` or ``<si>`` body: its plain text or runs, without phonetic
    guides (``<rPh>``), as Excel shows it."""
    if "rPh" in body:
        body = element(prefix, "rPh").sub("", body)
    return "".join(unescape(m[3] or "") for m in element(prefix, "t").finditer(body))


def with_body(
    xml: str, found: re.Match[str], tag: str, body: str, *, count: int | None = None
) -> str:
    """``xml`` with the element ``found`` (a match of ``element``, written ``tag``) given
    this body, and this ``count`` attribute when one is given; an empty element is
    opened."""
    start = start_of(found[0])
    if count is not None:
        start = with_attributes(start, {"count": str(count)})
    if start.endswith("/>"):
        start = start[:-2] + ">"
    return xml[: found.start()] + start + body + f"</{tag}>" + xml[found.end() :]
