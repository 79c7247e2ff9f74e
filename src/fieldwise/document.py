"""A loaded document: its text, where each page starts, and metadata.

Loaders come from plugins (``register_document_loaders``); the core only holds the shape,
so a result can say which page a value came from.
"""

from __future__ import annotations

import bisect
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import UnsupportedInputError

if TYPE_CHECKING:
    from .registry import DocumentLoader


@dataclass
class Document:
    """Text plus page boundaries.

    ``pages`` holds ``(start, end)`` character offsets into ``text``, one per page (a
    format without pages has one page spanning the text). ``metadata`` holds what the
    loader found (title, author, page count...) and always ``loader`` and ``name``.
    """

    text: str
    pages: list[tuple[int, int]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.pages:
            self.pages = [(0, len(self.text))]

    def page_of(self, offset: int) -> int:
        """1-based page number that holds character ``offset``."""
        starts = [start for start, _ in self.pages]
        return max(1, bisect.bisect_right(starts, offset))

    @classmethod
    def from_pages(cls, pages: list[str], *, name: str = "", **metadata: Any) -> Document:
        """Join page texts with blank lines and remember where each page starts."""
        spans: list[tuple[int, int]] = []
        parts: list[str] = []
        offset = 0
        for i, page in enumerate(pages):
            if i:
                parts.append("\n\n")
                offset += 2
            spans.append((offset, offset + len(page)))
            parts.append(page)
            offset += len(page)
        return cls("".join(parts), spans, dict(metadata), name)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str, media_type: str | None = None) -> Document:
        """Load bytes with the plugin registered for ``name``'s suffix (or ``media_type``)."""
        return _load(_loader_for(name, media_type), data, name)

    @classmethod
    def open(cls, path: str | Path) -> Document:
        """Read a file (PDF, DOCX, HTML, text...) with the matching loader plugin; one the
        loader would refuse as too large is refused before it is read."""
        path = Path(path)
        if not path.is_file():
            raise UnsupportedInputError(f"{path}: no such file")
        loader = _loader_for(path.name, None)
        if loader.check_size is not None:
            loader.check_size(path.stat().st_size, path.name)
        return _load(loader, path.read_bytes(), path.name)


def _loader_for(name: str, media_type: str | None) -> DocumentLoader:
    from .plugins import pick_document_loader

    if media_type is None:
        media_type = mimetypes.guess_type(name)[0]
    return pick_document_loader(Path(name).suffix.lower(), media_type)


def _load(loader: DocumentLoader, data: bytes, name: str) -> Document:
    document = loader.load(data, name)
    document.metadata.setdefault("loader", loader.name)
    document.name = document.name or name
    return document
