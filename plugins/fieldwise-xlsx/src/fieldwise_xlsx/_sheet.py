"""Where things are on the sheet: the header row, each column by name, merged ranges,
and adding the new columns (styled like their neighbour, inside an adjacent table).

Columns are always found by their header text, never by position: users insert and
reorder columns, and a fill must land in the column they named.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass, field
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, MergedCell
from openpyxl.cell.rich_text import CellRichText
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.worksheet.table import TableColumn
from openpyxl.worksheet.worksheet import Worksheet

from fieldwise.tables import source_text


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


def header_names(values: Sequence[Any]) -> dict[str, int]:
    """``{name: column}`` from a header row's values; the first of duplicates wins."""
    names: dict[str, int] = {}
    for index, value in enumerate(values, start=1):
        name = source_text(value).strip()
        if name:
            names.setdefault(name, index)
    return names


def _last_used_column(ws: Worksheet) -> int:
    """The rightmost column holding anything: a value, a merged range, a table."""
    last = max((c for (_, c), cell in ws._cells.items() if cell.value is not None), default=0)
    for merged in ws.merged_cells.ranges:
        last = max(last, merged.max_col)
    for table in ws.tables.values():
        last = max(last, range_boundaries(table.ref)[2] or 0)
    return last


def build_layout(
    ws: Worksheet,
    header_row: int,
    header_values: Sequence[Any],
    targets: Sequence[str],
    sources: Sequence[str],
) -> Layout:
    """Find every target column by name; place the missing ones after the last used
    column (their headers are written later, by ``add_columns``)."""
    columns = header_names(header_values)
    layout = Layout(header_row, {name: columns[name] for name in sources})
    next_column = _last_used_column(ws) + 1
    for name in targets:
        if name in columns:
            layout.columns[name] = columns[name]
        else:
            layout.columns[name] = next_column
            layout.new.append(name)
            next_column += 1
    target_columns = {layout.columns[name] for name in targets}
    source_columns = {layout.columns[name] for name in sources}
    for merged in ws.merged_cells.ranges:
        anchor = (merged.min_row, merged.min_col)
        for column in range(merged.min_col, merged.max_col + 1):
            if column not in target_columns and column not in source_columns:
                continue
            for row in range(max(merged.min_row, header_row + 1), merged.max_row + 1):
                if (row, column) == anchor:
                    continue
                if column in target_columns:
                    layout.merged_children.add((row, column))
                else:
                    layout.source_anchor[(row, column)] = anchor
    return layout


def protected(ws: Worksheet, layout: Layout, row: int, column: int) -> bool:
    """A target cell fill must never write: a merged range's non-anchor cell, or a
    formula (even with ``--overwrite``: replacing a formula by a value loses work)."""
    if (row, column) in layout.merged_children:
        return True
    cell = ws._cells.get((row, column))
    if cell is None or isinstance(cell, MergedCell):
        return isinstance(cell, MergedCell)
    return is_formula(cell)


def is_formula(cell: Cell | MergedCell) -> bool:
    return cell.data_type == "f" or isinstance(cell.value, (ArrayFormula, DataTableFormula))


def formula_positions(ws: Worksheet) -> list[tuple[int, int]]:
    """``(row, column)`` of every formula cell (a sheet of plain data has none)."""
    return [position for position, cell in ws._cells.items() if is_formula(cell)]


def stored_rows(ws: Worksheet) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(row number, values)`` of the loaded sheet from row 1, as a read-only pass gives
    them (rich text as plain text), without creating cells (``ws.iter_rows`` adds every
    empty cell it passes)."""
    cells = ws._cells
    columns = range(1, ws.max_column + 1)
    for row in range(1, ws.max_row + 1):
        yield row, tuple(_plain(cells.get((row, column))) for column in columns)


def _plain(cell: Cell | MergedCell | None) -> Any:
    if cell is None:
        return None
    value = cell.value
    return str(value) if isinstance(value, CellRichText) else value


def existing_value(ws: Worksheet, row: int, column: int) -> Any:
    """A cell's value without creating the cell (``ws.cell`` would add it to the sheet)."""
    cell = ws._cells.get((row, column))
    return None if cell is None else cell.value


def write_value(cell: Cell | MergedCell, value: Any) -> None:
    """Store a typed value; text always as text.

    openpyxl turns a string starting with ``=`` into a formula and ``#N/A`` into an error
    value; model output must be neither, so the cell's type is forced back to string.
    ``quotePrefix`` makes Excel keep ``=...`` as text when the user edits the cell. A
    merged range's non-anchor cell is never written (openpyxl would raise).
    """
    if isinstance(cell, MergedCell):
        return
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.value = text
        cell.data_type = "s"
        if text.startswith("="):
            cell.quotePrefix = True
    else:
        cell.value = value


def add_columns(ws: Worksheet, layout: Layout) -> list[str]:
    """Write the new columns' headers, styled like the header to their left, and grow a
    table whose right edge they touch. Returns notes for the report."""
    notes: list[str] = []
    for name in layout.new:
        column = layout.columns[name]
        cell = ws.cell(layout.header_row, column)
        write_value(cell, name)
        left = ws._cells.get((layout.header_row, column - 1))
        if isinstance(cell, Cell) and isinstance(left, Cell) and left.has_style:
            # the whole style record at once (font, fill, border, alignment, format)
            cell._style = copy(left._style)  # type: ignore[attr-defined]
        width = ws.column_dimensions[get_column_letter(column - 1)].width
        if column > 1 and width:
            ws.column_dimensions[get_column_letter(column)].width = width
        notes.extend(_grow_tables(ws, layout.header_row, column, name))
    return notes


def _grow_tables(ws: Worksheet, header_row: int, column: int, name: str) -> Iterable[str]:
    """Excel tables do not grow by themselves: extend the one that ends just left of the
    new column and starts at the header row, adding the column to its definition."""
    for table in ws.tables.values():
        min_col, min_row, max_col, max_row = range_boundaries(table.ref)
        if min_row != header_row or max_col != column - 1:
            continue
        table.ref = (
            f"{get_column_letter(min_col or 1)}{min_row}:{get_column_letter(column)}{max_row}"
        )
        next_id = max((c.id for c in table.tableColumns), default=0) + 1
        table.tableColumns.append(TableColumn(id=next_id, name=name))
        if table.autoFilter is not None and table.autoFilter.ref:
            a_min_col, a_min_row, _, a_max_row = range_boundaries(table.autoFilter.ref)
            table.autoFilter.ref = (
                f"{get_column_letter(a_min_col or 1)}{a_min_row}:"
                f"{get_column_letter(column)}{a_max_row}"
            )
        yield f"table {table.displayName or table.name} extended with column {name!r}"
