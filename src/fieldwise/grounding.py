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
#: what folding edits: a run of non-ASCII characters, or a word hyphenated across a line
#: end (the hyphen, the line break and the next line's indentation, between two letters)
_EDITS = re.compile(r"[^\x00-\x7f]+|(?<=[^\W\d_])-[^\S\n]*\n\s*(?=[^\W\d_])")
#: scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, CJK, kana,
#: and Hangul, whose particles attach to the noun, as syllables and as the jamo folding
#: decomposes them into): no word boundary can be asked of them
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff"
    "\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\U00020000-\U0003ffff]"
)


@functools.lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    folded = _FOLDS.get(char)
    return unicodedata.normalize("NFKD", char) if folded is None else folded


def _unchanged(run: str) -> bool:
    """A run of non-ASCII characters that folding leaves as it is (most CJK text)."""
    return unicodedata.is_normalized("NFKD", run) and not any(c in _FOLDS for c in run)


class _Folded:
    """A text as values are matched against it (see the module), and the way back from a
    position in it to the original text's. Only what folding changes is visited."""

    def __init__(self, text: str) -> None:
        pieces: list[str] = []
        #: (folded position, original position) where each changed piece starts and ends
        self._marks: list[tuple[int, int]] = []
        done = length = 0
        for match in _EDITS.finditer(text):
            found = match.group()
            if found[0] != "-":  # a run of non-ASCII characters
                if _unchanged(found):
                    continue
                edits = [(match.start() + i, c, _fold_char(c)) for i, c in enumerate(found)]
            else:  # a line-end hyphen inside a word
                edits = [(match.start(), found, "")]
            for at, original, folded in edits:
                if folded == original:
                    continue
                pieces.append(text[done:at])
                length += at - done
                self._marks.append((length, at))
                pieces.append(folded)
                length += len(folded)
                done = at + len(original)
                self._marks.append((length, done))
        pieces.append(text[done:])
        self.text = "".join(pieces) if self._marks else text
        self._starts = [folded for folded, _ in self._marks]

    def original(self, position: int, *, end: bool) -> int:
        """``position`` in the original text; one inside a changed piece maps to that
        piece's start (``end=False``) or end."""
        k = bisect.bisect_right(self._starts, position) - 1
        if k < 0:
            return position
        folded, original = self._marks[k]
        if k % 2 == 0 and position > folded:  # inside one piece's folded form
            return self._marks[k + 1][1] if end else original
        return original + (position - folded)


@functools.lru_cache(maxsize=2)
def _folded(text: str) -> _Folded:
    """One fold per text: every attempt, and every cache hit, checks the same input."""
    return _Folded(text)


def _in_word(char: str) -> bool:
    """A letter, digit, combining mark or ``_`` of a script written with spaces: what may
    not touch a value that starts or ends with one (a mark is part of its letter)."""
    return (char == "_" or unicodedata.category(char)[0] in "LNM") and not _UNSPACED.match(char)


#: an escaped hyphen between two letters of a value
_OPTIONAL_HYPHEN = re.compile(r"(?<=[^\W\d_])\\-(?=[^\W\d_])")


def _pattern(words: list[str]) -> re.Pattern[str]:
    """A value's folded ``words``: whitespace-insensitive, and a hyphen between two letters
    may be missing (the input's was a line-end hyphen, which folding removed)."""
    body = r"\s+".join(_OPTIONAL_HYPHEN.sub("-?", re.escape(word)) for word in words)
    return re.compile(body, re.IGNORECASE)


def locate(value: str, text: str | _Folded) -> tuple[int, int] | None:
    """The span of ``value`` as a whole in ``text`` (see the module), or None."""
    words = _Folded(value).text.split()
    if not words:
        return None
    pattern = _pattern(words)
    folded = text if isinstance(text, _Folded) else _folded(text)
    before, after = _in_word(words[0][0]), _in_word(words[-1][-1])
    haystack = folded.text
    position = 0
    while (found := pattern.search(haystack, position)) is not None:
        start, end = found.span()
        if (before and start > 0 and _in_word(haystack[start - 1])) or (
            after and end < len(haystack) and _in_word(haystack[end])
        ):
            position = start + 1  # inside a longer word: look further on
            continue
        return folded.original(start, end=False), folded.original(end, end=True)
    return None


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
    folded = _folded(text) if strings else None
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
