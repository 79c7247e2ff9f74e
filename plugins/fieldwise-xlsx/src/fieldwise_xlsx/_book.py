"""Checking and saving workbooks safely.

Everything here is about not harming the user's file: refuse what Excel has open (its lock
file), refuse archives that unpack to more than memory should hold, and save through a
temporary file that is fsynced and then renamed over the target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from fieldwise.tables import TableError, source_text

#: A workbook that unpacks to more than this is refused without ``force``: the sheet's
#: XML is held in memory, and a zip bomb needs no more than this check.
MAX_UNPACKED_BYTES = 1 << 30
HEADER_SCAN_ROWS = 10


def lock_file(path: Path) -> Path:
    """Excel's owner file beside a workbook it has open (``~$book.xlsx``)."""
    return path.with_name("~$" + path.name)


def check_unlocked(path: Path) -> None:
    if lock_file(path).exists():
        raise TableError(
            f"{path} is open in Excel (lock file {lock_file(path).name} exists); close it "
            "first, or write elsewhere with -o."
        )


def inspect(path: Path, *, force: bool) -> None:
    """Check the archive before anything is unpacked."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise TableError(f"{path}: not a readable .xlsx workbook ({exc}).") from None
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UNPACKED_BYTES and not force:
        raise TableError(
            f"{path} unpacks to {unpacked / 2**30:.1f} GiB, more than a fill holds in memory "
            "by default. Pass --force to try anyway."
        )


def _is_header(values: Sequence[Any]) -> bool:
    """Mostly text across the row's used span, as a header row is."""
    used = [i for i, v in enumerate(values) if source_text(v).strip()]
    if not used:
        return False
    texts = sum(1 for i in used if isinstance(values[i], str))
    span = used[-1] - used[0] + 1
    return texts >= 0.6 * len(used) and len(used) >= 0.5 * span


def find_header(rows: Sequence[Sequence[Any]], sources: Sequence[str]) -> int:
    """The header row's index in ``rows`` (the sheet's first rows).

    The first mostly-text row that names every source column; failing that, the first
    mostly-text row (the missing-column error then lists its names); failing that, 0.
    A title or note above the table is thereby skipped.
    """
    candidates = [i for i, row in enumerate(rows) if _is_header(row)]
    for i in candidates:
        names = {source_text(v).strip() for v in rows[i]}
        if all(name in names for name in sources):
            return i
    return candidates[0] if candidates else 0


def save(
    write: Callable[[IO[bytes]], None], source: Path, destination: Path, *, backup: bool
) -> None:
    """Write the workbook (``write`` puts it into a stream) to ``destination`` through a
    temporary file in the same folder (flushed and fsynced, then renamed), keeping
    ``source``'s permission bits; with ``backup``, the replaced file is kept as
    ``NAME.bak`` first."""
    handle, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    temp = Path(name)
    try:
        with open(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        shutil.copymode(source, temp)
        check_unlocked(destination)  # Excel may have opened it while we worked
        if backup and destination.exists():
            _copy_atomically(destination, destination.with_name(destination.name + ".bak"))
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _copy_atomically(source: Path, destination: Path) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(handle)
    try:
        shutil.copy2(source, name)
        os.replace(name, destination)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
