"""One sheet of a workbook opened for filling, and the workbook written back with only
what the fill changed: the sheet's cells, new cell formats, grown tables, and the
workbook's request that Excel recalculate formulas on opening (a formula that reads a
filled cell still holds its old cached result)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO

from fieldwise.tables import TableError

from ._cells import shared_strings
from ._grid import Grid
from ._package import Package
from ._styles import Styles
from ._tables import TablePart, sheet_tables
from ._xml import element, plain_markup, qualified, root_prefix, start_tag, with_attributes

#: ``calcPr`` comes before these in a workbook part (the schema's order).
_AFTER_CALC = (
    "oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr", "smartTagTypes",
    "webPublishing", "fileRecoveryPr", "webPublishObjects", "extLst",
)  # fmt: skip


class Workbook:
    """The sheet to fill (by name, or the active one), with what it needs to be read and
    edited: shared strings, cell formats, its tables."""

    def __init__(self, path: Path, sheet: str | None) -> None:
        self.package = package = Package(path)
        try:
            names = [s.name for s in package.sheets]
            if sheet is None:
                if not package.sheets:
                    raise TableError(f"{path}: the workbook has no sheets.")
                entry = package.sheets[min(package.active, len(package.sheets) - 1)]
            elif sheet in names:
                entry = package.sheets[names.index(sheet)]
            else:
                raise TableError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(names)}.")
            if entry.kind != "worksheet" or not entry.part:
                raise TableError(f"{path}: sheet {entry.name!r} is not a worksheet.")
            self.title = entry.name
            self.sheet_part = entry.part
            styles = package.related(package.workbook, "styles")
            self.styles_part = styles[0] if styles else ""
            self.styles = Styles(
                package.read(self.styles_part) if styles else None, self.styles_part
            )
            strings = package.related(package.workbook, "sharedStrings")
            text = shared_strings(package.read(strings[0]) if strings else None, "sharedStrings")
            self.grid = Grid(
                package.read(entry.part), entry.part, text, self.styles, package.date1904
            )
            self.tables: list[TablePart] = sheet_tables(package, entry.part)
            # read now, so that a part that cannot be edited fails before any call
            self._workbook_xml = plain_markup(package.workbook_xml, package.workbook)
            self._workbook_prefix = root_prefix(self._workbook_xml, package.workbook)
            package.verify()  # and every part the copy holds: a damaged one fails now
        except BaseException:
            package.close()
            raise
        self.head: str | None = None

    def close(self) -> None:
        self.package.close()

    def write(self, stream: IO[bytes]) -> None:
        replaced: dict[str, bytes | Iterable[str]] = {self.sheet_part: self.grid.render(self.head)}
        if self.styles.changed:
            replaced[self.styles_part] = self.styles.render()
        for table in self.tables:
            if table.changed:
                replaced[table.part] = table.render()
        if self.grid.edited:
            replaced[self.package.workbook] = self._recalculating()
        self.package.write(stream, replaced)
        self.close()  # the original may be replaced next, which Windows refuses while open

    def _recalculating(self) -> bytes:
        """The workbook part asking Excel to recalculate every formula when it opens."""
        xml, prefix = self._workbook_xml, self._workbook_prefix
        found = start_tag(prefix, "calcPr").search(xml)
        if found is not None:
            xml = (
                xml[: found.start()]
                + with_attributes(found[0], {"fullCalcOnLoad": "1"})
                + (xml[found.end() :])
            )
            return xml.encode("utf-8")
        tag = qualified(prefix, "calcPr")
        at = _insertion_point(xml, prefix)
        return (xml[:at] + f'<{tag} fullCalcOnLoad="1"/>' + xml[at:]).encode("utf-8")


def _insertion_point(xml: str, prefix: str) -> int:
    """Before the first element that follows ``calcPr``, looking only after ``sheets``
    (an ``extLst`` inside ``bookViews``, before it, is not the workbook's)."""
    sheets = element(prefix, "sheets").search(xml)
    after = sheets.end() if sheets is not None else 0
    for name in _AFTER_CALC:
        found = start_tag(prefix, name).search(xml, after)
        if found is not None:
            return found.start()
    return xml.rindex(f"</{qualified(prefix, 'workbook')}")
