"""``fill`` for .xlsx/.xlsm: the cell-fill semantics of spreadsheet AI functions.

A normal load is what gets written and saved, so styles, formulas, validation, conditional
formats, tables and VBA (``.xlsm``) survive. It holds the whole workbook in memory
(openpyxl needs tens of times the file size); that is the price of keeping everything.

Planning (finding the header, deciding which rows need a call and with what text) reads
the source cells' *values*. The loaded sheet has them, except where a cell holds a formula:
there it has the formula's text, and only a ``read_only=True, data_only=True`` pass gives
the cached result. So that second load is made only when the header rows or the source
columns hold a formula; measured, skipping it saves ~0.8 s of CPU per 20k rows before the
first call. The planned rows' texts are kept for ``run_many`` (a fraction of the cells
already in memory).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from fieldwise.exceptions import BudgetExceededError
from fieldwise.tables import (
    ERROR_COLUMN,
    STATUS_COLUMN,
    Column,
    FillReport,
    RowPlanner,
    TableError,
    cells_to_write,
    check_columns,
    default_output,
    error_text,
    extract_rows,
    input_file,
    is_blank,
    model_columns,
    ready_to_extract,
    value_cells,
    warner,
)

from . import _book
from ._sheet import (
    Layout,
    add_columns,
    build_layout,
    existing_value,
    formula_positions,
    header_names,
    protected,
    stored_rows,
    write_value,
)

SUFFIXES = (".xlsx", ".xlsm")


class _Planner(RowPlanner):
    """Decides which rows need a call and with what text (one pass; ``_write_row`` reuses
    its ``writable``/``existing`` views of the sheet)."""

    def __init__(
        self,
        ws: Worksheet,
        layout: Layout,
        sources: Sequence[str],
        columns: Sequence[Column],
        options: dict[str, Any],
    ) -> None:
        super().__init__(options["only_empty"], options["limit"])
        self.ws = ws
        self.layout = layout
        self.sources = sources
        self.columns = columns
        self.merged_skips = 0
        self._anchors: dict[tuple[int, int], Any] = {}
        self._anchor_cells = set(layout.source_anchor.values())

    def writable(self, row: int) -> list[Column]:
        return [
            c
            for c in self.columns
            if not protected(self.ws, self.layout, row, self.layout.columns[c.header])
        ]

    def existing(self, row: int, columns: Sequence[Column]) -> dict[str, Any]:
        return {
            c.header: existing_value(self.ws, row, self.layout.columns[c.header]) for c in columns
        }

    def _source(self, row: int, values: Sequence[Any], column: int) -> Any:
        anchor = self.layout.source_anchor.get((row, column))
        if anchor is not None:
            return self._anchors.get(anchor)
        value = values[column - 1] if column <= len(values) else None
        if (row, column) in self._anchor_cells:
            self._anchors[(row, column)] = value
        return value

    def plan(self, row: int, values: Sequence[Any], report: FillReport | None) -> str | None:
        sources = {n: self._source(row, values, self.layout.columns[n]) for n in self.sources}
        if row <= self.layout.header_row:
            return None
        if all(is_blank(v) for v in values) and all(is_blank(v) for v in sources.values()):
            return None  # an empty row (a merged source cell shows its anchor's text)
        if report is not None:
            report.rows += 1
        writable = self.writable(row)
        if report is not None:
            self.merged_skips += sum(
                (row, self.layout.columns[c.header]) in self.layout.merged_children
                for c in self.columns
            )
        if not writable:
            if report is not None:
                report.unchanged += 1
            return None
        return self.decide(self.existing(row, writable), writable, sources, self.sources, report)


def _rows(book: Workbook, title: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(row number, values)`` from the read-only workbook, every row from the first.

    The sheet's stored dimensions are ignored (``reset_dimensions``): some writers store
    ``A1`` for any size, and the reader would then stop after one row.
    """
    ws = book[title]
    ws.reset_dimensions()
    yield from enumerate(ws.iter_rows(values_only=True), start=1)


def _sheet(book: Workbook, name: str | None, path: Path) -> Worksheet:
    if name is None:
        ws = book.active
    elif name in book.sheetnames:
        ws = book[name]
    else:
        raise TableError(f"{path}: no sheet {name!r}; sheets: {', '.join(book.sheetnames)}.")
    if not isinstance(ws, Worksheet):
        raise TableError(f"{path}: sheet {getattr(ws, 'title', name)!r} is not a worksheet.")
    return ws


def _write_row(
    ws: Worksheet,
    planner: _Planner,
    row: int,
    item: Any,
    status_columns: bool,
) -> int:
    """Write one row's answer (or its status); the number of target cells written."""
    layout = planner.layout
    updates: dict[str, Any] = {}
    if item.result is not None:
        writable = planner.writable(row)
        new = value_cells(item.result.value, writable, typed=True)
        existing = planner.existing(row, writable)
        updates = cells_to_write(existing, new, planner.only_empty)
    written = len(updates)
    if status_columns:
        skipped = isinstance(item.error, BudgetExceededError)
        updates[STATUS_COLUMN] = "ok" if item.ok else ("skipped" if skipped else "error")
        updates[ERROR_COLUMN] = error_text(item.error) or None
    for name, value in updates.items():
        write_value(ws.cell(row, layout.columns[name]), value)
    return written


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
    force: bool = False,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    warn: Callable[[str], None] | None = None,
    **_ignored: Any,
) -> dict[str, Any]:
    """Fill the schema's columns of one sheet; see ``docs/plugins.md``."""
    say = warner(warn)
    source = input_file(path)
    suffix = source.suffix.lower()
    if suffix not in SUFFIXES:
        raise TableError(f"{source}: the xlsx adapter reads {' and '.join(SUFFIXES)} files.")
    destination = default_output(source, Path(output) if output else None, in_place)
    if destination.suffix.lower() != suffix:
        raise TableError(f"-o {destination}: keep the input's {suffix} suffix.")
    columns = model_columns(target)
    if in_place:
        _book.check_unlocked(source)
    elif destination.exists():
        _book.check_unlocked(destination)
    notes = _book.inspect(source, in_place=in_place, force=force)
    book = _book.load(source, say, keep_vba=suffix == ".xlsm", rich_text=True, keep_links=True)
    ws = _sheet(book, sheet, source)
    with _Values(source, ws) as values:
        return _fill_sheet(
            source, destination, book, ws, values, columns, notes, say,
            target=target, sources=sources, extractor=extractor, in_place=in_place,
            dry_run=dry_run, concurrency=concurrency, max_cost=max_cost, on_total=on_total,
            on_progress=on_progress,
            options={"only_empty": only_empty, "limit": limit, "status": status_columns},
        )  # fmt: skip


class _Values:
    """The sheet's rows as values for planning: from the loaded sheet, or, where a cell
    that planning reads holds a formula, from a ``data_only`` pass (its cached result)."""

    def __init__(self, source: Path, ws: Worksheet) -> None:
        self.source = source
        self.ws = ws
        self.formulas = formula_positions(ws)
        self.reader: Workbook | None = None

    def __enter__(self) -> _Values:
        return self

    def __exit__(self, *_: object) -> None:
        if self.reader is not None:
            self.reader.close()

    def header(self, sources: Sequence[str]) -> tuple[int, tuple[Any, ...]]:
        """The header row's index among the first rows, and its values.

        Found on the loaded sheet when no formula could change the answer: the header
        names every source and no formula lies in it or above it (rows below the first
        header that names every source do not matter). Otherwise found again on the
        formulas' cached results.
        """
        first = [cells for _, cells in islice(self.rows(), _book.HEADER_SCAN_ROWS)]
        index = _book.find_header(first, sources)
        header = first[index] if first else ()
        names = header_names(header)
        settled = all(name in names for name in sources)
        if self.reader is None and any(
            r <= (index + 1 if settled else _book.HEADER_SCAN_ROWS) for r, _ in self.formulas
        ):
            self._open_reader()
            return self.header(sources)
        return index, header

    def use_cached_results(self, columns: Iterable[int]) -> None:
        """Read the rows from the ``data_only`` pass if a formula lies in ``columns``."""
        wanted = set(columns)
        if self.reader is None and any(c in wanted for _, c in self.formulas):
            self._open_reader()

    def _open_reader(self) -> None:
        self.reader = _book.load(self.source, lambda _: None, read_only=True, data_only=True)

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        if self.reader is None:
            return stored_rows(self.ws)
        return _rows(self.reader, self.ws.title)


def _fill_sheet(
    source: Path,
    destination: Path,
    book: Workbook,
    ws: Worksheet,
    values: _Values,
    columns: list[Column],
    notes: list[str],
    say: Callable[[str], None],
    *,
    target: Any,
    sources: Sequence[str],
    extractor: Any,
    in_place: bool,
    dry_run: bool,
    concurrency: int,
    max_cost: float | None,
    on_total: Callable[[int], None] | None,
    on_progress: Callable[[Any], None] | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    index, header_values = values.header(sources)
    where = f"{source.name} sheet {ws.title!r} header row {index + 1}"
    check_columns(list(header_names(header_values)), sources, columns, where)
    targets = [c.header for c in columns]
    if options["status"]:
        targets += [STATUS_COLUMN, ERROR_COLUMN]
    layout = build_layout(ws, index + 1, header_values, targets, sources)
    report = FillReport(output=str(destination), dry_run=dry_run, created_columns=layout.new)
    planner = _Planner(ws, layout, sources, columns, options)
    values.use_cached_results(layout.columns[name] for name in sources)
    texts: list[tuple[int, str]] = []
    for row, cells in values.rows():
        text = planner.plan(row, cells, report)
        if text is not None:
            texts.append((row, text))
    report.planned = planner.planned
    if planner.merged_skips:
        notes.append(
            f"{planner.merged_skips} target cell(s) lie inside merged ranges (not their "
            "top-left cell) and are left alone."
        )
    for text in notes:  # now, before any call: the user can still stop here
        say(text)
    report.warnings.extend(notes)
    if not ready_to_extract(report, dry_run=dry_run, extractor=extractor, on_total=on_total):
        return report.to_dict()
    report.warnings.extend(add_columns(ws, layout))  # table notes: reported, not warned
    results = extract_rows(
        extractor, target, texts, concurrency=concurrency, max_cost=max_cost,
        on_progress=on_progress, report=report,
    )  # fmt: skip
    try:
        for row, item in results:
            report.cells_written += _write_row(ws, planner, row, item, options["status"])
    finally:
        results.close()
    _book.save(book, source, destination, backup=in_place)
    return report.to_dict()
