"""What every table adapter shares: columns from a model, cells from a value, row plans.

``fieldwise fill`` works on any table-like file through a plugin (CSV, XLSX...). The file
formats differ; the rules must not. So the rules live here, with no file-format code:
which columns a model fills (``address.city`` for nested models, one JSON column for a
list), how an extracted value becomes cell values, what text the model is given for a row,
which rows need a call (``only_empty``), and the order-keeping glue around ``run_many``.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import json
import math
import os
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union, get_args, get_origin

from .exceptions import FieldwiseError

if TYPE_CHECKING:
    from .batch import BatchItem, BatchSummary

K = TypeVar("K")

#: Names of the optional bookkeeping columns (``--status-columns``).
STATUS_COLUMN = "_status"
ERROR_COLUMN = "_error"
#: Longest ``_error`` text written into a cell (a traceback-sized message helps nobody there).
ERROR_TEXT_LIMIT = 300


class TableError(FieldwiseError):
    """The table cannot be filled as asked: a missing column, an unreadable or locked file,
    an output that would clobber the input. Raised before any model call, with the input
    file untouched; the command line maps it to exit code 2 (usage error)."""


@dataclass(frozen=True)
class Column:
    """One target column: its header text and the attribute path that reaches its value."""

    header: str
    path: tuple[str, ...]


def _model_class(annotation: Any) -> type[Any] | None:
    """The pydantic model class in ``annotation`` (``M`` or ``M | None``), else ``None``."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _model_class(args[0])
    return None


def model_columns(target: Any) -> list[Column]:
    """The columns a model fills, in field order.

    A nested model (or optional nested model) is spread over ``outer.inner`` columns, so a
    spreadsheet user can filter and sort on them; anything else (lists, dicts, unions of
    several models, recursive references) stays one column holding compact JSON. A field's
    alias, when it has one, is its header (``Field(alias="Company name")``).
    """
    if _model_class(target) is None or get_origin(target) is not None:
        raise TableError(
            f"fill needs a pydantic model class for --schema, got {target!r}: each field "
            "becomes a column."
        )
    columns: list[Column] = []

    def walk(model: type[Any], prefix: str, path: tuple[str, ...], seen: tuple[Any, ...]) -> None:
        for name, info in model.model_fields.items():
            label = info.alias if isinstance(info.alias, str) and info.alias else name
            header = f"{prefix}{label}"
            inner = _model_class(info.annotation)
            if inner is not None and inner not in seen:
                walk(inner, f"{header}.", (*path, name), (*seen, inner))
            else:
                columns.append(Column(header, (*path, name)))

    walk(target, "", (), (target,))
    seen_headers: dict[str, Column] = {}
    for column in columns:
        other = seen_headers.setdefault(column.header, column)
        if other is not column:  # two values, one column: one would be lost
            raise TableError(
                f"two fields fill the column {column.header!r} ({'.'.join(other.path)} and "
                f"{'.'.join(column.path)}); give one of them another alias=."
            )
    return columns


def is_blank(value: Any) -> bool:
    """Empty for fill purposes: ``None`` or a string of only white space."""
    if value is None:
        return True
    return isinstance(value, str) and not value.strip()


def _json(value: Any) -> str:
    from pydantic_core import to_jsonable_python

    return json.dumps(
        to_jsonable_python(value), ensure_ascii=False, separators=(",", ":"), default=str
    )


def cell_value(value: Any, *, typed: bool) -> Any:
    """One extracted value as a cell value.

    ``typed=True`` (spreadsheets) keeps ``int``/``float``/``Decimal``/``bool``/``date``/
    ``datetime``/``time`` as they are, so they land as numbers, dates and booleans; an
    aware datetime or a non-finite float becomes text, since spreadsheet cells hold
    neither. ``typed=False`` (CSV) gives text: ISO dates, ``true``/``false``. Lists,
    dicts and models become compact JSON either way; ``None`` stays ``None`` (a blank).
    """
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value if typed else ("true" if value else "false")
    if isinstance(value, int):
        return value if typed else str(value)
    if isinstance(value, float):
        if typed and math.isfinite(value):
            return value
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value if typed and value.is_finite() else str(value)
    if isinstance(value, (dt.datetime, dt.time)):
        return value if typed and value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.date):
        return value if typed else value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset, dict)) or hasattr(value, "model_dump"):
        return _json(value)
    from pydantic_core import to_jsonable_python

    plain = to_jsonable_python(value)
    return plain if isinstance(plain, str) else _json(plain)


def value_cells(value: Any, columns: Sequence[Column], *, typed: bool) -> dict[str, Any]:
    """``{header: cell value}`` for every column, read from an extracted model instance."""
    cells: dict[str, Any] = {}
    for column in columns:
        current = value
        for name in column.path:
            if current is None:
                break
            current = getattr(current, name, None)
        cells[column.header] = cell_value(current, typed=typed)
    return cells


def source_text(value: Any) -> str:
    """A source cell as text for the prompt (dates in ISO form, blanks as ``""``).

    A naive datetime at midnight is a date: spreadsheets store a date-formatted cell as a
    date-time, and ``2024-01-02`` reads as what the user typed where ``2024-01-02T00:00:00``
    adds a time nobody wrote."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.tzinfo is None and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def input_text(row: Mapping[str, Any], sources: Sequence[str]) -> str | None:
    """The model's input for one row, or ``None`` when every source cell is blank.

    One source column gives its bare text; several give ``name: value`` lines, so the
    model knows which text came from where. A blank row is never sent: the model would
    only invent values for it.
    """
    texts = [source_text(row.get(name)) for name in sources]
    if all(not text.strip() for text in texts):
        return None
    if len(sources) == 1:
        return texts[0]
    return "\n".join(f"{name}: {text}" for name, text in zip(sources, texts, strict=True))


def needs_work(existing: Mapping[str, Any], columns: Sequence[Column], only_empty: bool) -> bool:
    """Whether a row's targets need a call: with ``only_empty``, at least one is blank."""
    if not only_empty:
        return True
    return any(is_blank(existing.get(column.header)) for column in columns)


def cells_to_write(
    existing: Mapping[str, Any], new: Mapping[str, Any], only_empty: bool
) -> dict[str, Any]:
    """The target cells to change: with ``only_empty``, only blank ones, and never a blank
    over a blank (nothing to say)."""
    out: dict[str, Any] = {}
    for header, value in new.items():
        old = existing.get(header)
        if only_empty and not is_blank(old):
            continue
        if value is None and is_blank(old):
            continue
        out[header] = value
    return out


def error_text(error: BaseException | None) -> str:
    """A failure as one short line for the ``_error`` cell."""
    if error is None:
        return ""
    text = " ".join(str(error).split()) or type(error).__name__
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def check_columns(
    headers: Sequence[str], sources: Sequence[str], columns: Sequence[Column], where: str
) -> None:
    """Fail before any call when a ``--from`` column is missing or is also a target."""
    if not sources:
        raise TableError("Name at least one source column with --from COLUMN.")
    present = set(headers)
    missing = [name for name in sources if name not in present]
    if missing:
        shown = ", ".join(repr(h) for h in headers if h) or "none"
        raise TableError(
            f"{where}: no column {', '.join(repr(m) for m in missing)} for --from. "
            f"Columns found: {shown}."
        )
    targets = {column.header for column in columns} | {STATUS_COLUMN, ERROR_COLUMN}
    clash = [name for name in sources if name in targets]
    if clash:
        raise TableError(
            f"{where}: column {clash[0]!r} is both a source (--from) and a column the "
            "schema fills; rename the field (alias=) or the column."
        )


def warner(warn: Callable[[str], None] | None) -> Callable[[str], None]:
    """Where an adapter's warnings go: ``warn``, else ``warning: TEXT`` on stderr."""
    return warn or (lambda text: print(f"warning: {text}", file=sys.stderr))


def input_file(path: str | os.PathLike[str]) -> Path:
    """The table to fill, as a ``Path``; a ``TableError`` when there is no such file."""
    source = Path(path)
    if not source.is_file():
        raise TableError(f"{source}: no such file.")
    return source


def _followed(path: Path) -> Path:
    """The file a symbolic link points to (to the end of a chain of links), else ``path``.

    The output is written by renaming a new file over it, which would put a plain file in
    a link's place and leave the file it points to untouched: so a link is written
    through, and its target gets the ``.bak`` and the lock-file check."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def default_output(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None, in_place: bool
) -> Path:
    """Where the filled file goes: ``-o``, the input itself (``--in-place``), or
    ``NAME.filled.SUFFIX`` beside the input. Writing over the input needs ``--in-place``.
    A symbolic link (the input with ``--in-place``, or ``-o``) is written through.

    Strings are taken as well as paths, so that an adapter can hand on the ``path`` and
    ``output`` it was given as they came (an empty ``output`` is no ``-o``)."""
    return _output_path(Path(path), Path(output) if output else None, in_place)


def _output_path(path: Path, output: Path | None, in_place: bool) -> Path:
    if in_place:
        if output is not None and output.resolve() != path.resolve():
            raise TableError("Give either --in-place or -o OUTPUT, not both.")
        return _followed(path)
    if output is None:
        return path.with_name(f"{path.stem}.filled{path.suffix}")
    output = _followed(output)
    if output.exists() and output.resolve() == path.resolve():
        raise TableError(f"-o {output} is the input file: pass --in-place to overwrite it.")
    if not output.parent.is_dir():  # found now, not after every row has been paid for
        raise TableError(f"-o {output}: the folder {output.parent} does not exist.")
    if output.is_dir():
        raise TableError(f"-o {output} is a folder: name the output file.")
    return output


def temp_beside(destination: Path) -> tuple[int, Path]:
    """A new hidden temporary file in the destination's folder (its open descriptor and
    path), for the output to be renamed over the destination once written. Made before
    the first call, so that a folder that cannot take a file is found then, not after
    every row has been paid for."""
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
        )
    except OSError as exc:
        raise TableError(
            f"cannot create a file in {destination.parent} for the output "
            f"{destination.name} ({exc.strerror or exc}); choose another place with -o."
        ) from None
    return handle, Path(name)


#: Row texts looked up in the cache at once while a ``limit`` is placed: one query for
#: them all (``ResultCache.get_many``), and never more than this many rows read past the
#: limit's last row for nothing.
LOOKUP_CHUNK = 64


class RowPlanner:
    """The decision every adapter's row planner ends with, so that all count alike.

    An adapter subclasses it, reads a row's target cells and source cells in its own format
    (after counting the row and dropping those it never plans: headers, blank rows), and
    hands them to ``decide`` with the row's number (``key``, increasing). One planner per
    pass: ``planned`` counts every row planned.

    ``limit`` counts only the rows that will cost a call: a row whose answer the cache
    holds already (``answered`` says which texts do; without it every row counts) is
    planned without counting, so that repeated ``--limit N`` runs move on through the
    table even when the rows they filled keep a blank (a null field) and so still need
    work. The pass that places the limit ends with ``finish``; ``cutoff`` is then the key
    of the last row the limit lets through (``None``: it lets every row through), which a
    later pass over the same rows is given instead of ``limit``, so that it plans the very
    same rows whatever the cache has learnt meanwhile.
    """

    def __init__(
        self,
        only_empty: bool,
        limit: int | None,
        *,
        answered: Callable[[Sequence[str]], Sequence[bool]] | None = None,
        cutoff: int | None = None,
    ) -> None:
        self.only_empty = only_empty
        self.limit = limit
        self.planned = 0
        self.answered = answered
        self.cutoff = cutoff
        #: rows counted against ``limit`` so far, and whether it is reached
        self._counted = 0
        self._full = limit is not None and limit <= 0
        #: rows whose place against ``limit`` waits for a cache lookup: ``(key, text)``
        self._pending: list[tuple[int, str]] = []

    def decide(
        self,
        existing: Mapping[str, Any],
        columns: Sequence[Column],
        row: Mapping[str, Any],
        sources: Sequence[str],
        report: FillReport | None,
        key: int = 0,
    ) -> str | None:
        """The model's input for a row that needs a call, else ``None``.

        No call when no target needs work (``unchanged``), when every source cell is blank
        (``no_input``) or past ``limit`` or ``cutoff`` (``past_limit``). With ``report``
        (the counting pass) those counts go into it, and a planned row's text into
        ``input_chars`` and ``first_input``. With ``limit`` and ``answered``, a text is
        returned before its place is known (it waits for a lookup of many rows at once):
        after ``finish``, drop the rows whose key is past ``cutoff``.
        """
        if not needs_work(existing, columns, self.only_empty):
            if report is not None:
                report.unchanged += 1
            return None
        text = input_text(row, sources)
        if text is None:
            if report is not None:
                report.no_input += 1
            return None
        if self.limit is None:  # no limit, or a later pass given the first one's cutoff
            if self.cutoff is None or key <= self.cutoff:
                self._plan(text, report)
                return text
        elif not self._full:  # the limit is being placed: in order, by batches of rows
            return self._wait(key, text, report)
        if report is not None:
            report.past_limit += 1
        return None

    def _wait(self, key: int, text: str, report: FillReport | None) -> str:
        """Queue a row for its place against ``limit`` (at once without lookups)."""
        self._pending.append((key, text))
        if self.answered is None or len(self._pending) >= LOOKUP_CHUNK:
            self._settle(report)  # without lookups, at once: the row is within the limit
        return text

    def finish(self, report: FillReport | None) -> None:
        """Place the rows still waiting for their lookup (the end of the pass)."""
        if self._pending:
            self._settle(report)

    def _settle(self, report: FillReport | None) -> None:
        """Count the waiting rows against ``limit``, in order, reading the cache once for
        all of them; the limit's last row becomes ``cutoff`` and those after it are past
        the limit."""
        pending, self._pending = self._pending, []
        known = self.answered([text for _, text in pending]) if self.answered else ()
        cached = iter(known)
        for key, text in pending:
            if self._full:
                if report is not None:
                    report.past_limit += 1
                continue
            self._plan(text, report)
            if not next(cached, False):
                self._counted += 1
            if self.limit is not None and self._counted >= self.limit:
                self._full, self.cutoff = True, key

    def _plan(self, text: str, report: FillReport | None) -> None:
        self.planned += 1
        if report is not None:
            report.input_chars += len(text)
            if report.first_input is None:
                report.first_input = text


def cache_lookup(
    extractor: Any, target: Any, limit: int | None
) -> Callable[[Sequence[str]], Sequence[bool]] | None:
    """For ``RowPlanner(answered=...)``: which row texts ``extractor``'s cache answers
    already (read with one query per batch of texts), so that they do not count against
    ``limit``. ``None`` without a limit (nothing to place) or when the extractor is not an
    ``Extractor``; with the cache off (``--no-cache``) every text reads as unanswered, so
    every row counts."""
    if limit is None or extractor is None:
        return None
    from .extractor import Extractor, call_options

    if not isinstance(extractor, Extractor):
        return None
    options = call_options({})  # the adapters' run_many passes no per-call options

    def answered(texts: Sequence[str]) -> list[bool]:
        found = extractor._lookup_many(texts, target, options)
        return [isinstance(hit, tuple) and hit[1] is not None for hit in found]

    return answered


def ready_to_extract(
    report: FillReport,
    *,
    dry_run: bool,
    extractor: Any,
    on_total: Callable[[int], None] | None,
) -> bool:
    """After the checks: ``False`` for a dry run (the report is the answer); else make sure
    there is an extractor and tell ``on_total`` how many rows will be sent."""
    if dry_run:
        return False
    if extractor is None:
        raise TableError("fill needs an extractor= unless dry_run=True.")
    if on_total is not None:
        on_total(report.planned)
    return True


@dataclass
class FillReport:
    """What a fill did; adapters return ``to_dict()`` of it."""

    output: str | None = None
    rows: int = 0
    planned: int = 0
    unchanged: int = 0
    past_limit: int = 0
    no_input: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cached: int = 0
    cells_written: int = 0
    #: rows that got at least one target cell (an answer may only repeat what is there)
    rows_written: int = 0
    created_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    first_input: str | None = None
    input_chars: int = 0
    tokens: int = 0
    cost: float | None = None
    wall_time: float = 0.0

    def absorb(self, summary: BatchSummary) -> None:
        """Take the batch's final counts."""
        self.done = summary.done
        self.failed = summary.failed
        self.skipped = summary.skipped
        self.cached = summary.cached
        self.tokens = summary.usage.total_tokens
        self.cost = summary.usage.cost
        self.wall_time = summary.wall_time

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def extract_rows(
    extractor: Any,
    target: Any,
    rows: Iterable[tuple[K, str]],
    *,
    concurrency: int,
    max_cost: float | None,
    on_progress: Callable[[BatchSummary], None] | None,
    report: FillReport,
) -> Generator[tuple[K, BatchItem[Any]], None, None]:
    """Run ``rows`` (``(key, text)`` pairs, consumed lazily) through ``run_many`` and yield
    ``(key, item)`` in input order.

    ``run_many`` only sees the texts; each key waits in a queue that holds no more than the
    batch's window, so memory stays flat however long the table is. The report gets the
    batch's final counts once the rows are exhausted.
    """
    keys: collections.deque[K] = collections.deque()
    guard = threading.Lock()

    def texts() -> Iterator[str]:
        for key, text in rows:
            with guard:
                keys.append(key)
            yield text

    batch = extractor.run_many(
        texts(), target, concurrency=concurrency, max_cost=max_cost, on_progress=on_progress
    )
    for item in batch:
        with guard:
            key = keys.popleft()
        yield key, item
    report.absorb(batch.summary)
