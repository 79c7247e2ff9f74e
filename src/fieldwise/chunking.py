"""Splitting a long document into chunks, and merging what was extracted from each.

Pure functions: no I/O, no model calls. The extractor runs one request per chunk and
merges the validated values.

Splitting cuts where the text's own structure does, preferring, in order, page
boundaries, blank lines (paragraphs), sentence ends, line breaks, spaces, and only as a
last resort the middle of a word. Among the cut points that leave a chunk at least half
full, the strongest kind wins (the furthest one of that kind); only when none exists in
that half does a cut fall earlier. So chunks follow pages when pages fit, and are not
needlessly small. Every chunk keeps its ``start``/``end`` offsets into ``doc.text`` and
the pages it touches, so a merged value can still say where it came from.

Merging treats the per-chunk values as partial views of one answer: lists are
concatenated and de-duplicated, nested models merged field by field, and a scalar takes
the first value that is present; when chunks disagree on a scalar, the disagreement is
reported rather than silently dropped.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pydantic
import pydantic_core
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .document import Document
from .grounding import check_grounding
from .result import Result, Usage, original_usage_of

__all__ = ["Chunk", "Conflict", "MergeResult", "merge_values", "split_document"]

M = TypeVar("M", bound=BaseModel)

# Strength of a cut point: lower is stronger.
_PAGE, _PARAGRAPH, _SENTENCE, _LINE, _WORD = range(5)
_NON_SPACE = re.compile(r"\S")
# Every character str.isspace() accepts except "\n" (a line break is a stronger cut).
# Searched with str.rfind, one C-speed scan each, rather than a regex loop per space.
_SPACES = (
    " \t\v\f\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
# A sentence ends at terminal punctuation (and closing quotes/brackets) before a space;
# CJK full stops need no space after them.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)|[。！？][」』”’）)]*")


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: ``doc.text[start:end] == text``.

    ``pages`` holds the 1-based numbers of the pages the slice touches.
    """

    text: str
    start: int
    end: int
    pages: tuple[int, ...]


def _skip_space(text: str, i: int, stop: int) -> int:
    found = _NON_SPACE.search(text, i, stop)
    return found.start() if found else max(i, stop)


def _back_over_space(text: str, i: int, floor: int) -> int:
    while i > floor and text[i - 1].isspace():
        i -= 1
    return i


def _page_cuts(doc: Document) -> list[tuple[int, int]]:
    """``(chunk end, next start)`` at each page boundary, sorted, whitespace excluded."""
    text = doc.text
    cuts: set[tuple[int, int]] = set()
    spans = sorted(doc.pages)
    for (_, previous_end), (start, _) in itertools.pairwise(spans):
        start = min(max(start, 0), len(text))
        end = min(max(min(previous_end, start), 0), len(text))
        cuts.add((_back_over_space(text, end, 0), _skip_space(text, start, len(text))))
    return sorted(cuts)


class _Splitter:
    def __init__(self, doc: Document, max_chars: int) -> None:
        self.text = doc.text
        self.max_chars = max_chars
        self.page_cuts = _page_cuts(doc)
        self.page_cut_ends = [end for end, _ in self.page_cuts]
        self.page_starts = [start for start, _ in doc.pages]

    def _gap(self, at: int, pos: int) -> tuple[int, int]:
        """The whitespace run around index ``at`` as ``(chunk end, next start)``."""
        return (
            _back_over_space(self.text, at, pos),
            _skip_space(self.text, at, len(self.text)),
        )

    def _candidates(self, pos: int, limit: int) -> list[tuple[int, int, int]]:
        """Cut points ``(strength, end, next_start)`` with ``pos < end <= limit``.

        At most one per strength and half of the window (the furthest), which is all
        the choice needs; each kind is found by a C-speed search, not a Python loop
        over every space.
        """
        text = self.text
        mid = pos + self.max_chars // 2
        found: list[tuple[int, int, int]] = []

        def keep(strength: int, cuts: Sequence[tuple[int, int]]) -> None:
            upper = [cut for cut in cuts if mid <= cut[0] <= limit and cut[0] > pos]
            lower = [cut for cut in cuts if pos < cut[0] < mid]
            for group in (upper, lower):
                if group:
                    found.append((strength, *group[-1]))

        low = bisect.bisect_right(self.page_cut_ends, pos)
        high = bisect.bisect_right(self.page_cut_ends, limit)
        keep(_PAGE, self.page_cuts[low:high])

        for strength, pattern in ((_PARAGRAPH, _BLANK_LINE), (_SENTENCE, _SENTENCE_END)):
            last_upper: tuple[int, int] | None = None
            last_lower: tuple[int, int] | None = None
            # endpos bounds the scan: without it a text with no blank line would be
            # searched to its end for every chunk (quadratic).
            for match in pattern.finditer(text, pos + 1, min(len(text), limit + 256)):
                at = match.start() if strength == _PARAGRAPH else match.end()
                if at > limit:
                    break
                gap = self._gap(at, pos)
                if not pos < gap[0] <= limit:
                    continue
                if gap[0] >= mid:
                    last_upper = gap
                else:
                    last_lower = gap
            keep(strength, [g for g in (last_lower, last_upper) if g is not None])

        for strength, needles in ((_LINE, "\n"), (_WORD, _SPACES)):
            for lo, hi in ((mid, limit + 1), (pos + 1, mid)):
                at = max(text.rfind(needle, lo, hi) for needle in needles)
                if at > pos:
                    keep(strength, [self._gap(at, pos)])
        return found

    def _cut(self, pos: int, limit: int) -> tuple[int, int]:
        mid = pos + self.max_chars // 2
        candidates = self._candidates(pos, limit)
        upper = [c for c in candidates if c[1] >= mid]
        for group in (upper, candidates):
            if group:
                # strongest kind first, then the furthest cut of that kind
                _, end, next_start = min(group, key=lambda c: (c[0], -c[1]))
                return end, next_start
        return limit, limit  # one unbroken run longer than a chunk: cut it

    def _pages(self, start: int, end: int) -> tuple[int, ...]:
        first = max(1, bisect.bisect_right(self.page_starts, start))
        last = max(first, bisect.bisect_right(self.page_starts, end - 1))
        return tuple(range(first, last + 1))

    def split(self) -> list[Chunk]:
        text = self.text
        stop = _back_over_space(text, len(text), 0)
        chunks: list[Chunk] = []
        pos = _skip_space(text, 0, stop)
        while pos < stop:
            if stop - pos <= self.max_chars:
                end, next_start = stop, stop
            else:
                end, next_start = self._cut(pos, pos + self.max_chars)
            chunks.append(Chunk(text[pos:end], pos, end, self._pages(pos, end)))
            pos = _skip_space(text, next_start, stop)
        return chunks


def split_document(doc: Document, max_chars: int) -> list[Chunk]:
    """Split ``doc`` into chunks of at most ``max_chars`` characters each.

    Chunks are in order, do not overlap, and leave out only the whitespace they were
    cut at (and the document's leading/trailing whitespace); a whitespace-only document
    gives no chunks. See the module docstring for where cuts fall.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    return _Splitter(doc, max_chars).split()


@dataclass(frozen=True)
class Conflict:
    """Chunks gave different values for one scalar field.

    ``path`` is the field's path (``"customer.address.city"``, ``"totals[EUR]"`` for a
    dict key); ``kept`` is the value in the merged result (the first present one) and
    ``others`` the distinct values it won over, in chunk order.
    """

    path: str
    kept: Any
    others: tuple[Any, ...]


@dataclass(frozen=True)
class MergeResult(Generic[M]):
    """The merged, re-validated value and the scalar conflicts found on the way."""

    value: M
    conflicts: list[Conflict] = field(default_factory=list)


def _key(value: Any) -> str:
    """Identity of a value for de-duplication and conflict checks: its JSON dump.

    JSON rather than ``==`` so that unhashable values and models compare the way a
    person reading the output would (``2`` and ``2.0`` are one price); keys sorted so
    that dict order does not matter.
    """
    try:
        return json.dumps(
            pydantic_core.to_jsonable_python(value), sort_keys=True, separators=(",", ":")
        )
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        return repr(value)


def _default_key(field: FieldInfo) -> str | None:
    """``_key`` of the field's default (its factory called), or None when it has none."""
    if field.is_required():
        return None
    try:
        return _key(field.get_default(call_default_factory=True))
    except Exception:  # a factory that needs other fields, or an unserialisable default
        return None


def _missing(value: Any) -> bool:
    """None, and the empty string a model writes for "not in this chunk"."""
    return value is None or (isinstance(value, str) and not value)


_BY_NAME = tuple(int(part) for part in pydantic.VERSION.split(".")[:2]) >= (2, 11)


def _validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate a dict keyed by field names (not aliases) into ``model``."""
    if _BY_NAME:
        return model.model_validate(data, by_name=True)
    by_alias = {}
    for name, value in data.items():
        info = model.model_fields.get(name)
        alias = info.validation_alias if info is not None else None
        key = alias if isinstance(alias, str) else (info.alias if info else None) or name
        by_alias[key] = value
    return model.model_validate(by_alias)


class _Merger:
    def __init__(self) -> None:
        self.conflicts: list[Conflict] = []

    def merge(self, values: list[Any], path: str) -> Any:
        present = [v for v in values if v is not None]
        if not present:
            return None
        first = present[0]
        if isinstance(first, BaseModel) and all(type(v) is type(first) for v in present):
            return self._models(present, path, type(first))
        if isinstance(first, list) and all(isinstance(v, list) for v in present):
            return self._unique([item for v in present for item in v])
        if isinstance(first, set | frozenset) and all(isinstance(v, Set) for v in present):
            return type(first)().union(*present)
        if isinstance(first, Mapping) and all(isinstance(v, Mapping) for v in present):
            return self._mappings(present, path)
        return self._scalar(present, path)

    @staticmethod
    def _unique(items: list[Any]) -> list[Any]:
        seen: set[str] = set()
        unique = []
        for item in items:
            key = _key(item)
            if key not in seen:
                seen.add(key)
                unique.append(item)
        return unique

    def _scalar(self, present: list[Any], path: str) -> Any:
        kept = next((v for v in present if not _missing(v)), present[0])
        kept_key = _key(kept)
        others: dict[str, Any] = {}
        for value in present:
            key = _key(value)
            if not _missing(value) and key != kept_key:
                others.setdefault(key, value)
        if others:
            self.conflicts.append(Conflict(path or "(value)", kept, tuple(others.values())))
        return kept

    def _mappings(self, present: list[Mapping[Any, Any]], path: str) -> dict[Any, Any]:
        keys: dict[Any, None] = {}
        for mapping in present:
            keys.update(dict.fromkeys(mapping))
        return {
            key: self.merge([m[key] for m in present if key in m], f"{path}[{key}]") for key in keys
        }

    def _models(self, present: Sequence[BaseModel], path: str, model: type[M]) -> M:
        data: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            # A field a chunk left at its default says nothing; it counts only when no
            # chunk set it to something else. On the wire null means "the default" and
            # still marks the field set, so a value equal to the default is not enough.
            default = _default_key(info)
            given = [v for v in present if name in v.model_fields_set]
            chosen = [v for v in given if _key(getattr(v, name)) != default] or given or present
            child = f"{path}.{name}" if path else name
            data[name] = self.merge([getattr(v, name) for v in chosen], child)
            kept = {id(v) for v in chosen}
            passed_over = [getattr(v, name) for v in given if id(v) not in kept]
            if passed_over and not _missing(passed_over[0]) and not _empty_combined(passed_over[0]):
                # A chunk may have meant its default value (not "not found"): the choice
                # is reported, as any other disagreement between chunks is.
                self.conflicts.append(Conflict(child, data[name], (passed_over[0],)))
        extras: dict[str, list[Any]] = {}
        for value in present:
            for key, item in (value.model_extra or {}).items():
                extras.setdefault(key, []).append(item)
        for key, items in extras.items():
            data[key] = self.merge(items, f"{path}.{key}" if path else key)
        return _validate(model, data)


def _empty_combined(value: Any) -> bool:
    """An empty list, set or mapping: these merge by combining every chunk's, so an empty
    one (as a chunk without such items answers) adds nothing and disagrees with nothing."""
    return isinstance(value, list | Set | Mapping) and not value


def merge_values(values: Sequence[BaseModel], model: type[M]) -> MergeResult[M]:
    """Merge per-chunk extraction results into one value of ``model``.

    - lists: concatenated in chunk order, duplicates (same JSON dump) dropped;
      sets are united;
    - nested models and dicts: merged field by field (key by key), recursively;
    - scalars (and tuples): the first present value; ``None`` and ``""`` count as
      absent, and so does a field a chunk left at its default (not in
      ``model_fields_set``, or equal to the default while another chunk gives something
      else: on the wire null means the default; that choice is reported as a
      ``Conflict`` too, since the chunk may have meant the default, unless it was an
      empty list, set or dict, which adds nothing to a combination). Different present
      values are reported as a ``Conflict``.

    The merged data is validated again with ``model`` (its validators run on the
    merged whole), so this raises ``pydantic.ValidationError`` if the merge breaks a
    cross-field rule. ``values`` must be instances of ``model``; it must not be empty.
    """
    if not values:
        raise ValueError("merge_values() needs at least one value")
    for value in values:
        if not isinstance(value, model):
            raise TypeError(
                f"merge_values() expects {model.__name__} instances, got {type(value).__name__}"
            )
    merger = _Merger()
    return MergeResult(merger._models(values, "", model), merger.conflicts)


def combine_results(
    results: Sequence[Result[Any]], target: Any, grounding_text: str | None = None
) -> Result[Any]:
    """One ``Result`` from the per-chunk results of a long document.

    Model targets are merged with :func:`merge_values`; list targets are concatenated and
    de-duplicated; anything else keeps the first non-null value. With ``grounding_text``
    (the whole document's), the merged value's strings are located in it again, so
    ``evidence`` spans count from the document's start and paths follow the merged value.
    """
    values = [r.value for r in results]
    conflicts: list[Conflict] = []
    if isinstance(target, type) and issubclass(target, BaseModel):
        merged = merge_values(values, target)
        value: Any = merged.value
        conflicts = merged.conflicts
    elif all(isinstance(v, list) for v in values):
        seen: set[str] = set()
        value = []
        for item in (i for v in values for i in v):
            key = _key(item)
            if key not in seen:
                seen.add(key)
                value.append(item)
    else:
        value = next((v for v in values if v is not None), None)
    evidence, ungrounded = (
        check_grounding(value, grounding_text) if grounding_text is not None else ({}, {})
    )
    usage = Usage()
    for r in results:
        usage = usage + r.usage
    first = results[0]
    return Result(
        value=value,
        usage=usage,
        cost=usage.cost if not all(r.cached for r in results) else 0.0,
        attempts=sum(r.attempts for r in results),
        cached=all(r.cached for r in results),
        model=first.model,
        provider=first.provider,
        repairs=[note for r in results for note in r.repairs],
        raw="\n".join(r.raw for r in results),
        evidence=evidence,
        ungrounded=ungrounded,
        conflicts=list(conflicts),
        original_usage=original_usage_of(results),
    )
