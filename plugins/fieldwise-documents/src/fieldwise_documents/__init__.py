"""fieldwise-documents: PDF, DOCX, HTML, Markdown and text files as ``fieldwise.Document``.

Installed, it is found through the ``fieldwise`` entry point, and ``Document.open(path)``
reads these formats. The loaders can also be called directly (``load_pdf(data, name)``).
Errors are ``DocumentError`` subclasses, themselves ``UnsupportedInputError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextLayerError,
    UnsafeDocumentError,
)
from .limits import Limits

if TYPE_CHECKING:
    from .html import load_html
    from .pdf import load_pdf
    from .text import load_text
    from .word import load_docx

__version__ = "0.1.0"

__all__ = [
    "CorruptDocumentError",
    "DocumentError",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "Limits",
    "NoTextLayerError",
    "UnsafeDocumentError",
    "load_docx",
    "load_html",
    "load_pdf",
    "load_text",
]

_LAZY = {
    "load_pdf": "pdf",
    "load_docx": "word",
    "load_html": "html",
    "load_text": "text",
}


def __getattr__(name: str) -> Any:
    """Import a loader (and its parser library) only when it is first used."""
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
