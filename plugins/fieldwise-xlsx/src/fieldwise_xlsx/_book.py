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


def find_header(
    rows: Sequence[Sequence[Any]], sources: Sequence[str], targets: Sequence[str]
) -> tuple[int, list[int]]:
    """The header row's index in ``rows`` (the sheet's first rows), and the indexes of the
    other rows that could have been it.

    Every row that names every source column is a candidate, text or not (years as column
    names are numbers); of those, the one that also names the most target columns wins:
    a title, or a legend above the table that names a source column, names fewer of them
    than the header. Of equals, the first when they name the same columns (tables stacked
    on the sheet); else the header cannot be told and ``TableError`` asks for
    ``--header-row`` (a guess would send the wrong rows, paid). Failing any, the most
    header-like row (naming the most targets, then mostly text, then the most text
    cells), whose names the missing-column error lists; failing that, 0.
    """
    names = [{source_text(v).strip() for v in row} - {""} for row in rows]
    named = [sum(target in found for target in targets) for found in names]
    candidates = [i for i, found in enumerate(names) if all(n in found for n in sources)]
    if candidates:
        best = max(candidates, key=named.__getitem__)  # max keeps the first of equals
        tied = [i for i in candidates if named[i] == named[best] and names[i] != names[best]]
        if tied:  # the more header-like row, if one is: a data row may hold a column's name
            likeness = {i: _likeness(rows[i]) for i in [best, *tied]}
            first = max(likeness.values())
            most = [i for i in [best, *tied] if likeness[i] == first]
            best, tied = most[0], most[1:]
        if tied:  # a legend above a table whose schema columns are still to be made
            listed = ", ".join(str(i + 1) for i in [best, *tied])
            raise TableError(
                f"rows {listed} all name the --from column(s) and as many schema columns, "
                "with different other names, so the header row cannot be told; pass "
                "--header-row N."
            )
        return best, [i for i in candidates if i != best]
    scores = [(named[i], *_likeness(row)) for i, row in enumerate(rows)]
    return max(range(len(rows)), key=scores.__getitem__, default=0), []


def _likeness(row: Sequence[Any]) -> tuple[bool, int]:
    """How much a row looks like a header: mostly text, then its count of text cells."""
    return _is_header(row), sum(isinstance(v, str) and bool(v.strip()) for v in row)


def save(
    write: Callable[[IO[bytes]], None],
    source: Path,
    destination: Path,
    reserved: tuple[int, Path],
    *,
    backup: bool,
) -> None:
    """Write the workbook (``write`` puts it into a stream) to ``destination`` through
    ``reserved``, a temporary file in the same folder made before the first call
    (``fieldwise.tables.temp_beside``: descriptor and path), flushed and fsynced, then
    renamed, keeping ``source``'s permission bits; with ``backup``, the replaced file is
    kept as ``NAME.bak`` first."""
    handle, temp = reserved
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
