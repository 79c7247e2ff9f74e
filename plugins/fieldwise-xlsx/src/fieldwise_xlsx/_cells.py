"""One cell's value, read from its stored markup and written as new markup.

Reading gives what openpyxl would: shared and inline strings as text (rich text as its
plain text), numbers as ``int``/``float``, date-formatted numbers as ``datetime`` (in the
workbook's 1900 or 1904 epoch), booleans, error codes, and for a formula its cached
result. Writing keeps text as text (an inline string, ``=…`` given ``quotePrefix``),
numbers and booleans as such, and dates as serials in a date format.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from openpyxl.cell.cell import TIME_FORMATS
from openpyxl.utils.datetime import (
    CALENDAR_MAC_1904,
    CALENDAR_WINDOWS_1900,
    from_excel,
    from_ISO8601,
    to_excel,
)

from fieldwise.tables import TableError

from ._styles import Styles
from ._xml import element, plain_markup, qualified, root_prefix, text, text_of, unescape

#: The most characters Excel keeps in a cell.
TEXT_LIMIT = 32_767
#: the underscore that starts what Excel would read as a character escape (``_x000D_``)
_EXCEL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")
_TYPE = re.compile(r"""\st\s*=\s*["'](\w+)["']""")
STYLE = re.compile(r"""\ss\s*=\s*["'](\d+)["']""")


def _temporal_kind(value: Any) -> type:
    """Which of openpyxl's default formats a date-like value takes (subclasses too)."""
    for kind in (dt.datetime, dt.date, dt.time, dt.timedelta):
        if isinstance(value, kind):
            return kind
    raise TypeError(f"not a date or time: {value!r}")


#: Every integer up to this magnitude is a double exactly; beyond it some are not.
_EXACT_INTEGERS = 2**53


def _exact_double(value: Decimal) -> bool:
    """Whether a cell's number (a double) holds a decimal with every digit: it is finite
    and its double reads back as the same number. (An integer does when its magnitude is
    at most 2**53.)"""
    if not value.is_finite():
        return False
    try:
        return Decimal(repr(float(value))) == value
    except (ValueError, OverflowError):
        return False


class Cell(NamedTuple):
    """A stored cell: its value, whether it holds a formula, and its format record."""

    value: Any
    formula: bool
    style: int | None


class CellCodec:
    """Cell values of one sheet part, in its namespace prefix, with the workbook's shared
    strings, cell formats and date epoch."""

    def __init__(
        self, part: str, prefix: str, strings: Sequence[str], styles: Styles, date1904: bool
    ) -> None:
        self.part = part
        self.prefix = prefix
        self.strings = strings
        self.styles = styles
        self.epoch = CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900
        tag = self._tag
        self._markup_tags = (tag("c"), f"<{tag('v')}>", f"</{tag('v')}>")
        self._text_open = f'<{tag("is")}><{tag("t")} xml:space="preserve">'
        self._text_close = f"</{tag('t')}></{tag('is')}>"
        self._formula = re.compile(rf"<{re.escape(tag('f'))}[\s/>]")
        self._formula_open = f"<{tag('f')}"
        self._v = element(prefix, "v")
        self._is = element(prefix, "is")
        #: how many texts were cut to Excel's limit
        self.cut = 0

    def _tag(self, name: str) -> str:
        return qualified(self.prefix, name)

    def read(self, attrs: str, inner: str) -> Cell:
        """A cell's value, as openpyxl would read it with its cached formula results."""
        # Substring tests first (a cell without a "t" has no type attribute, and so on):
        # every stored cell of every row comes through here when a fill plans its rows.
        kind_match = _TYPE.search(attrs) if "t" in attrs else None
        kind = kind_match[1] if kind_match else "n"
        style_match = STYLE.search(attrs) if "s" in attrs else None
        style = int(style_match[1]) if style_match else None
        formula = self._formula_open in inner and self._formula.search(inner) is not None
        if kind == "inlineStr":
            found = self._is.search(inner)
            return Cell(text_of(found[3] or "", self.prefix) if found else None, formula, style)
        found = self._v.search(inner) if inner else None
        if not (found and found[3]):
            return Cell(None, formula, style)
        raw = unescape(found[3])
        try:
            value = self._typed(raw, kind, style)
        except (ValueError, IndexError, OverflowError):
            raise TableError(
                f"{self.part}: a cell of type {kind!r} holds {raw[:40]!r}, which is not "
                "one; the file is damaged (opening and saving it in Excel may repair it)."
            ) from None
        return Cell(value, formula, style)

    def _typed(self, raw: str, kind: str, style: int | None) -> Any:
        if kind == "s":
            index = int(raw)
            if index < 0:  # Python would count from the end: there is no such string
                raise IndexError(index)
            return self.strings[index]
        if kind == "b":
            return bool(int(raw))
        if kind == "d":
            return from_ISO8601(raw)  # type: ignore[no-untyped-call]
        if kind in ("str", "e"):
            return raw
        number = float(raw) if ("." in raw or "E" in raw or "e" in raw) else int(raw)
        record = 0 if style is None else style  # no ``s`` is format record 0
        if record in self.styles.dates:
            try:
                return from_excel(number, self.epoch, timedelta=record in self.styles.durations)
            except (OverflowError, ValueError):
                return "#VALUE!"
        return number

    def _within_limit(self, words: str) -> str:
        """Text cut to what an Excel cell holds, counted as Excel counts (UTF-16 units),
        never between the halves of a surrogate pair."""
        if len(words) <= TEXT_LIMIT // 2 or len(words.encode("utf-16-le")) <= 2 * TEXT_LIMIT:
            return words
        self.cut += 1
        return words.encode("utf-16-le")[: 2 * TEXT_LIMIT].decode("utf-16-le", "ignore")

    def markup(self, ref: str, value: Any, style: int | None) -> str:
        """One cell's markup: text as an inline string, numbers and booleans as such,
        dates as numbers in a date format."""
        c, v, close_v = self._markup_tags
        kind, inner = "", ""
        if value is None:
            pass
        elif type(value) is str or not isinstance(
            value, (bool, int, float, Decimal, dt.date, dt.time, dt.timedelta)
        ):
            words = self._within_limit(str(value))
            # ``_x000D_`` in a cell's text is Excel's escape for a character: keep such
            # text as written by escaping its underscore (``_x005F_``)
            words = _EXCEL_ESCAPE.sub("_x005F_", words)
            if words.startswith("=") and self.styles.available:
                style = self.styles.derived(style or 0, quote=True)  # Excel keeps it text
            kind, inner = "inlineStr", self._text_open + text(words) + self._text_close
        elif isinstance(value, bool):
            kind, inner = "b", v + ("1" if value else "0") + close_v
        elif isinstance(value, int):
            if not -_EXACT_INTEGERS <= value <= _EXACT_INTEGERS:  # a double loses digits
                return self.markup(ref, str(value), style)
            inner = v + str(value) + close_v
        elif isinstance(value, Decimal):
            if not _exact_double(value):  # digits a cell's double would lose: as text
                return self.markup(ref, str(value), style)
            inner = v + str(value) + close_v
        elif isinstance(value, float):
            if not math.isfinite(value):
                return self.markup(ref, str(value), style)
            inner = v + repr(value) + close_v
        elif not self.styles.available:  # no styles part to give a date format
            return self.markup(ref, str(value), style)
        else:
            serial = to_excel(value, self.epoch)  # type: ignore[no-untyped-call]
            if serial < 0 or (serial < 1 and isinstance(value, dt.date)):
                # Before the workbook's epoch, or a negative duration: Excel shows such a
                # serial as ####, so the value goes in as text instead. A date below serial
                # 1 is text too: in 1900 serial 0 is no date, and though 1904's day zero
                # is its epoch's first day, openpyxl (and this reader) read any serial
                # below 1 back as a time of day.
                return self.markup(ref, str(value), style)
            if (style or 0) not in self.styles.dates:
                code = TIME_FORMATS[_temporal_kind(value)]
                style = self.styles.derived(style or 0, number_format=code)
            inner = v + repr(serial) + close_v
        attrs = f' r="{ref}"'
        if style:
            attrs += f' s="{style}"'
        if kind:
            attrs += f' t="{kind}"'
        return f"<{c}{attrs}>{inner}</{c}>" if inner else f"<{c}{attrs}/>"


def shared_strings(data: bytes | None, part: str) -> list[str]:
    """The shared string table as text, as openpyxl reads it."""
    if data is None:
        return []
    xml = plain_markup(data, part)
    prefix = root_prefix(xml, part)
    return [
        text_of(m[3] or "", prefix).replace("x005F_", "")
        for m in element(prefix, "si").finditer(xml)
    ]
