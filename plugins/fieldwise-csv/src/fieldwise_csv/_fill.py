"""``fill`` for CSV/TSV: stream rows through the model and write each as it comes back.

Three passes over the file, each constant in memory: a check pass (columns, encoding,
how many rows need work — before any call, so a bad file costs nothing and the progress
bar has a total), a reading pass that feeds the texts to ``run_many`` lazily, and the
writing pass, which walks the file again in order, copies rows that need nothing byte for
byte and pairs each row that needed work with its result (results carry their record
numbers, so this pass does not plan the rows again). The output goes to a temporary
file beside the target, then ``os.replace``: a crash never leaves half a file.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldwise.exceptions import BudgetExceededError
from fieldwise.tables import (
    ERROR_COLUMN,
    STATUS_COLUMN,
    Column,
    FillReport,
    RowPlanner,
    TableError,
    cache_lookup,
    cells_to_write,
    check_columns,
    default_output,
    error_text,
    extract_rows,
    input_file,
    model_columns,
    ready_to_extract,
    temp_beside,
    value_cells,
    warner,
)

from ._format import (
    SAMPLE_CHARS,
    Format,
    Records,
    RowWriter,
    candidate_encodings,
    detect_format,
    open_text,
    preamble,
)
from ._format import split_ending as _split

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
#: what a cell starting with + or - may be and stay as it is: a number (-5, +1,200.50,
#: -3e4, 12%) or a phone number (+1 555 0100)
_PLAIN = re.compile(
    r"[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?|\+[\d ()./-]*\d[\d ()./-]*"
)


def neutralise(text: str) -> str:
    """Keep a spreadsheet from running model output as a formula (CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a line break gets a leading
    ``'``, which spreadsheets show as text, unless the whole of it is a number (``-5``,
    ``+1,200.50``) or a phone number (``+1 555 0100``); a lone ``+`` or ``-`` stays too.
    Excel reads ``-1+cmd|' /C calc'!A0`` as a formula, so the first characters alone
    cannot tell.
    """
    if len(text) < 2 or not text.startswith(_FORMULA_START):
        return text
    if text[0] in "+-" and _PLAIN.fullmatch(text):
        return text
    return "'" + text


@dataclass
class _Layout:
    """Where each column lives in the output."""

    header: list[str]
    width: int
    index: dict[str, int]
    new_names: list[str]

    def get(self, fields: Sequence[str], name: str) -> str | None:
        i = self.index.get(name)
        return fields[i] if i is not None and i < len(fields) else None


def _layout(header: list[str], columns: Sequence[Column], status: bool) -> _Layout:
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)
    for i, name in enumerate(header):
        index.setdefault(name.strip(), i)
    wanted = [c.header for c in columns] + ([STATUS_COLUMN, ERROR_COLUMN] if status else [])
    new_names = [name for name in wanted if name not in index]
    for offset, name in enumerate(new_names):
        index[name] = len(header) + offset
    return _Layout(header, len(header) + len(new_names), index, new_names)


class _Planner(RowPlanner):
    """Decides which rows need a call and with what text (the check and reading passes)."""

    def __init__(
        self,
        layout: _Layout,
        sources: Sequence[str],
        columns: Sequence[Column],
        only_empty: bool,
        limit: int | None,
        **placing: Any,
    ) -> None:
        super().__init__(only_empty, limit, **placing)  # answered=, cutoff=: see RowPlanner
        self.layout = layout
        self.sources = sources
        self.columns = columns

    def existing(self, fields: Sequence[str]) -> dict[str, str | None]:
        return {c.header: self.layout.get(fields, c.header) for c in self.columns}

    def plan(self, number: int, fields: Sequence[str], report: FillReport | None) -> str | None:
        if not fields:
            return None
        if report is not None:
            report.rows += 1
        row = {n: self.layout.get(fields, n) for n in self.sources}
        existing = self.existing(fields)
        return self.decide(existing, self.columns, row, self.sources, report, number)


def _open(path: Path, fmt: Format) -> io.TextIOWrapper:
    return open_text(path, fmt.encoding)


def _records(stream: io.TextIOWrapper, fmt: Format) -> tuple[str, Iterator[tuple[list[str], str]]]:
    """The lines above the header, as they are (Excel's ``sep=`` line, the rows above a
    named header row), and the records from the header on."""
    lines = "".join(stream.readline() for _ in range(fmt.skip_lines))
    return lines, iter(Records(stream, fmt))


def _check_pass(
    path: Path, sources: Sequence[str], columns: Sequence[Column], options: dict[str, Any]
) -> tuple[Format, _Layout, FillReport, int | None]:
    """Read the whole file once: encoding, dialect, columns, the counts, and the last row
    that ``limit`` lets through (``None``: every row)."""
    last_error: UnicodeDecodeError | None = None
    for encoding in candidate_encodings(path):
        try:
            with open_text(path, encoding) as stream:
                sample = stream.read(SAMPLE_CHARS)
            if not sample.strip():
                raise TableError(f"{path}: the file is empty; a CSV needs a header row.")
            skip, delimiter, rest = preamble(sample, options["header_row"])
            if rest is None:
                raise TableError(
                    f"{path}: --header-row {options['header_row']}: the file has no such "
                    f"row in its first {SAMPLE_CHARS // 1024} KiB."
                )
            fmt, _ = detect_format(rest, encoding, path.suffix, sources, delimiter)
            fmt = dataclasses.replace(fmt, skip_lines=skip, sep_line=delimiter is not None)
            return (fmt, *_count(path, fmt, sources, columns, options))
        except UnicodeDecodeError as exc:
            last_error = exc
    raise TableError(f"{path}: cannot decode the file: {last_error}")


def _count(
    path: Path, fmt: Format, sources: Sequence[str], columns: Sequence[Column], options: Any
) -> tuple[_Layout, FillReport, int | None]:
    report = FillReport()
    named = options["header_row"]
    where = str(path) if named is None else f"{path} header row {named}"
    with _open(path, fmt) as stream:
        _, records = _records(stream, fmt)
        header, _ = next(records, ([], ""))
        check_columns([h.strip() for h in header], sources, columns, where)
        layout = _layout(header, columns, options["status_columns"])
        planner = _Planner(
            layout, sources, columns, options["only_empty"], options["limit"],
            answered=options["answered"],
        )  # fmt: skip
        for number, (fields, _raw) in enumerate(records, start=fmt.first_row):
            if len(fields) > len(header) and layout.new_names and any(fields[len(header) :]):
                raise TableError(
                    f"{path}: row {number} has {len(fields)} fields but the header has "
                    f"{len(header)}; new columns would land on its extra values. Fix the row."
                )
            planner.plan(number, fields, report)
        planner.finish(report)
        report.planned = planner.planned
    report.created_columns = list(layout.new_names)
    return layout, report, planner.cutoff


def _texts(path: Path, fmt: Format, planner: _Planner) -> Iterator[tuple[int, str]]:
    """Pass two: the texts of the rows that need work, with their record numbers."""
    with _open(path, fmt) as stream:
        _, records = _records(stream, fmt)
        next(records, None)
        for number, (fields, _raw) in enumerate(records, start=fmt.first_row):
            text = planner.plan(number, fields, None)
            if text is not None:
                yield number, text


class _Output:
    """Turns each record into its output text."""

    def __init__(self, fmt: Format, layout: _Layout, columns: Sequence[Column], options: Any):
        #: target cells written, and rows that got at least one
        self.cells = self.rows = 0
        self.writer = RowWriter(fmt)
        self.delimiter = fmt.delimiter
        self.layout = layout
        self.columns = columns
        self.only_empty: bool = options["only_empty"]
        self.status: bool = options["status_columns"]
        self.encoding = fmt.encoding
        self.unencodable = 0

    def header(self, raw: str) -> str:
        if not self.layout.new_names:
            return raw
        body, ending = _split(raw)
        names = self.writer.fields_text(self.layout.new_names)
        return body + self.delimiter + names + (ending or "\n")

    def unchanged(self, fields: list[str], raw: str) -> str:
        """The raw record, plus empty cells for new columns when the row is complete (a
        short row stays short: readers already treat its missing cells as empty)."""
        missing = self.layout.width - len(fields)
        if not self.layout.new_names or len(fields) < len(self.layout.header) or missing <= 0:
            return raw
        body, ending = _split(raw)
        return body + self.delimiter * missing + ending

    def _text(self, value: Any) -> str:
        text = "" if value is None else neutralise(str(value))
        if not self.encoding.startswith("utf"):
            try:
                text.encode(self.encoding)
            except UnicodeEncodeError:
                self.unencodable += 1
                text = text.encode(self.encoding, errors="replace").decode(self.encoding)
        return text

    def changed(self, fields: list[str], raw: str, item: Any) -> str:
        updates: dict[str, str] = {}
        if item.result is not None:
            new = value_cells(item.result.value, self.columns, typed=False)
            existing = {c.header: self.layout.get(fields, c.header) for c in self.columns}
            for name, value in cells_to_write(existing, new, self.only_empty).items():
                updates[name] = self._text(value)
            self.cells += len(updates)
            self.rows += bool(updates)
        if self.status:
            skipped = isinstance(item.error, BudgetExceededError)
            state = "ok" if item.error is None else ("skipped" if skipped else "error")
            updates[STATUS_COLUMN] = state
            updates[ERROR_COLUMN] = self._text(error_text(item.error))
        if not updates:
            return self.unchanged(fields, raw)
        positions = {self.layout.index[name]: value for name, value in updates.items()}
        return self.writer.splice(raw, fields, self.layout.width, positions)


def fill(
    path: str | os.PathLike[str],
    *,
    target: Any,
    sources: Sequence[str],
    extractor: Any = None,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    only_empty: bool = True,
    status_columns: bool = False,
    limit: int | None = None,
    dry_run: bool = False,
    concurrency: int = 16,
    max_cost: float | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    warn: Callable[[str], None] | None = None,
    **_ignored: Any,
) -> dict[str, Any]:
    """Fill the schema's columns of a CSV/TSV file; see ``docs/plugins.md``."""
    say = warner(warn)
    source = input_file(path)
    if sheet is not None:
        say("--sheet is ignored for CSV files.")
    destination = default_output(source, Path(output) if output else None, in_place)
    csv.field_size_limit(2**31 - 1)  # long notes fields are the point of this command
    columns = model_columns(target)
    if header_row is not None and header_row < 1:
        raise TableError(f"--header-row {header_row}: rows are numbered from 1.")
    options = {
        "only_empty": only_empty, "status_columns": status_columns, "limit": limit,
        "header_row": header_row, "answered": cache_lookup(extractor, target, limit),
    }  # fmt: skip
    fmt, layout, report, cutoff = _check_pass(source, sources, columns, options)
    report.output = str(destination)
    report.dry_run = dry_run
    if not ready_to_extract(report, dry_run=dry_run, extractor=extractor, on_total=on_total):
        return report.to_dict()
    out = _Output(fmt, layout, columns, options)
    # the rows the check pass planned, not counted again: the cache has changed meanwhile
    planner = _Planner(layout, sources, columns, only_empty, None, cutoff=cutoff)
    handle, temp = temp_beside(destination)  # an output folder that refuses it: no call made
    try:
        with (
            open(handle, "w", encoding=fmt.encoding, newline="") as sink,
            _open(source, fmt) as stream,
        ):
            results = extract_rows(
                extractor,
                target,
                _texts(source, fmt, planner),
                concurrency=concurrency,
                max_cost=max_cost,
                on_progress=on_progress,
                report=report,
            )
            try:
                above, records = _records(stream, fmt)
                _header, raw = next(records)
                sink.write(fmt.bom + above + out.header(raw))
                # The results carry their record numbers: a row is changed exactly when the
                # next result is for it (no second planning of every row here).
                upcoming = next(results, None)
                for number, (fields, raw) in enumerate(records, start=fmt.first_row):
                    if upcoming is None or upcoming[0] != number:
                        sink.write(out.unchanged(fields, raw))
                        continue
                    sink.write(out.changed(fields, raw, upcoming[1]))
                    upcoming = next(results, None)
                if upcoming is not None:  # a result for no row: the passes disagree, a bug
                    raise RuntimeError(f"row pairing lost at record {upcoming[0]}")
            finally:
                results.close()
            sink.flush()
            os.fsync(sink.fileno())
        shutil.copymode(source, temp)
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    report.cells_written, report.rows_written = out.cells, out.rows
    if out.unencodable:
        report.warnings.append(
            f"{out.unencodable} cell(s) held characters that {fmt.encoding} cannot store; "
            "they were replaced by '?'."
        )
    for text in report.warnings:
        say(text)
    return report.to_dict()
