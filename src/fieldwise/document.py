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
        """Load bytes with the plugin registered for ``name``'s suffix (or ``media_type``);
        bytes the loader would refuse as too large are refused before it reads them, as
        ``open`` refuses such a file (the service's uploads come this way)."""
        loader = _loader_for(name, media_type)
        _check_size(loader, len(data), name)
        return _load(loader, data, name)

    @classmethod
    def open(cls, path: str | Path) -> Document:
        """Read a file (PDF, DOCX, HTML, text...) with the matching loader plugin; one the
        loader would refuse as too large is refused before it is read."""
        path = Path(path)
        if not path.is_file():
            raise UnsupportedInputError(f"{path}: no such file")
        loader = _loader_for(path.name, None)
        _check_size(loader, path.stat().st_size, path.name)
        return _load(loader, path.read_bytes(), path.name)


def _loader_for(name: str, media_type: str | None) -> DocumentLoader:
    from .plugins import pick_document_loader

    if media_type is None:
        media_type = mimetypes.guess_type(name)[0]
    return pick_document_loader(Path(name).suffix.lower(), media_type)


def _check_size(loader: DocumentLoader, size: int, name: str) -> None:
    """The loader's own refusal of an input too large for it, when it has one."""
    from .plugins import held_to_contract

    if loader.check_size is not None:
        with held_to_contract(loader, "check_size()"):
            loader.check_size(size, name)


def _load(loader: DocumentLoader, data: bytes, name: str) -> Document:
    """The loader's ``Document``; a loader that raises something other than fieldwise's
    errors, or returns anything else, is a ``PluginError`` naming its plugin."""
    from .plugins import broken_contract, held_to_contract

    with held_to_contract(loader, "load()"):
        document = loader.load(data, name)
    if not isinstance(document, Document):
        kind = type(document).__name__
        raise broken_contract(loader, f"load() returned {kind}, not a fieldwise Document")
    document.metadata.setdefault("loader", loader.name)
    document.name = document.name or name
    return document
