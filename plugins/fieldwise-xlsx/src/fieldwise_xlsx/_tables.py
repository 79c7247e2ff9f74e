"""The Excel tables (``ListObject``s) on a sheet: where they lie, and growing one over a
column a fill adds beside it (Excel tables do not grow by themselves)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openpyxl.utils import get_column_letter, range_boundaries

from ._package import Package
from ._xml import (
    attributes,
    element,
    plain_markup,
    qualified,
    quoted,
    root_prefix,
    start_tag,
    with_attributes,
    with_body,
)


@dataclass
class TablePart:
    part: str
    xml: str
    prefix: str
    changed: bool = False

    @property
    def name(self) -> str:
        found = attributes(self._root()[1])
        return found.get("displayName") or found.get("name") or self.part

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(min_col, min_row, max_col, max_row)``."""
        min_col, min_row, max_col, max_row = range_boundaries(
            attributes(self._root()[1]).get("ref", "A1")
        )
        return (min_col or 1, min_row or 1, max_col or 1, max_row or 1)

    def _root(self) -> re.Match[str]:
        found = start_tag(self.prefix, "table").search(self.xml)
        assert found is not None  # checked when read
        return found

    def grow(self, header_row: int, column: int, name: str) -> str | None:
        """Extend the table over ``column`` when it ends just left of it and starts at the
        header row; the note to report, or ``None``."""
        if not self._ends_before(header_row, column):
            return None
        min_col, min_row, _, max_row = self.bounds
        if self._has_column(name):
            return (
                f"table {self.name} not extended over column {name!r}: it has a column of "
                "that name already (Excel compares them ignoring case)"
            )
        ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(column)}{max_row}"
        root = self._root()
        self.xml = (
            self.xml[: root.start()]
            + with_attributes(root[0], {"ref": ref})
            + self.xml[root.end() :]
        )
        self._grow_filter(column)
        self._add_column(name)
        self.changed = True
        return f"table {self.name} extended with column {name!r}"

    def would_grow(self, header_row: int, column: int, name: str) -> bool:
        """Whether ``grow`` would extend the table over this new column."""
        return self._ends_before(header_row, column) and not self._has_column(name)

    def _ends_before(self, header_row: int, column: int) -> bool:
        """Whether the table starts at the header row and ends just left of ``column``."""
        _, min_row, max_col, _ = self.bounds
        return min_row == header_row and max_col == column - 1

    def _has_column(self, name: str) -> bool:
        return name.casefold() in {known.casefold() for known in self.column_names()}

    def column_names(self) -> list[str]:
        columns = element(self.prefix, "tableColumns").search(self.xml)
        tag = start_tag(self.prefix, "tableColumn")
        return [
            attributes(m[1]).get("name", "") for m in tag.finditer(columns[0] if columns else "")
        ]

    @property
    def header_rows(self) -> range:
        """The table's header row, unless it hides it (``headerRowCount="0"``)."""
        found = attributes(self._root()[1])
        count = int(found.get("headerRowCount", "1") or 1)
        min_row = self.bounds[1]
        return range(min_row, min_row + count)

    @property
    def totals_rows(self) -> range:
        """The rows of the table's totals row, if it shows one."""
        found = attributes(self._root()[1])
        count = int(found.get("totalsRowCount", "0") or 0)
        max_row = self.bounds[3]
        return range(max_row - count + 1, max_row + 1)

    def _grow_filter(self, column: int) -> None:
        found = start_tag(self.prefix, "autoFilter").search(self.xml)
        if found is None or "ref" not in attributes(found[1]):
            return
        min_col, min_row, _, max_row = range_boundaries(attributes(found[1])["ref"])
        ref = f"{get_column_letter(min_col or 1)}{min_row}:{get_column_letter(column)}{max_row}"
        self.xml = (
            self.xml[: found.start()]
            + with_attributes(found[0], {"ref": ref})
            + self.xml[found.end() :]
        )

    def _add_column(self, name: str) -> None:
        columns = element(self.prefix, "tableColumns").search(self.xml)
        if columns is None:
            return
        body = columns[3] or ""
        existing = [attributes(m[1]) for m in start_tag(self.prefix, "tableColumn").finditer(body)]
        next_id = max((int(c.get("id", "0")) for c in existing), default=0) + 1
        body += f'<{qualified(self.prefix, "tableColumn")} id="{next_id}" name={quoted(name)}/>'
        tag = qualified(self.prefix, "tableColumns")
        self.xml = with_body(self.xml, columns, tag, body, count=len(existing) + 1)

    def render(self) -> bytes:
        return self.xml.encode("utf-8")


def sheet_tables(package: Package, sheet_part: str) -> list[TablePart]:
    """The tables defined on a worksheet."""
    tables = []
    for part in package.related(sheet_part, "table"):
        xml = plain_markup(package.read(part), part)
        prefix = root_prefix(xml, part)
        if start_tag(prefix, "table").search(xml) is None:
            continue
        tables.append(TablePart(part, xml, prefix))
    return tables
