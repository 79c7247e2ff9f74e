"""Field-level evaluation against a gold set: how often each field comes out right.

A gold file is JSON lines: ``{"input": "<text>", "expected": {...}}`` or
``{"input_file": "<path, relative to the gold file>", "expected": {...}}``. Values are
compared after normalisation (whitespace and case for text; numbers by value, so ``"1,200"``
equals ``1200.0``, but only plain decimal strings count as numbers: ``"0612345678"`` and
``"1,2"`` stay text, as do decimals with more digits than a float keeps, and whole numbers
beyond 2**53 compare exactly; ISO dates and times, parsed before case folding, so ``Z``
equals ``+00:00``). Expected keys may be field names or aliases. A dict field, and a dict
item of a list, ignores keys the gold omits (a missing key reads as null). A list field
scores the share of items that match, each expected item used at most once, paired for
the best score. An item whose extraction failed scores 0 on every field, null-expected
ones included, and counts against ``schema_valid``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from .document import Document
from .exceptions import ConfigurationError
from .extractor import Extractor
from .result import Usage

_SPACES = re.compile(r"\s+")
# A plain decimal number. No leading zero ("0612345678" is a phone number or an ID, and the
# zero is part of it), and commas only as thousands separators ("1,200", never "1,2").
_NUMBER = re.compile(r"^[+-]?(?:(?:0|[1-9]\d*|[1-9]\d{0,2}(?:,\d{3})+)(?:\.\d+)?|\.\d+)$")
# Integers up to this size are exact as floats; larger ones are kept as ints, so that two
# long IDs never round to the same float.
_EXACT_FLOAT_INT = 2**53


def normalise(value: Any) -> Any:
    """A comparable form of a leaf value."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return _number(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10] if not isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def _number(value: int | float | Decimal) -> int | float:
    """Numbers compare by value: to 6 decimal places (``0.1 + 0.2`` equals ``0.3``), except
    whole numbers too large for a float to hold exactly, which stay exact ints."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int) and abs(value) > _EXACT_FLOAT_INT:
        return value
    return round(float(value), 6)


def _text(value: str) -> Any:
    """A string as a number or a date where it safely is one, else as folded text.

    Dates are parsed before case folding: ``fromisoformat`` needs the capital ``T`` and
    ``Z`` (``"...T10:00:00Z"`` must equal ``"...T10:00:00+00:00"``)."""
    text = _SPACES.sub(" ", value).strip()
    number = _number_text(text)
    if number is not None:
        return number
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            return parse(text).isoformat()
        except ValueError:
            continue
    return text.casefold()


def _number_text(text: str) -> int | float | None:
    """``text`` as a number, or None where reading it as one could make different values
    equal: not a plain decimal number, or more digits than a float keeps."""
    if not _NUMBER.match(text):
        return None
    value = Decimal(text.replace(",", ""))
    if value != value.to_integral_value() and Decimal(repr(float(value))) != value:
        return None
    return _number(value)


def _matches(want: Any, have: Any) -> bool:
    """One list item against another, by the rule for fields: a dict item matches when each
    of the gold's keys does, so keys the gold omits (an optional null) do not count."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(s == 1.0 for s in score_fields(want, have).values())
    if isinstance(want, list):
        return _list_score(want, have) == 1.0
    return bool(normalise(want) == normalise(have))


def _fits(expected: list[Any], got: list[Any]) -> list[list[int]]:
    """For each item got, the indexes of the expected items it matches."""
    keys = [None if isinstance(w, (dict, list)) else normalise(w) for w in expected]
    fits: list[list[int]] = []
    for have in got:
        key = normalise(have)
        fits.append(
            [
                j
                for j, want in enumerate(expected)
                if (_matches(want, have) if isinstance(want, (dict, list)) else keys[j] == key)
            ]
        )
    return fits


def _matched(fits: list[list[int]]) -> int:
    """The most items got that pair off with distinct expected items (a maximum matching:
    as dict items match loosely, the first fit can take the item another one needed)."""
    owner: dict[int, int] = {}  # expected index -> the got index it is paired with

    def place(i: int, seen: set[int]) -> bool:
        free = next((j for j in fits[i] if j not in owner), None)
        if free is not None:  # a free fit first: keeps the search shallow
            owner[free] = i
            return True
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(place(i, set()) for i in range(len(fits)))


def _list_score(expected: list[Any], got: Any) -> float:
    if not isinstance(got, list):
        return 0.0
    if not expected and not got:
        return 1.0
    return _matched(_fits(expected, got)) / max(len(expected), len(got))


def score_fields(
    expected: dict[str, Any], got: dict[str, Any] | None, prefix: str = ""
) -> dict[str, float]:
    """Field path → score in 0..1 for every leaf (or list) in ``expected``.

    ``got=None`` (no answer at all) scores 0 everywhere: a null in the gold is not credited
    to an item that produced nothing. A nested field that is null or missing in ``got`` is
    scored as an empty dict, so its null-expected leaves do match."""
    if got is None:
        return dict.fromkeys(_paths(expected, prefix), 0.0)
    scores: dict[str, float] = {}
    for key, want in expected.items():
        path = f"{prefix}{key}"
        have = got.get(key) if isinstance(got, dict) else None
        if isinstance(want, dict):
            scores.update(score_fields(want, have if isinstance(have, dict) else {}, path + "."))
        elif isinstance(want, list):
            scores[path] = _list_score(want, have)
        else:
            scores[path] = 1.0 if normalise(want) == normalise(have) else 0.0
    return scores


def _value_scores(
    expected: dict[str, Any], value: Any, adapter: TypeAdapter[Any]
) -> dict[str, float]:
    """Field scores of one extracted value. A gold file may key fields by name or by alias
    (the model answers by alias), so both dumps are scored and each field keeps its better
    score."""
    by_name = score_fields(expected, adapter.dump_python(value, mode="json"))
    by_alias = score_fields(expected, adapter.dump_python(value, mode="json", by_alias=True))
    return {path: max(score, by_alias[path]) for path, score in by_name.items()}


def _paths(expected: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The field paths ``score_fields`` reports for ``expected``."""
    for key, want in expected.items():
        if isinstance(want, dict):
            yield from _paths(want, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


@dataclass
class EvalReport:
    """Rates are in 0..1. ``attempts`` is the mean number of model calls per item."""

    n: int = 0
    exact_object: float = 0.0
    schema_valid: float = 0.0
    fields: dict[str, float] = field(default_factory=dict)
    attempts: float = 0.0
    tokens: int = 0
    cost: float | None = None
    #: answers reused from the cache (their tokens and cost, as made, are counted above)
    from_cache: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "exact_object": round(self.exact_object, 4),
            "schema_valid": round(self.schema_valid, 4),
            "fields": {k: round(v, 4) for k, v in sorted(self.fields.items())},
            "attempts": round(self.attempts, 3),
            "tokens": self.tokens,
            "cost": self.cost,
            "from_cache": self.from_cache,
            "failures": self.failures,
        }


def load_gold(path: str | Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """``(input, expected)`` pairs from a JSON-lines gold file."""
    path = Path(path)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ConfigurationError(f"{path}:{number}: not JSON: {exc}") from None
            if "input_file" in record:
                data: Any = Document.open(path.parent / record["input_file"])
            elif "input" in record:
                data = record["input"]
            else:
                raise ConfigurationError(f"{path}:{number}: needs 'input' or 'input_file'")
            if not isinstance(record.get("expected"), dict):
                raise ConfigurationError(f"{path}:{number}: needs an 'expected' object")
            yield data, record["expected"]


def evaluate(
    gold: str | Path | Iterable[tuple[Any, dict[str, Any]]],
    target: type[BaseModel],
    extractor: Extractor | None = None,
    *,
    concurrency: int = 4,
    **options: Any,
) -> EvalReport:
    """Run ``target`` extraction over the gold set and score it field by field."""
    pairs = list(load_gold(gold) if isinstance(gold, (str, Path)) else gold)
    own = extractor is None
    extractor = extractor or Extractor()
    adapter: TypeAdapter[Any] = TypeAdapter(target)
    report = EvalReport(n=len(pairs))
    totals: dict[str, list[float]] = {}
    exact = valid = attempts = 0
    usage = Usage()
    try:
        batch = extractor.run_many(
            (data for data, _ in pairs), target, concurrency=concurrency, **options
        )
        for item in batch:
            expected = pairs[item.index][1]
            if item.result is not None:
                valid += 1
                attempts += item.result.attempts
                # as made: a configuration costs what its answers cost, whether this run
                # paid for them or reused them (another configuration may have made them)
                made = item.result.original_usage
                usage = usage + (made if made is not None else item.result.usage)
                report.from_cache += item.result.cached
                scores = _value_scores(expected, item.result.value, adapter)
                exact += all(s == 1.0 for s in scores.values())
            else:
                attempts += len(getattr(item.error, "attempts", ()) or [1])
                error_usage = getattr(item.error, "usage", None)
                if isinstance(error_usage, Usage):
                    usage = usage + error_usage
                report.failures.append({"index": item.index, "error": str(item.error)[:300]})
                scores = score_fields(expected, None)
            for path, score in scores.items():
                totals.setdefault(path, []).append(score)
    finally:
        if own:
            extractor.close()
    n = max(report.n, 1)
    report.exact_object = exact / n
    report.schema_valid = valid / n
    report.attempts = attempts / n
    report.fields = {path: sum(v) / len(v) for path, v in totals.items()}
    report.tokens = usage.total_tokens
    report.cost = usage.cost
    return report
