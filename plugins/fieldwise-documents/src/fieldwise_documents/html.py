"""HTML: the text a reader sees, with block structure kept as line breaks.

Parsed with selectolax (lexbor, an HTML5-conformant C parser, so tag soup becomes the
tree a browser would build). The bytes are decoded here first (BOM, then ``<meta
charset>``, then UTF-8, then Windows-1252, as browsers do) so the encoding used is known
and recorded. Then one walk over the tree: scripts, styles, ``noscript``, templates,
embedded objects and ``hidden`` elements are skipped; block elements end lines
(paragraph-level ones leave a blank line, which chunking splits on); headings become
``#`` lines, list items ``- `` lines and table rows ``cell | cell`` lines (header rows
first and footer rows last, as browsers draw them). The walk uses an explicit stack, so
absurdly deep nesting cannot overflow Python's recursion.

Elements hidden by an inline ``style`` (``display: none``, ``visibility: hidden``; the
preheader of a marketing email) are skipped like ``hidden`` ones; stylesheets and
classes are not evaluated. Form controls show their values where they stand, next to
their labels: an ``<input>``'s value (not a password's or hidden input's; ☒/☐ for a
checkbox or radio button), a ``<select>``'s selected options, a ``<textarea>``'s text.
The content of a closed ``<details>`` is read: a browser shows only its summary until
it is opened, but the content is part of the document.
"""

from __future__ import annotations

import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from fieldwise.document import Document

from .encoding import declared_html_encoding, decode_bytes, looks_binary, normalize_newlines
from .errors import CorruptDocumentError, EmptyDocumentError, UnsafeDocumentError
from .limits import Limits, check_chars, check_size

__all__ = ["html_to_text", "load_html"]

# Content that is not text a reader sees.
_SKIP = frozenset(
    {
        "head", "script", "style", "noscript", "template", "svg", "canvas", "iframe",
        "object", "embed", "datalist", "audio", "video", "picture", "map",
    }
)  # fmt: skip
# Blocks that stand as paragraphs: a blank line around them.
_PARAGRAPH = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "blockquote",
        "pre", "figure", "hr", "section", "article", "header", "footer", "main", "aside",
        "nav", "form", "fieldset", "address", "details", "hgroup",
    }
)  # fmt: skip
# Blocks that only start a new line.
_LINE = frozenset(
    {
        "div", "li", "dt", "dd", "tr", "caption", "figcaption", "summary", "legend",
        "center", "dialog", "menu", "search", "body", "html", "option",
    }
)  # fmt: skip
_PREFORMATTED = frozenset({"pre", "textarea", "listing", "xmp", "plaintext"})
_HEADINGS = {f"h{level}": "#" * level + " " for level in range(1, 7)}
_SPACE = re.compile(r"[ \t\n\r\f\v\xa0]+")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")
_MAX_TABLE_DEPTH = 8  # deeper tables are walked as plain blocks
# An inline style that hides the element (email preheaders): a declaration of its own,
# ``!important`` or not. No CSS engine: stylesheets and classes are not looked at.
_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))\s*"
    r"(?:!\s*important\s*)?(?:;|$)",
    re.IGNORECASE,
)
# <input> types whose value is not text a reader sees as typed in: secrets, hidden
# data, buttons (their value is a caption), files and sliders.
_NO_VALUE_INPUTS = frozenset(
    {"hidden", "password", "submit", "reset", "button", "image", "file", "range", "color"}
)
_BOXES = {True: "\u2612", False: "\u2610"}  # ☒ ☐, as the DOCX loader draws them


def _children(node: LexborNode) -> list[LexborNode]:
    found: list[LexborNode] = []
    child = node.child
    while child is not None:
        found.append(child)
        child = child.next
    return found


class _Writer:
    """Accumulates text, turning requested breaks and prefixes into output lazily.

    Breaks and prefixes are only written when text follows, so empty elements leave no
    stray blank lines or dangling ``- `` markers.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.breaks = 0
        self.prefix = ""

    def request_break(self, count: int) -> None:
        self.breaks = max(self.breaks, count)

    def text(self, value: str, *, preformatted: bool = False) -> None:
        if not preformatted:
            value = _SPACE.sub(" ", value)
            last = self.parts[-1] if self.parts else "\n"
            if self.breaks or self.prefix or last.endswith((" ", "\n")):
                value = value.lstrip(" ")
        if not value:
            return
        if self.breaks and self.parts:
            self.parts.append("\n" * self.breaks)
        self.breaks = 0
        if self.prefix:
            self.parts.append(self.prefix)
            self.prefix = ""
        self.parts.append(value)

    def result(self) -> str:
        text = _TRAILING.sub("\n", "".join(self.parts))
        return _BLANK_RUNS.sub("\n\n", text).strip()


def _shown(node: LexborNode) -> bool:
    """Whether ``node`` can reach the reader: not a script, style or other non-text element,
    nor ``hidden``, nor hidden by its inline style. One rule for the whole walk, tables
    included."""
    if (node.tag or "") in _SKIP:
        return False
    attrs = node.attrs
    if "hidden" in attrs:
        return False
    style = attrs.get("style")
    return not (style and _HIDING_STYLE.search(style))


def _control_value(node: LexborNode) -> str:
    """What a form control shows: an ``<input>``'s value (☒/☐ for a checkbox or radio
    button), a ``<select>``'s selected options. Password and hidden inputs, buttons and
    placeholders are not values. A ``<textarea>``'s content is text of the page already."""
    attrs = node.attrs
    if node.tag == "select":
        chosen = [option for option in node.css("option") if "selected" in option.attrs]
        return ", ".join(_SPACE.sub(" ", option.text()).strip() for option in chosen)
    kind = (attrs.get("type") or "text").strip().lower()
    if kind in ("checkbox", "radio"):
        return _BOXES["checked" in attrs]
    if kind in _NO_VALUE_INPUTS:
        return ""
    return attrs.get("value") or ""


def _shown_children(node: LexborNode, *tags: str) -> list[LexborNode]:
    return [child for child in _children(node) if child.tag in tags and _shown(child)]


def _inline(node: LexborNode, depth: int) -> str:
    """``node``'s visible text on one line (its own lines joined with `` / ``)."""
    return " / ".join(line for line in _render(node, depth).splitlines() if line.strip())


def _table_lines(table: LexborNode, depth: int) -> list[str]:
    """``a | b | c`` per row; empty cells kept so columns stay aligned.

    Captions, row groups and rows go through the same visibility rules as the rest of the
    page, and captions and cells through ``_render``: a hidden row or a script inside a
    caption is no more text a reader sees here than anywhere else.
    """
    lines = [
        caption
        for caption in (_inline(node, depth + 1) for node in _shown_children(table, "caption"))
        if caption
    ]
    # Browsers draw the header rows first and the footer rows last, wherever the source
    # puts <thead> and <tfoot> (a <tfoot> written before <tbody> holds the totals).
    head: list[LexborNode] = []
    body: list[LexborNode] = []
    foot: list[LexborNode] = []
    for child in _shown_children(table, "tr", "thead", "tbody", "tfoot"):
        rows = [child] if child.tag == "tr" else _shown_children(child, "tr")
        if child.tag == "thead":
            head.extend(rows)
        elif child.tag == "tfoot":
            foot.extend(rows)
        else:
            body.extend(rows)
    for row in head + body + foot:
        cells = [_inline(cell, depth + 1) for cell in _children(row) if cell.tag in ("td", "th")]
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def _render(root: LexborNode, depth: int = 0) -> str:
    """The visible text under ``root``."""
    out = _Writer()
    preformatted = 0
    ordinals: list[int] = []  # counters of the enclosing <ol>s; -1 marks a <ul>
    # (node, True) enters a node, (node, False) leaves it.
    stack: list[tuple[LexborNode, bool]] = [(root, True)]
    while stack:
        node, entering = stack.pop()
        tag = node.tag or ""
        if not entering:
            if tag in _PREFORMATTED:
                preformatted -= 1
            if tag in ("ul", "ol", "menu"):
                ordinals.pop()
            if tag in _PARAGRAPH:
                out.request_break(2)
            elif tag in _LINE:
                out.request_break(1)
            continue
        if tag == "-text":
            out.text(node.text_content or "", preformatted=preformatted > 0)
            continue
        if tag.startswith("-") and tag != "-document":  # comments, doctype
            continue
        if not _shown(node):
            continue
        if tag == "br":
            out.breaks = min(out.breaks + 1, 2)
            continue
        if tag in ("input", "select"):
            # Spaces around it: a control stands apart from its label on the screen.
            value = _control_value(node)
            if value:
                out.text(f" {value} ")
            continue
        if tag == "table" and depth < _MAX_TABLE_DEPTH:
            out.request_break(2)
            lines = _table_lines(node, depth)
            if lines:
                out.text("\n".join(lines), preformatted=True)
            out.request_break(2)
            continue
        if tag in _PARAGRAPH:
            out.request_break(2)
        elif tag in _LINE:
            out.request_break(1)
        if tag in _HEADINGS:
            out.prefix = _HEADINGS[tag]
        elif tag in ("ul", "menu"):
            ordinals.append(-1)
        elif tag == "ol":
            ordinals.append(0)
        elif tag == "li":
            if ordinals and ordinals[-1] >= 0:
                ordinals[-1] += 1
                out.prefix = f"{ordinals[-1]}. "
            else:
                out.prefix = "- "
        if tag in _PREFORMATTED:
            preformatted += 1
        stack.append((node, False))
        stack.extend((child, True) for child in reversed(_children(node)))
    return out.result()


def html_to_text(html: str) -> tuple[str, dict[str, Any]]:
    """Visible text of an HTML string, and what its head says (title, author...)."""
    tree = LexborHTMLParser(html)
    metadata: dict[str, Any] = {}
    title = tree.css_first("title")
    if title is not None:
        text = _SPACE.sub(" ", title.text()).strip()
        if text:
            metadata["title"] = text
    for meta_name in ("author", "description"):
        meta = tree.css_first(f'meta[name="{meta_name}" i]')
        content = meta.attrs.get("content") if meta is not None else None
        if content and content.strip():
            metadata[meta_name] = content.strip()
    root_element = tree.css_first("html")
    language = root_element.attrs.get("lang") if root_element is not None else None
    if language:
        metadata["language"] = language
    root = tree.body or tree.root
    return (_render(root) if root is not None else ""), metadata


#: deeper than any real page nests: the HTML parser's time grows with the square of the
#: depth (100,000 nested ``<div>``, a 1 MB file, take ~15 s; 4,096 take ~0.03 s)
MAX_NESTING = 4096
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*>")
_RAW_TEXT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
#: elements that cannot deepen the tree by being left open: void elements, and those whose
#: end tag is optional (the parser closes them at the next sibling)
_FLAT = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
    "thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "html", "head", "body",
})  # fmt: skip


def _check_nesting(html: str, name: str) -> None:
    """Refuse a page nested deeper than ``MAX_NESTING`` before the parser sees it (a few
    kilobytes of ``<div>`` would otherwise take minutes of CPU): its open and close tags
    are counted, scripts and styles left out."""
    depth = 0
    for match in _TAG.finditer(_RAW_TEXT.sub("", html)):
        if match[2].lower() in _FLAT:
            continue
        if match[1]:
            depth = max(0, depth - 1)
        elif not match[0].endswith("/>"):
            depth += 1
            if depth > MAX_NESTING:
                raise UnsafeDocumentError(
                    f"its elements nest more than {MAX_NESTING} deep, which no real page "
                    "does and which would take the parser minutes; refusing it.",
                    name=name,
                )


def load_html(data: bytes, name: str) -> Document:
    """Read an HTML page: charset from BOM or ``<meta>``, visible text, title in metadata."""
    limits = Limits.from_env()
    check_size(data, name, limits)
    decoded = decode_bytes(data, declared_html_encoding(data))
    if looks_binary(decoded.text):
        raise CorruptDocumentError(
            "this looks like a binary file, not HTML (it contains NUL bytes). Check the file type.",
            name=name,
        )
    _check_nesting(decoded.text, name)
    text, metadata = html_to_text(normalize_newlines(decoded.text))
    check_chars(len(text), name, limits)
    if not text:
        raise EmptyDocumentError(
            "the page has no visible text (after removing scripts, styles and hidden "
            "elements). If it is built by JavaScript, save the rendered page instead.",
            name=name,
        )
    metadata["encoding"] = decoded.encoding
    if decoded.guessed:
        metadata["encoding_guessed"] = True
    return Document(text, metadata=metadata, name=name)
