"""The workbook's cell formats (``xl/styles.xml``): which ones show dates, and new ones a
fill needs — a date format on a cell that had none, or text kept as text.

A new format is the cell's own format record copied, with the number format or the
``quotePrefix`` flag changed, and appended; the records already there keep their
numbers, so no other cell changes.
"""

from __future__ import annotations

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

from ._xml import (
    attributes,
    element,
    plain_markup,
    qualified,
    quoted,
    root_prefix,
    start_of,
    start_tag,
    with_attributes,
    with_body,
)

#: Custom number formats are numbered from here (lower numbers are Excel's built-ins).
_FIRST_CUSTOM = 164


class Styles:
    """The ``cellXfs`` records of a styles part, read and extended."""

    def __init__(self, data: bytes | None, part: str) -> None:
        self.part = part
        self.xml = plain_markup(data, part) if data is not None else ""
        self.prefix = root_prefix(self.xml, part) if data is not None else ""
        self.changed = False
        self._formats = dict(BUILTIN_FORMATS)
        self._records: list[str] = []
        self._new_formats: list[str] = []
        self._derived: dict[tuple[int, str | None, bool], int] = {}
        self.dates: set[int] = set()
        self.durations: set[int] = set()
        if data is None:
            return
        formats = element(self.prefix, "numFmts").search(self.xml)
        for match in element(self.prefix, "numFmt").finditer(formats[0] if formats else ""):
            found = attributes(match[1])
            self._formats[int(found.get("numFmtId", "0"))] = found.get("formatCode", "")
        cell_formats = element(self.prefix, "cellXfs").search(self.xml)
        if cell_formats is not None and cell_formats[3]:
            self._records = [m[0] for m in element(self.prefix, "xf").finditer(cell_formats[3])]
        self.dates = {i for i in range(len(self._records)) if is_date_format(self.code(i))}
        self.durations = {i for i in self.dates if is_timedelta_format(self.code(i))}

    @property
    def available(self) -> bool:
        """Whether new formats can be added (a workbook without a styles part cannot)."""
        return bool(self._records)

    def code(self, style: int) -> str:
        """The number format code of format record ``style`` (``General`` when unknown)."""
        if not 0 <= style < len(self._records):
            return "General"
        number = attributes(start_of(self._records[style])).get("numFmtId", "0")
        return self._formats.get(int(number), "General")

    def derived(self, style: int, *, number_format: str | None = None, quote: bool = False) -> int:
        """A format record like ``style`` but with this number format or ``quotePrefix``."""
        key = (style, number_format, quote)
        if key not in self._derived:
            record = self._records[style if 0 <= style < len(self._records) else 0]
            changes: dict[str, str] = {}
            if number_format is not None:
                changes["numFmtId"] = str(self._format_id(number_format))
                changes["applyNumberFormat"] = "1"
            if quote:
                changes["quotePrefix"] = "1"
            self._records.append(with_attributes(record, changes))
            index = self._derived[key] = len(self._records) - 1
            if is_date_format(self.code(index)):
                self.dates.add(index)
                if is_timedelta_format(self.code(index)):
                    self.durations.add(index)
            self.changed = True
        return self._derived[key]

    def _format_id(self, code: str) -> int:
        for number, known in self._formats.items():
            if known == code:
                return number
        number = max(_FIRST_CUSTOM - 1, *self._formats) + 1
        self._formats[number] = code
        self._new_formats.append(f"<{self._tag('numFmt')} numFmtId=\"{number}\" "
                                 f"formatCode={quoted(code)}/>")  # fmt: skip
        return number

    def _tag(self, name: str) -> str:
        return qualified(self.prefix, name)

    def render(self) -> bytes:
        """The styles part with the new records and number formats."""
        xml = self.xml
        if self._new_formats:
            xml = _with_number_formats(xml, self.prefix, "".join(self._new_formats))
        cell_formats = element(self.prefix, "cellXfs").search(xml)
        assert cell_formats is not None and cell_formats[3] is not None  # we read records
        records = "".join(self._records)
        xml = with_body(xml, cell_formats, self._tag("cellXfs"), records, count=len(self._records))
        return xml.encode("utf-8")


def _with_number_formats(xml: str, prefix: str, records: str) -> str:
    """The styles markup with these ``<numFmt>`` records added to its ``numFmts``, which is
    created first in the part (where the schema puts it) when there is none."""
    tag = qualified(prefix, "numFmts")
    found = element(prefix, "numFmts").search(xml)
    if found is not None:
        body = (found[3] or "") + records
        count = len(element(prefix, "numFmt").findall(body))
        return with_body(xml, found, tag, body, count=count)
    count = len(element(prefix, "numFmt").findall(records))
    root = start_tag(prefix, "styleSheet").search(xml)
    assert root is not None  # the root was found when the part was read
    return xml[: root.end()] + f'<{tag} count="{count}">{records}</{tag}>' + xml[root.end() :]
