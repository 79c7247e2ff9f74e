"""Where things are on the sheet: the header row, each column by name, merged ranges,
and adding the new columns (styled and sized like their neighbour, inside an adjacent
table).

Columns are always found by their header text, never by position: users insert and
reorder columns, and a fill must land in the column they named.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl.utils import get_column_letter

from fieldwise.tables import TableError, source_text

from ._grid import Grid
from ._tables import TablePart
from ._xml import attributes, element, qualified, start_tag, with_body

#: Excel's last column, XFD.
_LAST_COLUMN = 16_384
#: Beyond Excel's last column: where a new column stands until placed.
_UNPLACED = 1 << 20


@dataclass
class Layout:
    """Column numbers (1-based) by header name, for the sheet being filled."""

    header_row: int
    columns: dict[str, int]
    new: list[str] = field(default_factory=list)
    #: non-anchor cells of merged ranges in the target columns: never written
    merged_children: set[tuple[int, int]] = field(default_factory=set)
    #: for source cells inside a merged range: the range's anchor, whose value they show
    source_anchor: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    #: the last row a merged source range reaches (0: none), which may lie below the
    #: last stored row
    merged_end: int = 0
    #: per target column, the row spans of array and data-table formulas over it (first
    #: rows, last rows; sorted, as such ranges cannot overlap): never written
    formula_spans: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)

    def in_formula(self, row: int, column: int) -> bool:
        """Whether a target cell lies in an array or data-table formula's range."""
        spans = self.formula_spans.get(column)
        if spans is None:
            return False
        at = bisect_right(spans[0], row) - 1
        return at >= 0 and row <= spans[1][at]


def header_names(values: Sequence[Any]) -> dict[str, int]:
    """``{name: column}`` from a header row's values; the first of duplicates wins."""
    names: dict[str, int] = {}
    for index, value in enumerate(values, start=1):
        name = source_text(value).strip()
        if name:
            names.setdefault(name, index)
    return names


def _last_used_column(grid: Grid, tables: Sequence[TablePart]) -> int:
    """The rightmost column holding anything: a value, a merged range, an array or
    data-table formula's range, a table."""
    last = grid.last_used_column()
    for merged in (*grid.merged, *grid.formula_ranges):
        last = max(last, merged[2])
    for table in tables:
        last = max(last, table.bounds[2])
    return last


def tables_over(grid: Grid, tables: Sequence[TablePart], layout: Layout) -> list[TablePart]:
    """The tables over a source or target column, counting one that ``add_columns`` will
    grow over the new columns (which lie beyond every table until then)."""
    used = set(layout.columns.values())
    over, beside = [], []
    for table in tables:
        min_col, min_row, max_col, _ = table.bounds
        if any(min_col <= column <= max_col for column in used):
            over.append(table)
        elif layout.new and min_row == layout.header_row:
            beside.append(table)
    if beside and any(table.totals_rows for table in beside):  # it matters: find out
        first = _last_used_column(grid, tables) + 1
        over += [t for t in beside if t.would_grow(layout.header_row, first, layout.new[0])]
    return over


def build_layout(
    grid: Grid,
    tables: Sequence[TablePart],
    header_row: int,
    header_values: Sequence[Any],
    targets: Sequence[str],
    sources: Sequence[str],
) -> Layout:
    """Find every target column by name. The missing ones are placed by ``add_columns``,
    after the last used column, which a planning pass over the rows learns on the way;
    until then they stand beyond the sheet's last possible column, where no cell is."""
    columns = header_names(header_values)
    layout = Layout(header_row, {name: columns[name] for name in sources})
    for name in targets:
        if name in columns:
            layout.columns[name] = columns[name]
        else:
            layout.columns[name] = _UNPLACED + len(layout.new)
            layout.new.append(name)
    target_columns = {layout.columns[name] for name in targets}
    source_columns = {layout.columns[name] for name in sources}
    for min_col, min_row, max_col, max_row in grid.merged:
        anchor = (min_row, min_col)
        for column in range(min_col, max_col + 1):
            if column not in target_columns and column not in source_columns:
                continue
            for row in range(max(min_row, header_row + 1), max_row + 1):
                if (row, column) == anchor:
                    continue
                if column in target_columns:
                    layout.merged_children.add((row, column))
                else:
                    layout.source_anchor[(row, column)] = anchor
                    layout.merged_end = max(layout.merged_end, row)
    spans: dict[int, list[tuple[int, int]]] = {}
    for min_col, min_row, max_col, max_row in grid.formula_ranges:
        for column in (c for c in target_columns if min_col <= c <= max_col):
            spans.setdefault(column, []).append((min_row, max_row))
    for column, found in spans.items():
        found.sort()
        layout.formula_spans[column] = ([low for low, _ in found], [high for _, high in found])
    return layout


def add_columns(
    grid: Grid, tables: Sequence[TablePart], layout: Layout
) -> tuple[str, list[str], list[str]]:
    """Write the new columns' headers, styled like the header to their left, give them
    the width of the column to their left, and grow a table whose right edge they touch.
    Returns the sheet's new head (the markup before its cells), notes for the report
    (tables grown) and warnings for the user (a new column the sheet hides)."""
    notes: list[str] = []
    warnings: list[str] = []
    head = grid.xml[: grid.head_end]
    first = _last_used_column(grid, tables) + 1
    if layout.new and first + len(layout.new) - 1 > _LAST_COLUMN:
        raise TableError(
            f"{grid.part}: the sheet's columns reach {get_column_letter(first - 1)}; "
            f"{len(layout.new)} new column(s) would go past Excel's last column, XFD."
        )
    for offset, name in enumerate(layout.new):
        layout.columns[name] = first + offset
    left = grid.cell(layout.header_row, first - 1)  # every new header is formatted like it
    style = left.style if left is not None else None
    for name in layout.new:
        column = layout.columns[name]
        grid.write(layout.header_row, column, name, style=style)
        width = column_width(head, grid.prefix, column - 1)
        if column > 1 and width is not None:
            head = with_column_width(head, grid.prefix, column, width)
        if column_hidden(head, grid.prefix, column):
            warnings.append(
                f"new column {name!r} ({get_column_letter(column)}) is hidden in the sheet; "
                "unhide it to see what was filled."
            )
        for table in tables:
            note = table.grow(layout.header_row, column, name)
            if note is not None:
                notes.append(note)
    return head, notes, warnings


def protection_warning(grid: Grid, title: str) -> str | None:
    """A warning when the sheet is protected in Excel (``sheetProtection`` with ``sheet``
    on): protection only guards edits made in Excel, so the fill writes its cells anyway,
    and the user should know before any call."""
    found = start_tag(grid.prefix, "sheetProtection").search(grid.xml, grid.tail_start)
    if found is None or attributes(found[1]).get("sheet", "").lower() not in ("1", "true"):
        return None
    return (
        f"sheet {title!r} is protected in Excel; the fill writes its cells anyway "
        "(protection only guards edits made in Excel), and the copy keeps the protection."
    )


def _column_records(head: str, prefix: str) -> list[tuple[int, int, dict[str, str], str]]:
    """The ``<col>`` records of the sheet: ``(min, max, attributes, markup)``."""
    cols = element(prefix, "cols").search(head)
    if cols is None:
        return []
    records = []
    for match in element(prefix, "col").finditer(cols[3] or ""):
        found = attributes(match[1])
        records.append((int(found.get("min", "0")), int(found.get("max", "0")), found, match[0]))
    return records


def column_hidden(head: str, prefix: str, column: int) -> bool:
    return any(
        low <= column <= high and found.get("hidden", "0").lower() in ("1", "true")
        for low, high, found, _ in _column_records(head, prefix)
    )


def column_width(head: str, prefix: str, column: int) -> str | None:
    """The stored width of a column (as written), when one is set."""
    for low, high, found, _ in _column_records(head, prefix):
        if low <= column <= high and "width" in found:
            return found["width"]
    return None


def with_column_width(head: str, prefix: str, column: int, width: str) -> str:
    """The head with a width record for ``column``, unless a record already covers it."""
    records = _column_records(head, prefix)
    if any(low <= column <= high for low, high, _, _ in records):
        return head
    tag = qualified(prefix, "col")
    record = f'<{tag} min="{column}" max="{column}" width="{width}" customWidth="1"/>'
    cols = element(prefix, "cols").search(head)
    assert cols is not None  # a width was read from it
    before = [m for low, _, _, m in records if low < column]
    after = [m for low, _, _, m in records if low > column]
    body = "".join(before) + record + "".join(after)
    return with_body(head, cols, qualified(prefix, "cols"), body)
