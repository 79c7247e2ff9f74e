"""One worksheet part, read and edited in place.

Rows are indexed by where they lie in the text; a row's cells are parsed again when asked
for (their values by ``_cells.CellCodec``), so memory holds the part's text and a few
numbers per row, not an object per cell.

Writing collects new cells per row; ``render`` then copies the part, rebuilding only the
rows that changed (cells kept in column order, a row created where none was) and the
sheet's dimension. Every byte outside those rows comes out as it went in.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.utils.cell import column_index_from_string

from fieldwise.tables import TableError, is_blank

from ._cells import Cell, CellCodec
from ._styles import Styles
from ._xml import (
    attributes,
    element,
    plain_markup,
    qualified,
    quoted,
    root_prefix,
    start_tag,
)

_ROW_NUMBER = re.compile(r"""\sr\s*=\s*["'](\d+)["']""")
_CELL_REF = re.compile(r"""\sr\s*=\s*["']([A-Za-z]{1,3})(\d+)["']""")
_SPANS = re.compile(r"""\sspans\s*=\s*(?:"[^"]*"|'[^']*')""")
#: a formula's ``t`` when its one ``<f>`` (in the range's top-left cell) fills a range
_RANGE_FORMULAS = ("array", "dataTable")


@cache
def _column_number(letters: str) -> int:
    return column_index_from_string(letters.upper())


@cache
def _closing(tag: str) -> re.Pattern[str]:
    return re.compile(rf"</{re.escape(tag)}\s*>")


class RowCells:
    """One row's stored cells, decoded when first asked for."""

    __slots__ = ("_cells", "grid", "raw")

    def __init__(self, grid: Grid, raw: dict[int, tuple[str, str]]) -> None:
        self.grid = grid
        self.raw = raw
        self._cells: dict[int, Cell] = {}

    def cell(self, column: int) -> Cell | None:
        found = self._cells.get(column)
        if found is None and column in self.raw:
            found = self._cells[column] = self.grid.codec.read(*self.raw[column])
        return found

    def value(self, column: int) -> Any:
        found = self.cell(column)
        return None if found is None else found.value

    def values(self) -> tuple[Any, ...]:
        """Values from column A to the row's last stored cell."""
        return tuple(self.value(c) for c in range(1, max(self.raw, default=0) + 1))

    def blank(self) -> bool:
        return all(is_blank(self.value(c)) for c in self.raw)

    def last_used(self, known: int) -> int:
        """The row's rightmost column holding a value or formula, if right of ``known``
        (cells are stored in column order, so reading from the right end soon stops)."""
        for column in sorted(self.raw, reverse=True):
            if column <= known:
                break
            cell = self.cell(column)
            if cell is not None and (cell.value is not None or cell.formula):
                return column
        return known


class Grid:
    """The cells of one worksheet part."""

    def __init__(
        self, data: bytes, part: str, strings: Sequence[str], styles: Styles, date1904: bool
    ) -> None:
        self.part = part
        self.xml = plain_markup(data, part)
        self.prefix = p = root_prefix(self.xml, part)
        self.codec = CellCodec(part, p, strings, styles, date1904)
        self._cell_start = start_tag(p, "c")
        self._cell_element = element(p, "c")
        self._extensions = f"<{self._tag('extLst')}"
        self._cell_open = f"<{self._tag('c')}"
        sheet_data = element(p, "sheetData").search(self.xml)
        if sheet_data is None:
            raise TableError(f"{part}: the worksheet has no sheetData.")
        self.head_end = sheet_data.start()
        self.body_start = sheet_data.start(3) if sheet_data[3] is not None else -1
        self.body_end = sheet_data.end(3) if sheet_data[3] is not None else -1
        self.tail_start = sheet_data.end()
        #: per stored row: number, start, content start, content end, end
        self._rows: tuple[array[int], ...] = tuple(array("q") for _ in range(5))
        self._index_rows()
        self.merged = [
            _bounds(attributes(m[1]).get("ref", ""))
            for m in element(p, "mergeCell").finditer(self.xml, self.tail_start)
        ]
        #: the ranges of array and data-table formulas wider than their one cell
        self.formula_ranges = self._formula_ranges()
        #: ``(min, max, style)`` of the ``<col>`` records that give their cells a format
        self._column_records = self._styled_columns()
        self._column_styles: dict[int, int | None] = {}
        self._edits: dict[int, dict[int, str] | str] = {}
        #: the highest column and row written
        self._extent = (0, 0)
        #: the row being written: its number and its last stored cell's column
        self._writing: tuple[int, int | None] = (0, 0)
        #: the row's format (when it has a custom one), whether new cells take a default
        self._row_style: int | None = None
        self._defaults = False
        #: per written row: its last stored cell's column (``None``: cells without ``r``)
        self._last_cells: dict[int, int | None] = {}
        self._parsed: tuple[int, RowCells] = (0, RowCells(self, {}))
        self._last_used: int | None = None

    def _tag(self, name: str) -> str:
        return qualified(self.prefix, name)

    def _index_rows(self) -> None:
        if self.body_start < 0:
            return
        xml, end_of_data = self.xml, self.body_end
        opening, closing = start_tag(self.prefix, "row"), _closing(self._tag("row"))
        previous, position = 0, self.body_start
        while (match := opening.search(xml, position, end_of_data)) is not None:
            inner_start = inner_end = end = match.end()
            if not match[2]:
                close = closing.search(xml, inner_start, end_of_data)
                if close is None:
                    raise TableError(f"{self.part}: a row is not closed; the file is damaged.")
                inner_end, end = close.start(), close.end()
            number_match = _ROW_NUMBER.search(match[1])
            number = int(number_match[1]) if number_match else previous + 1
            if number <= previous:
                raise TableError(f"{self.part}: rows are not stored in order (row {number}).")
            for column, value in zip(
                self._rows, (number, match.start(), inner_start, inner_end, end), strict=True
            ):
                column.append(value)
            position, previous = end, number

    def _formula_ranges(self) -> list[tuple[int, int, int, int]]:
        """Only an array or data-table formula's top-left cell holds its ``<f>``; the
        other cells of its ``ref`` hold results alone, and are as much the formula's."""
        start, end = self.body_start, self.body_end
        xml = self.xml
        if start < 0 or all(xml.find(kind, start, end) < 0 for kind in _RANGE_FORMULAS):
            return []
        ranges = []
        for match in start_tag(self.prefix, "f").finditer(xml, start, end):
            if not any(kind in match[1] for kind in _RANGE_FORMULAS):
                continue
            found = attributes(match[1])
            if found.get("t") in _RANGE_FORMULAS and found.get("ref"):
                bounds = _bounds(found["ref"])
                if bounds[:2] != bounds[2:]:
                    ranges.append(bounds)
        return ranges

    @property
    def _numbers(self) -> array[int]:
        return self._rows[0]

    # -- reading ---------------------------------------------------------------------

    def rows(self, until: int = 0) -> Iterator[tuple[int, RowCells]]:
        """``(row number, cells)`` for every row from 1 to the last stored one, or to
        ``until`` if that is further (a row that is not stored has no cells). A pass to
        the end also learns the last used column, so ``last_used_column`` need not read
        the sheet again."""
        expected, last_used = 1, 0
        for position, number in enumerate(self._numbers):
            while expected < number:
                yield expected, RowCells(self, {})
                expected += 1
            cells = RowCells(self, self._raw_cells(position))
            self._parsed = (number, cells)
            yield number, cells
            last_used = max(last_used, cells.last_used(last_used))
            expected = number + 1
        self._last_used = last_used
        while expected <= until:
            yield expected, RowCells(self, {})
            expected += 1

    @property
    def last_row(self) -> int:
        """The number of the last stored row (0: none)."""
        return self._numbers[-1] if self._numbers else 0

    def cells(self, row: int) -> RowCells:
        """The stored cells of one row (none for a row not stored)."""
        if self._parsed[0] == row:
            return self._parsed[1]
        position = self._position(row)
        cells = RowCells(self, self._raw_cells(position) if position is not None else {})
        self._parsed = (row, cells)
        return cells

    def cell(self, row: int, column: int) -> Cell | None:
        return self.cells(row).cell(column)

    def last_used_column(self) -> int:
        """The rightmost column holding a value or formula (styled blanks do not count)."""
        if self._last_used is None:
            for _ in self.rows():
                pass
        assert self._last_used is not None  # set by a full pass
        return self._last_used

    def _position(self, row: int) -> int | None:
        position = bisect_left(self._numbers, row)
        if position < len(self._numbers) and self._numbers[position] == row:
            return position
        return None

    def _inner(self, position: int) -> str:
        return self.xml[self._rows[2][position] : self._cells_end(position)]

    def _cells_end(self, position: int) -> int:
        """Where a row's cells end: at its ``extLst`` if it has one, else at its end. (A
        cell may have an ``extLst`` of its own: the row's comes after the last cell.)"""
        start, end = self._rows[2][position], self._rows[3][position]
        found = self.xml.find(self._extensions, start, end)
        if found < 0:
            return end
        last_cell_end = start
        for match in self._cell_element.finditer(self.xml, start, end):
            last_cell_end = match.end()
        found = self.xml.find(self._extensions, last_cell_end, end)
        return end if found < 0 else found

    def _raw_cells(self, position: int) -> dict[int, tuple[str, str]]:
        """``{column: (attributes, content)}`` of a stored row."""
        return {c: (attrs, inner) for c, attrs, inner, _ in self._scan(self._inner(position))}

    def _scan(self, body: str) -> Iterator[tuple[int, str, str, str]]:
        """Each cell of a row's markup: column, attributes, content and whole markup. A
        cell that is not closed (so that the pattern skips it, or takes the next cell
        into it) is damage, not something to leave out."""
        column, previous = 0, 0
        opening = self._cell_open
        for match in self._cell_element.finditer(body):
            inner = match[3] or ""
            start = match.start()
            if opening in inner or body.find(opening, previous, start) >= 0:
                self._check_cells(inner, body[previous:start])
            ref = _CELL_REF.search(match[1])
            column = _column_number(ref[1]) if ref else column + 1
            yield column, match[1], inner, match[0]
            previous = match.end()
        if body.find(opening, previous) >= 0:
            self._check_cells("", body[previous:])

    def _check_cells(self, *texts: str) -> None:
        if any(self._cell_start.search(text) for text in texts):
            raise TableError(f"{self.part}: a cell is not closed; the file is damaged.")

    # -- writing ---------------------------------------------------------------------

    def write(self, row: int, column: int, value: Any, *, style: int | None = None) -> None:
        """Set a cell to a typed value (``None`` blanks it), keeping its format record
        unless a date or ``=text`` needs one derived from it. A new cell takes ``style``,
        else the format Excel gives a cell typed there: its row's (when the row has a
        custom format), else its column's."""
        if self._writing[0] != row:
            self._seal(self._writing[0])
            position = self._position(row)
            last, row_style = (0, None) if position is None else self._row_facts(position)
            self._writing = (row, last)
            self._last_cells[row] = last
            self._row_style = row_style
            self._defaults = row_style is not None or bool(self._column_records)
        last = self._writing[1]
        stored = self.cell(row, column) if last is None or column <= last else None
        if stored is not None:
            style = stored.style  # a stored cell keeps its format
        elif value is None:
            return  # blanking a cell that is not there
        elif style is None and self._defaults:
            style = self._row_style if self._row_style is not None else self._column_style(column)
        ref = f"{get_column_letter(column)}{row}"
        edits = self._edits.setdefault(row, {})
        if isinstance(edits, str):  # written again after it was sealed: open it up
            edits = self._edits[row] = {c: m for c, _, _, m in self._scan(edits)}
        edits[column] = self.codec.markup(ref, value, style)
        self._extent = (max(self._extent[0], column), max(self._extent[1], row))

    def _row_facts(self, position: int) -> tuple[int | None, int | None]:
        """A stored row's last cell's column (see ``_last_cell``) and its format record
        when it has a custom one (``customFormat``), which cells typed into it take."""
        last = self._last_cell(self._inner(position))
        start, end = self._rows[1][position], self._rows[2][position]
        if self.xml.find("customFormat", start, end) < 0:
            return last, None
        found = attributes(self.xml[start:end])
        if found.get("customFormat", "0").lower() not in ("1", "true"):
            return last, None
        style = found.get("s", "0")
        return last, int(style) if style.isdigit() else None

    def _column_style(self, column: int) -> int | None:
        """The format record a column's ``<col style>`` gives the cells typed into it."""
        if column not in self._column_styles:
            records = self._column_records
            found = (style for low, high, style in records if low <= column <= high)
            self._column_styles[column] = next(found, None)
        return self._column_styles[column]

    def _styled_columns(self) -> list[tuple[int, int, int]]:
        cols = element(self.prefix, "cols").search(self.xml, 0, self.head_end)
        records = []
        for match in element(self.prefix, "col").finditer(cols[3] or "" if cols else ""):
            found = attributes(match[1])
            low, high, style = (found.get(k, "") for k in ("min", "max", "style"))
            if low.isdigit() and high.isdigit() and style.isdigit():
                records.append((int(low), int(high), int(style)))
        return records

    def _seal(self, row: int) -> None:
        """A finished row's new cells as one piece of markup, when they all go after its
        stored cells (new columns): half the memory of a cell per string, and ``render``
        has nothing left to do for it."""
        edits = self._edits.get(row)
        last = self._last_cells.get(row)
        if isinstance(edits, dict) and edits and last is not None and last < min(edits):
            self._edits[row] = "".join(edits[c] for c in sorted(edits))

    @property
    def edited(self) -> bool:
        return bool(self._edits)

    def render(self, head: str | None = None) -> Iterator[str]:
        """The part, in pieces, with every written cell in place; ``head`` replaces the
        markup before ``sheetData`` (column widths)."""
        self._seal(self._writing[0])
        xml = self.xml
        yield _with_dimension(head if head is not None else xml[: self.head_end],
                              self.prefix, self._extent if self._edits else None)  # fmt: skip
        cursor = self.head_end
        if self.body_start < 0 and self._edits:  # <sheetData/>: open it
            data = self._tag("sheetData")
            yield f"<{data}>"
            for row in sorted(self._edits):
                yield self._new_row(row, self._edits[row])
            yield f"</{data}>"
            yield xml[self.tail_start :]
            return
        for row in sorted(self._edits):
            position = self._position(row)
            if position is None:
                following = bisect_left(self._numbers, row)
                starts = self._rows[1]
                at = starts[following] if following < len(starts) else self.body_end
                yield xml[cursor:at]
                yield self._new_row(row, self._edits[row])
                cursor = at
            else:
                yield xml[cursor : self._rows[1][position]]
                yield self._rebuilt_row(position, self._edits[row])
                cursor = self._rows[4][position]
        yield xml[cursor:]

    def _new_row(self, row: int, edits: dict[int, str] | str) -> str:
        tag = self._tag("row")
        cells = edits if isinstance(edits, str) else "".join(edits[c] for c in sorted(edits))
        return f'<{tag} r="{row}">{cells}</{tag}>'

    def _rebuilt_row(self, position: int, edits: dict[int, str] | str) -> str:
        """A stored row with its edits: when they all lie right of its last cell (new
        columns), its cells are kept as one piece; otherwise each is placed anew."""
        number = self._numbers[position]
        opening = start_tag(self.prefix, "row").match(self.xml, self._rows[1][position])
        assert opening is not None  # indexed from this very pattern
        attrs = opening[1]
        if "spans" in attrs:
            attrs = _SPANS.sub("", attrs)  # an optional hint that new cells would falsify
        if not _ROW_NUMBER.search(attrs):
            attrs = f' r="{number}"' + attrs
        row, inner = self._tag("row"), self._inner(position)
        tail = self.xml[self._cells_end(position) : self._rows[3][position]]  # its extLst
        if isinstance(edits, str):  # sealed: new cells after the stored ones
            return f"<{row}{attrs}>{inner}{edits}{tail}</{row}>"
        last = self._last_cells[number]
        if last is not None and last < min(edits):
            cells = inner + "".join(edits[c] for c in sorted(edits))
            return f"<{row}{attrs}>{cells}{tail}</{row}>"
        placed: dict[int, str] = {}
        tag = self._tag("c")
        for column, cell_attrs, _, markup in self._scan(inner):
            if not _CELL_REF.search(cell_attrs):  # neighbours may move: say where it is
                ref = f"{get_column_letter(column)}{number}"
                markup = f'<{tag} r="{ref}"' + markup[len(tag) + 1 :]
            placed[column] = markup
        placed.update(edits)
        cells = "".join(placed[c] for c in sorted(placed))
        return f"<{row}{attrs}>{cells}{tail}</{row}>"

    def _last_cell(self, inner: str) -> int | None:
        """The column of a row's last stored cell (0: none), read from the end; ``None``
        when it does not say (no ``r``), and so neither may the others."""
        tag = "<" + self._tag("c")
        at = len(inner)
        while (at := inner.rfind(tag, 0, at)) >= 0:
            found = self._cell_start.match(inner, at)
            if found is not None:
                ref = _CELL_REF.search(found[1])
                return _column_number(ref[1]) if ref else None
        return 0


def _bounds(ref: str) -> tuple[int, int, int, int]:
    """``(min_col, min_row, max_col, max_row)`` of a range such as ``A1:D1``."""
    min_col, min_row, max_col, max_row = range_boundaries(ref)
    return (min_col or 1, min_row or 1, max_col or min_col or 1, max_row or min_row or 1)


def _with_dimension(head: str, prefix: str, extent: tuple[int, int] | None) -> str:
    """The head with its ``<dimension ref>`` grown to cover what was written."""
    if extent is None:
        return head
    found = element(prefix, "dimension").search(head)
    if found is None:
        return head
    ref = attributes(found[1]).get("ref", "A1")
    try:
        min_col, min_row, max_col, max_row = _bounds(ref)
    except (ValueError, TypeError):
        return head
    max_col, max_row = max(max_col, extent[0]), max(max_row, extent[1])
    new = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{max_row}"
    tag = qualified(prefix, "dimension")
    return head[: found.start()] + f"<{tag} ref={quoted(new)}/>" + head[found.end() :]
