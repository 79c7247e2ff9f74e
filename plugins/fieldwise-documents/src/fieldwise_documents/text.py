"""Plain text, Markdown, CSV, JSON and logs: decode carefully, keep the text as it is.

Markdown is kept as Markdown: models read it well and its headings and lists are
structure worth keeping. Its first heading, ATX (``# Title``) or Setext (a line
underlined with ``===`` or ``---``; YAML front matter skipped), is its title. Form
feeds (``\\f``), which printers and ``pdftotext`` use between pages, become page
boundaries so results can still cite a page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fieldwise.document import Document

from .encoding import decode_bytes, looks_binary, normalize_newlines
from .errors import CorruptDocumentError, EmptyDocumentError
from .limits import Limits, check_chars, check_size

__all__ = ["MARKDOWN_SUFFIXES", "load_text"]

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_ATX_HEADING = re.compile(r"^[ ]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# A Setext heading: a line of text directly underlined with ``===`` or ``---``. The text
# line must not be blank (``---`` after a blank line is a thematic break), nor a list
# item, quote, ATX heading or rule of its own.
_SETEXT_HEADING = re.compile(
    r"^[ ]{0,3}(?![-*+>][ \t]|\d{1,9}[.)][ \t]|#|[-=*_ \t]+$)(\S[^\n]*?)[ \t]*\n"
    r"[ ]{0,3}(?:=+|-+)[ \t]*$",
    re.MULTILINE,
)
# YAML front matter (Jekyll, Hugo...): its closing ``---`` would underline its last line.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def _markdown_title(text: str) -> str | None:
    """The first heading near the top, ATX (``# Title``) or Setext (``Title`` over
    ``=====``), the title people would read."""
    head = text[:20_000]
    front = _FRONT_MATTER.match(head)
    start = front.end() if front else 0
    matches = (_ATX_HEADING.search(head, start), _SETEXT_HEADING.search(head, start))
    found = [match for match in matches if match]
    if not found:
        return None
    return min(found, key=lambda match: match.start()).group(1).strip()


def load_text(data: bytes, name: str) -> Document:
    """Read a text file: BOM/charset detection, newlines normalized, form feeds as pages."""
    limits = Limits.from_env()
    check_size(data, name, limits)
    decoded = decode_bytes(data)
    text = decoded.text
    if looks_binary(text):
        raise CorruptDocumentError(
            "this looks like a binary file, not text (it contains NUL bytes). Check the "
            "file type, or rename it with its real extension.",
            name=name,
        )
    # A stray NUL later in a log is kept out: many APIs and databases reject it.
    text = normalize_newlines(text).replace("\x00", "")
    check_chars(len(text), name, limits)
    if not text.strip():
        raise EmptyDocumentError("the file holds no text.", name=name)

    metadata: dict[str, Any] = {"encoding": decoded.encoding}
    if decoded.guessed:
        metadata["encoding_guessed"] = True
    if Path(name).suffix.lower() in MARKDOWN_SUFFIXES:
        title = _markdown_title(text)
        if title:
            metadata["title"] = title
    if "\f" in text:
        # The newlines around a form feed belong to the break, not to either page.
        pages = [page.strip("\n") for page in text.split("\f")]
        metadata["page_count"] = len(pages)
        return Document.from_pages(pages, name=name, **metadata)
    return Document(text, metadata=metadata, name=name)
