"""Grounding: does each extracted string occur in the input, and where?

Small models invent plausible values (a street that is not in the letter). A string
field's value is *grounded* when it occurs in the input as a whole: not inside a longer
word or number ("PO-55" is not in "PO-555", nor "Oman" in "Romania"), ignoring case,
runs of whitespace and how the text was typeset: ligatures and other compatibility
characters (a PDF's "ﬃ"), curly quotes and dashes, soft hyphens and zero-width
characters, and a word hyphenated across a line end. Its evidence is the
``(start, end)`` character span in the input as given. Literal and Enum fields are
categories, not quotes, so they are not checked. Only strings are checked: numbers and
dates are often written differently from how the input says them.
"""

from __future__ import annotations

import bisect
import enum
import functools
import itertools
import re
import types
import unicodedata
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def _is_category(annotation: Any) -> bool:
    """Literal/Enum (possibly inside Optional/Annotated): values that need not be quoted."""
    origin = get_origin(annotation)
    if origin is Literal:
        return True
    if origin is Annotated:
        return _is_category(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_category(a) for a in args)
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


#: typographic characters written as the plain ones a model (or a user) types
_FOLDS = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),  # soft hyphen, zero-width
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: a word broken across a line end: the hyphen, the line break and the indentation
_LINE_BREAK_HYPHEN = r"(?:-[^\S\n]*\n\s*)?"


@functools.lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    folded = _FOLDS.get(char)
    return unicodedata.normalize("NFKD", char) if folded is None else folded


class _Folded:
    """A text with its non-ASCII characters folded (``_fold_char``), and the way back from
    a position in it to the original text's (only the folded characters are visited)."""

    def __init__(self, text: str) -> None:
        pieces: list[str] = []
        #: (folded position, original position) where each folded character starts and ends
        self._marks: list[tuple[int, int]] = []
        done = length = 0
        for match in _NON_ASCII.finditer(text):
            at = match.start()
            folded = _fold_char(text[at])
            if folded == text[at]:
                continue
            pieces.append(text[done:at])
            length += at - done
            self._marks.append((length, at))
            pieces.append(folded)
            length += len(folded)
            done = at + 1
            self._marks.append((length, done))
        pieces.append(text[done:])
        self.text = "".join(pieces) if self._marks else text
        self._starts = [folded for folded, _ in self._marks]

    def original(self, position: int, *, end: bool) -> int:
        """``position`` in the original text; one inside a folded character maps to that
        character's start (``end=False``) or end."""
        k = bisect.bisect_right(self._starts, position) - 1
        if k < 0:
            return position
        folded, original = self._marks[k]
        if k % 2 == 0 and position > folded:  # inside one character's folded form
            return original + 1 if end else original
        return original + (position - folded)


#: scripts written without spaces between words (CJK, kana, Hangul with its attached
#: particles, Thai, Lao, Myanmar, Khmer): no word boundary can be asked of them
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u11ff\u1780-\u17ff\u3040-\u30ff\u3130-\u318f"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\U00020000-\U0003ffff"
)  # Hangul as syllables and as the jamo that folding decomposes them into
#: a word character of a spaced script
_SPACED_WORD = re.compile(rf"[^\W{_UNSPACED}]")


def _pattern(value: str) -> re.Pattern[str] | None:
    """``value`` (folded) as a whole: whitespace-insensitive, a hyphen and line break
    allowed inside its words, and, where it starts or ends with a word character of a
    spaced script, no such character right before or after it."""
    words = _Folded(value).text.split()
    if not words:
        return None
    body = r"\s+".join(_LINE_BREAK_HYPHEN.join(_word_parts(word)) for word in words)
    before = rf"(?<![^\W{_UNSPACED}])" if _SPACED_WORD.match(words[0][0]) else ""
    after = rf"(?![^\W{_UNSPACED}])" if _SPACED_WORD.match(words[-1][-1]) else ""
    return re.compile(before + body + after, re.IGNORECASE)


def _word_parts(word: str) -> list[str]:
    """``word`` escaped and cut between its letters, where a line-end hyphen may fall."""
    parts = [re.escape(word[0])]
    for previous, char in itertools.pairwise(word):
        if previous.isalpha() and char.isalpha():
            parts.append(re.escape(char))
        else:
            parts[-1] += re.escape(char)
    return parts


def locate(value: str, text: str | _Folded) -> tuple[int, int] | None:
    """The span of ``value`` as a whole in ``text`` (see the module), or None."""
    pattern = _pattern(value)
    if pattern is None:
        return None
    folded = text if isinstance(text, _Folded) else _Folded(text)
    found = pattern.search(folded.text)
    if found is None:
        return None
    return folded.original(found.start(), end=False), folded.original(found.end(), end=True)


def _item_annotation(annotation: Any) -> Any:
    """The element type of ``list[X]``/``set[X]``/``tuple[X, ...]``/``dict[K, X]`` (through
    Optional/Annotated), so a ``list[Literal[...]]`` is known to hold categories."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _item_annotation(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _item_annotation(args[0]) if len(args) == 1 else None
    args = [a for a in get_args(annotation) if a is not Ellipsis]
    return args[-1] if args else None


def _walk(value: Any, path: str, annotation: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            child = getattr(value, name)
            if child is None or _is_category(info.annotation):
                continue
            _walk(child, f"{path}.{name}" if path else name, info.annotation, out)
    elif isinstance(value, str) and not isinstance(value, enum.Enum):
        if not _is_category(annotation):
            out.append((path, value))
    elif isinstance(value, (list, tuple, set, frozenset)):
        item = _item_annotation(annotation)
        for i, element in enumerate(value):
            _walk(element, f"{path}[{i}]", item, out)
    elif isinstance(value, dict):
        item = _item_annotation(annotation)
        for key, element in value.items():
            _walk(element, f"{path}[{key}]", item, out)


def check_grounding(value: Any, text: str) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """``(evidence, ungrounded)``: spans of the strings found, and the strings not found."""
    strings: list[tuple[str, str]] = []
    _walk(value, "", type(value) if isinstance(value, BaseModel) else None, strings)
    evidence: dict[str, tuple[int, int]] = {}
    ungrounded: dict[str, str] = {}
    folded = _Folded(text) if strings else None
    for path, string in strings:
        if not string.strip():
            continue
        assert folded is not None
        span = locate(string, folded)
        if span is None:
            ungrounded[path or "value"] = string
        else:
            evidence[path or "value"] = span
    return evidence, ungrounded


def grounding_reask(ungrounded: dict[str, str]) -> str:
    listed = "; ".join(f"{path}: {value!r}" for path, value in list(ungrounded.items())[:10])
    return (
        f"These values do not occur in the input: {listed}. Copy each value exactly as it "
        "is written in the input, or use null where the input does not give one. Answer "
        "again with the complete JSON object."
    )
