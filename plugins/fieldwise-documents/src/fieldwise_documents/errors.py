"""The errors this plugin raises, all under the core's ``UnsupportedInputError``.

They subclass ``UnsupportedInputError`` because that is what a caller of
``Document.open`` already catches for "this file cannot be turned into text"; the finer
classes let a program tell a password prompt from a broken file from a scanned one.
Every message starts with the file name and says what to do next.
"""

from __future__ import annotations

from fieldwise.exceptions import UnsupportedInputError

__all__ = [
    "CorruptDocumentError",
    "DocumentError",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "NoTextLayerError",
    "UnsafeDocumentError",
]


class DocumentError(UnsupportedInputError):
    """A file of a supported kind that could not be read into a ``Document``.

    ``name`` is the file name the loader was given.
    """

    def __init__(self, message: str, *, name: str = "") -> None:
        self.name = name
        super().__init__(f"{name}: {message}" if name else message)


class EncryptedDocumentError(DocumentError):
    """The file needs a password (one that is not empty) to be read."""


class CorruptDocumentError(DocumentError):
    """The file is damaged, truncated, or not the format its name says."""


class EmptyDocumentError(DocumentError):
    """The file was read but holds no text at all."""


class NoTextLayerError(EmptyDocumentError):
    """A PDF with pages but no text layer: scanned pages or text drawn as shapes."""


class DocumentTooLargeError(DocumentError):
    """The file, its unpacked contents, or its text is over a configured size cap."""


class UnsafeDocumentError(DocumentError):
    """The file looks built to exhaust memory (zip bomb, XML entity expansion)."""
