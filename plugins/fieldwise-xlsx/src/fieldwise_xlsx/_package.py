"""The workbook as a zip package: which part is which sheet, and writing a copy in which
only the parts a fill edited differ.

Every other part (drawings, charts, images, VBA, pivot caches, custom XML, extensions)
is copied byte for byte, so nothing a fill does not understand can be lost.
"""

from __future__ import annotations

import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element

from fieldwise.tables import TableError

from ._xml import read_tree

_PACKAGE_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOCUMENT_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
#: What reading a damaged entry raises: data that does not decompress (``zlib.error``),
#: a wrong CRC or header (``BadZipFile``), data cut short (``EOFError``), encryption or a
#: compression zipfile lacks (``RuntimeError``, ``NotImplementedError``), ...
_UNREADABLE = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
               NotImplementedError)  # fmt: skip


@dataclass(frozen=True)
class SheetEntry:
    name: str
    part: str  # path inside the zip, "" when the relationship is missing
    kind: str  # "worksheet", "chartsheet", "dialogsheet", ...
    state: str  # "visible", "hidden", "veryHidden"


class Package:
    """An open .xlsx/.xlsm: its parts by name, its sheets, and the workbook's settings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: the entries read whole (and so CRC-checked) by ``read``
        self._checked: set[int] = set()
        try:
            self.archive = zipfile.ZipFile(path)
            self.infos = self.archive.infolist()
            self.workbook = self._main_part()
            self.workbook_xml = self.read(self.workbook)
            tree = read_tree(self.workbook_xml, self.workbook)
            self.rels = self.relationships(self.workbook)
        except (zipfile.BadZipFile, OSError, KeyError, EOFError) as exc:
            raise TableError(f"{path}: not a readable .xlsx workbook ({exc}).") from None
        self.sheets = [self._entry(sheet) for sheet in tree.iter(f"{_MAIN}sheet")]
        properties = tree.find(f"{_MAIN}workbookPr")
        flag = properties.get("date1904", "0") if properties is not None else "0"
        self.date1904 = flag.lower() in ("1", "true")
        view = tree.find(f"{_MAIN}bookViews/{_MAIN}workbookView")
        self.active = int(view.get("activeTab", "0")) if view is not None else 0

    def close(self) -> None:
        self.archive.close()

    def read(self, part: str) -> bytes:
        try:
            data = self.archive.read(part)
        except KeyError:
            raise TableError(f"{self.path}: the workbook names a part {part} it lacks.") from None
        except _UNREADABLE as exc:
            raise self._damaged(part, exc) from None
        self._checked.add(id(self.archive.NameToInfo[part]))
        return data

    def verify(self) -> None:
        """Decompress every entry not read yet, in chunks, checking its CRC: the copy
        holds them all, so one that cannot be read stops the fill now, before any call,
        not when the copy is written after them."""
        for info in self.infos:
            if id(info) in self._checked:
                continue
            try:
                with self.archive.open(info) as entry:
                    while entry.read(_CHUNK):
                        pass
            except _UNREADABLE as exc:
                raise self._damaged(info.filename, exc) from None
            self._checked.add(id(info))

    def _damaged(self, part: str, exc: BaseException) -> TableError:
        return TableError(
            f"{self.path}: {part} cannot be read ({type(exc).__name__}: {exc}); the "
            "file is damaged (opening and saving it in Excel may repair it)."
        )

    def has(self, part: str) -> bool:
        return part in self.archive.NameToInfo

    def relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """``{id: (type, target part)}`` of a part's relationships (none: empty)."""
        folder, name = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", name + ".rels")
        if not self.has(rels):
            return {}
        out: dict[str, tuple[str, str]] = {}
        for rel in read_tree(self.read(rels), rels).iter(f"{_PACKAGE_RELS}Relationship"):
            if rel.get("TargetMode") == "External":
                continue
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            out[rel.get("Id", "")] = (rel.get("Type", ""), posixpath.normpath(path))
        return out

    def related(self, part: str, kind: str) -> list[str]:
        """The parts ``part`` relates to with a relationship of this type."""
        return [target for type_, target in self.relationships(part).values() if _is(type_, kind)]

    def _main_part(self) -> str:
        for type_, target in self.relationships("").values():
            if _is(type_, "officeDocument"):
                return target
        return "xl/workbook.xml"

    def _entry(self, sheet: Element) -> SheetEntry:
        type_, part = self.rels.get(sheet.get(f"{_DOCUMENT_RELS}id", ""), ("", ""))
        kind = type_.rsplit("/", 1)[-1] if type_ else "worksheet"
        return SheetEntry(sheet.get("name", ""), part, kind, sheet.get("state", "visible"))

    def write(self, stream: IO[bytes], replaced: Mapping[str, bytes | Iterable[str]]) -> None:
        """The package into ``stream``: each part as it was, in the same order and with the
        same compression, except the ``replaced`` ones (bytes, or text in pieces, which is
        encoded and compressed as it comes instead of being joined first)."""
        with zipfile.ZipFile(stream, "w") as out:
            for info in self.infos:
                data = replaced.get(info.filename)
                if data is None:
                    data = self.read(info.filename)
                new = copy(info)
                new.extra = _without_zip64(info.extra)  # zipfile writes its own when needed
                if isinstance(data, bytes):
                    out.writestr(new, data, compress_type=info.compress_type)
                    continue
                with out.open(new, "w", force_zip64=info.file_size > _ZIP64_AT) as part:
                    _write_pieces(part, data)


#: Parts this large may pass 4 GiB once cells are added: give them zip64 sizes.
_ZIP64_AT = 1 << 30
_CHUNK = 1 << 20


def _without_zip64(extra: bytes) -> bytes:
    """A zip entry's extra fields less its zip64 record, whose sizes were the input's."""
    fields, at = [], 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        if kind != 0x0001:
            fields.append(extra[at : at + 4 + size])
        at += 4 + size
    return b"".join(fields)


def _write_pieces(part: IO[bytes], pieces: Iterable[str]) -> None:
    """Text pieces written as UTF-8 in chunks of about a megabyte."""
    chunk: list[str] = []
    size = 0
    for piece in pieces:
        chunk.append(piece)
        size += len(piece)
        if size >= _CHUNK:
            part.write("".join(chunk).encode("utf-8"))
            chunk, size = [], 0
    part.write("".join(chunk).encode("utf-8"))


def _is(type_: str, kind: str) -> bool:
    """Whether a relationship type is ``kind``, in transitional or strict form."""
    return type_ == _TYPE + kind or bool(re.fullmatch(rf".*/relationships/{kind}", type_))
