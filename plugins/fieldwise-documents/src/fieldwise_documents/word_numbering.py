"""DOCX automatic numbering: the numbers Word draws before list items, clauses and
headings ("1.", "b)", "2.1", "IV."), counted from numbering.xml as Word counts them.

Apart from ``word`` because it is a small interpreter of its own (list definitions,
instances, overrides, restarts, number formats) that the text reader only asks for one
label per paragraph.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from docx.oxml.styles import CT_Style, CT_Styles
from docx.oxml.text.paragraph import CT_P
from lxml.etree import _Element

_W_VAL = qn("w:val")
_BASED_ON = qn("w:basedOn")
_FALSE = frozenset({"0", "false", "off"})
_ROMAN = (
    (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
    (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
)  # fmt: skip


def on(value: str | None) -> bool:
    """An on/off attribute (``w:val`` of ``w:isLgl``, ``w:vanish``...): absent is on."""
    return value is None or value.lower() not in _FALSE


def roman(number: int) -> str:
    letters: list[str] = []
    for value, numeral in _ROMAN:
        count, number = divmod(number, value)
        letters.append(numeral * count)
    return "".join(letters)


_NUM = qn("w:num")
_NUM_ID = qn("w:numId")
_ABSTRACT_NUM = qn("w:abstractNum")
_ABSTRACT_NUM_ID = qn("w:abstractNumId")
_NUM_STYLE_LINK = qn("w:numStyleLink")
_NUM_PR = f"{qn('w:pPr')}/{qn('w:numPr')}"
_PARAGRAPH_STYLE = f"{qn('w:pPr')}/{qn('w:pStyle')}"
_ILVL = qn("w:ilvl")
_LVL = qn("w:lvl")
_LVL_OVERRIDE = qn("w:lvlOverride")
_START_OVERRIDE = qn("w:startOverride")
_START = qn("w:start")
_NUM_FMT = qn("w:numFmt")
_LVL_TEXT = qn("w:lvlText")
_IS_LGL = qn("w:isLgl")
_P_STYLE = qn("w:pStyle")
_LEVEL_REF = re.compile(r"%([1-9])")
_LEVELS = 9  # w:ilvl 0-8


class _Level(NamedTuple):
    """One level of a list definition (``w:lvl``): what its numbers look like."""

    start: int
    format: str  # w:numFmt: decimal, lowerLetter, upperRoman, bullet...
    text: str  # w:lvlText: "%1.", "%1.%2", "(%2)"
    legal: bool  # w:isLgl: every level's number in decimal ("1.1" under "I.")


class _Place(NamedTuple):
    """Where a numbered paragraph is: its list instance and definition, and level."""

    num_id: str
    num: _Element
    abstract_id: str | None
    abstract: _Element
    level: int


class _Unsupported(Exception):
    """A number format Word draws that is not rendered here (words, CJK counting)."""


def _number(value: int, number_format: str) -> str:
    """``value`` as Word writes it in ``number_format``: 3 -> "c", "III", "03"..."""
    if number_format == "decimal":
        return str(value)
    if number_format == "decimalZero":
        return f"{value:02d}"
    if number_format == "none":
        return ""
    letters = number_format in ("lowerLetter", "upperLetter")
    romans = number_format in ("lowerRoman", "upperRoman")
    if not (letters or romans):
        raise _Unsupported(number_format)
    if letters and 0 < value <= 780:  # Word's letters double past z (aa, bb) up to 30 z's
        text = chr(ord("a") + (value - 1) % 26) * ((value - 1) // 26 + 1)
    elif romans and 0 < value < 4000:  # as for endnotes: Roman numerals grow without bound
        text = roman(value)
    else:
        return str(value)  # past what the format can write
    return text.upper() if number_format.startswith("upper") else text


def _int(value: str | None) -> int | None:
    """An integer attribute, None where absent or not a number."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _val(element: _Element | None, default: int) -> int:
    """An element's integer ``w:val``, ``default`` where there is none."""
    value = _int(element.get(_W_VAL)) if element is not None else None
    return default if value is None else value


class Numbering:
    """Word's automatic paragraph numbers ("1.", "b)", "2.1", "IV."), counted from
    numbering.xml the way Word counts them.

    A paragraph is numbered by its ``w:numPr`` or its style's (list number styles, and
    numbered headings, whose level is the one naming that style); ``w:numId`` 0 turns
    numbering off. The counters belong to the abstract list definition, which is how
    Word continues a list across ``w:num`` instances; a ``w:num`` with a
    ``w:startOverride`` restarts its level where it first numbers a paragraph, and a
    paragraph at one level restarts the levels below it. A level whose format is not a
    number, letter or Roman numeral (ordinal words, CJK counting) gets no number; a
    bullet gets the empty label, drawn as ``- ``.
    """

    def __init__(self, styles: CT_Styles | None, root: _Element | None) -> None:
        """``styles``: the styles part's root; ``root``: numbering.xml's (None: none)."""
        self.styles = styles
        self.nums: dict[str | None, _Element] = {}
        self.abstracts: dict[str | None, _Element] = {}
        if root is not None:
            self.nums = {num.get(_NUM_ID): num for num in root.iterchildren(_NUM)}
            self.abstracts = {
                abstract.get(_ABSTRACT_NUM_ID): abstract
                for abstract in root.iterchildren(_ABSTRACT_NUM)
            }
        self.counters: dict[str | None, list[int | None]] = {}  # by abstract definition
        self.started: set[str] = set()  # w:num ids that have numbered a paragraph
        self.by_style: dict[str | None, tuple[str | None, int | None]] = {}
        self.levels: dict[str, list[_Level | None]] = {}  # by w:num id
        # (numId, ilvl, style id) of a paragraph -> its list and level, or None
        self.resolved: dict[tuple[str | None, int | None, str | None], _Place | None] = {}

    def _style(self, style_id: str | None) -> CT_Style | None:
        if self.styles is None:
            return None
        if style_id is None:
            # no pStyle: the default paragraph style (python-docx leaves this untyped)
            default: CT_Style | None = self.styles.default_for(  # type: ignore[no-untyped-call]
                WD_STYLE_TYPE.PARAGRAPH
            )
            return default
        return self.styles.get_by_id(style_id)

    def _style_numbering(self, style_id: str | None) -> tuple[str | None, int | None]:
        """``(numId, ilvl)`` a paragraph style (or one it is based on) numbers with."""
        if style_id not in self.by_style:
            found: tuple[str | None, int | None] = (None, None)
            style, seen = self._style(style_id), 0
            while style is not None and seen < 16:  # basedOn loops end too
                num_id, level = _num_pr(style)
                if num_id is not None:
                    found = (num_id, level)
                    break
                based_on = style.find(_BASED_ON)
                style = self._style(based_on.get(_W_VAL)) if based_on is not None else None
                seen += 1
            self.by_style[style_id] = found
        return self.by_style[style_id]

    def _definition(self, num_id: str) -> tuple[_Element, str | None, _Element] | None:
        """``(w:num, abstract id, w:abstractNum)``: the paragraph's list instance (its
        overrides apply) and the definition it uses, through a numbering style's link."""
        first = self.nums.get(num_id)
        for _ in range(3):
            num = self.nums.get(num_id)
            reference = num.find(_ABSTRACT_NUM_ID) if num is not None else None
            abstract_id = reference.get(_W_VAL) if reference is not None else None
            abstract = self.abstracts.get(abstract_id)
            if first is None or abstract is None:
                return None
            link = abstract.find(_NUM_STYLE_LINK)
            linked = self._style_numbering(link.get(_W_VAL))[0] if link is not None else None
            if linked is None:
                return first, abstract_id, abstract
            num_id = linked
        return None

    def label(self, p: CT_P) -> str | None:
        """The paragraph's number ("2.1", "c)"), "" for a bullet, None when Word
        draws none this reader can write. Counts the paragraph, so call it for every
        paragraph in order, empty ones too (Word numbers those)."""
        try:
            return self._label(p)
        except Exception:  # _Unsupported, or markup past sense: numbers never cost text
            return None

    def _place(self, num_id: str | None, level: int | None, style_id: str | None) -> _Place | None:
        """The list and level of a paragraph with this ``w:numPr`` and style."""
        from_style = num_id is None
        if from_style:
            num_id, style_level = self._style_numbering(style_id)
            level = level if level is not None else style_level
        if num_id is None or num_id == "0":
            return None
        definition = self._definition(num_id)
        if definition is None:
            return None
        num, abstract_id, abstract = definition
        if level is None and from_style:  # a numbered heading: the level naming its style
            level = _styled_level(abstract, style_id)
        return _Place(num_id, num, abstract_id, abstract, min(max(level or 0, 0), _LEVELS - 1))

    def _label(self, p: CT_P) -> str | None:
        style = p.find(_PARAGRAPH_STYLE)
        key = (*_num_pr(p), style.get(_W_VAL) if style is not None else None)
        if key not in self.resolved:  # resolved once per kind of paragraph: cheap per paragraph
            self.resolved[key] = self._place(*key)
        place = self.resolved[key]
        if place is None:
            return None
        num_id, num, abstract_id, abstract, level = place
        counters = self.counters.setdefault(abstract_id, [None] * _LEVELS)
        if num_id not in self.started:
            self.started.add(num_id)
            for override in num.iterchildren(_LVL_OVERRIDE):
                if override.find(_START_OVERRIDE) is not None:
                    counters[_val(override.find(_ILVL), 0) % _LEVELS] = None
        if num_id not in self.levels:
            self.levels[num_id] = [_level(num, abstract, index) for index in range(_LEVELS)]
        levels = self.levels[num_id]
        this = levels[level]
        if this is None:
            return None
        current = counters[level]
        counters[level] = this.start if current is None else current + 1
        counters[level + 1 :] = [None] * (_LEVELS - level - 1)
        if this.format == "bullet":
            return ""

        def number(match: re.Match[str]) -> str:
            index = int(match.group(1)) - 1
            shown = levels[index]
            value = counters[index]
            if value is None:
                value = shown.start if shown is not None else 1
            number_format = shown.format if shown is not None else "decimal"
            return _number(value, "decimal" if this.legal else number_format)

        return _LEVEL_REF.sub(number, this.text).strip() or None


def _num_pr(element: _Element) -> tuple[str | None, int | None]:
    """``(numId, ilvl)`` of a paragraph's or style's ``w:numPr``; None where absent."""
    numbering = element.find(_NUM_PR)
    if numbering is None:
        return None, None
    num_id = numbering.find(_NUM_ID)
    level = numbering.find(_ILVL)
    return (
        num_id.get(_W_VAL) if num_id is not None else None,
        _val(level, 0) if level is not None else None,
    )


def _styled_level(abstract: _Element, style_id: str | None) -> int | None:
    """The level of a list definition that names ``style_id`` (``w:pStyle``)."""
    for lvl in abstract.iterchildren(_LVL):
        style = lvl.find(_P_STYLE)
        if style is not None and style.get(_W_VAL) == style_id:
            return _int(lvl.get(_ILVL))
    return None


def _at_level(elements: Iterator[_Element], index: int) -> _Element | None:
    """The first ``w:lvl``/``w:lvlOverride`` whose ``w:ilvl`` is ``index``."""
    return next((element for element in elements if _int(element.get(_ILVL)) == index), None)


def _level(num: _Element, abstract: _Element, index: int) -> _Level | None:
    """Level ``index`` of a list: the ``w:num``'s own ``w:lvl`` override if it has one,
    else the abstract definition's; its start replaced by a ``w:startOverride``."""
    override = _at_level(num.iterchildren(_LVL_OVERRIDE), index)
    lvl = override.find(_LVL) if override is not None else None
    if lvl is None:
        lvl = _at_level(abstract.iterchildren(_LVL), index)
    if lvl is None:
        return None
    start = _val(lvl.find(_START), 0)
    if override is not None and override.find(_START_OVERRIDE) is not None:
        start = _val(override.find(_START_OVERRIDE), start)
    number_format = lvl.find(_NUM_FMT)
    text = lvl.find(_LVL_TEXT)
    legal = lvl.find(_IS_LGL)
    return _Level(
        start=start,
        format=(number_format.get(_W_VAL) if number_format is not None else None) or "decimal",
        text=(text.get(_W_VAL) if text is not None else None) or "",
        legal=legal is not None and on(legal.get(_W_VAL)),
    )
