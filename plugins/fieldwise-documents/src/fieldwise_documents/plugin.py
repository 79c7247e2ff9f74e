"""The entry point fieldwise loads: registers one loader per file family.

The loaders import pypdf, python-docx and selectolax only when a file of their kind
is read, so loading plugins (which every ``fieldwise`` command does) stays fast.
Text is registered at a low priority: it is the fallback for anything text-like, and a
specialised plugin for CSV or JSON should win over it.
"""

from __future__ import annotations

from collections.abc import Callable

from fieldwise.document import Document
from fieldwise.hookspecs import hookimpl
from fieldwise.registry import DocumentLoader

__all__ = ["LOADERS", "register_document_loaders"]


def _pdf(data: bytes, name: str) -> Document:
    from .pdf import load_pdf

    return load_pdf(data, name)


def _docx(data: bytes, name: str) -> Document:
    from .word import load_docx

    return load_docx(data, name)


def _html(data: bytes, name: str) -> Document:
    from .html import load_html

    return load_html(data, name)


def _text(data: bytes, name: str) -> Document:
    from .text import load_text

    return load_text(data, name)


def _check_size(size: int, name: str) -> None:
    """A file over the size cap is refused before ``Document.open`` reads it."""
    from .limits import check_file_size

    check_file_size(size, name)


LOADERS: tuple[DocumentLoader, ...] = (
    DocumentLoader(
        name="pdf",
        load=_pdf,
        suffixes=(".pdf",),
        media_types=("application/pdf",),
        check_size=_check_size,
    ),
    DocumentLoader(
        name="docx",
        load=_docx,
        suffixes=(".docx",),
        media_types=("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
        check_size=_check_size,
    ),
    DocumentLoader(
        name="html",
        load=_html,
        suffixes=(".html", ".htm", ".xhtml"),
        media_types=("text/html", "application/xhtml+xml"),
        check_size=_check_size,
    ),
    DocumentLoader(
        name="text",
        load=_text,
        suffixes=(
            ".txt", ".text", ".md", ".markdown", ".mdown", ".mkd", ".rst",
            ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".log",
        ),
        media_types=(
            "text/plain", "text/markdown", "text/x-markdown", "text/x-rst", "text/csv",
            "text/tab-separated-values", "application/json", "application/x-ndjson",
        ),
        priority=-10,
        check_size=_check_size,
    ),
)  # fmt: skip


@hookimpl
def register_document_loaders(register: Callable[[DocumentLoader], None]) -> None:
    """Register the PDF, DOCX, HTML and text loaders."""
    for loader in LOADERS:
        register(loader)
