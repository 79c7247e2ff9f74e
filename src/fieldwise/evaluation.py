"""Field-level evaluation against a gold set: how often each field comes out right.

A gold file is JSON lines: ``{"input": "<text>", "expected": {...}}`` or
``{"input_file": "<path, relative to the gold file>", "expected": {...}}``. Values are
compared after normalisation (whitespace and case for text; numbers by value, so ``"1,200"``
equals ``1200.0``; dates by calendar day). A list field scores the share of items that
match (each expected item used once). An item whose extraction failed scores 0 on every
field and counts against ``schema_valid``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from .document import Document
from .exceptions import ConfigurationError
from .extractor import Extractor
from .result import Usage

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"^[+-]?[\d,]*\.?\d+$")


def normalise(value: Any) -> Any:
    """A comparable form of a leaf value."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), 6)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10] if not isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, str):
        text = _SPACES.sub(" ", value).strip().casefold()
        if _NUMBER.match(text.replace(" ", "")):
            try:
                return round(float(Decimal(text.replace(",", "").replace(" ", ""))), 6)
            except InvalidOperation:
                pass
        for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
            try:
                return parse(text).isoformat()
            except ValueError:
                continue
        return text
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def _list_score(expected: list[Any], got: Any) -> float:
    if not isinstance(got, list):
        return 0.0
    if not expected and not got:
        return 1.0
    remaining = [normalise(item) for item in expected]
    matched = 0
    for item in got:
        key = normalise(item)
        if key in remaining:
            remaining.remove(key)
            matched += 1
    return matched / max(len(expected), len(got))


def score_fields(
    expected: dict[str, Any], got: dict[str, Any] | None, prefix: str = ""
) -> dict[str, float]:
    """Field path → score in 0..1 for every leaf (or list) in ``expected``."""
    scores: dict[str, float] = {}
    for key, want in expected.items():
        path = f"{prefix}{key}"
        have = got.get(key) if isinstance(got, dict) else None
        if isinstance(want, dict):
            scores.update(score_fields(want, have if isinstance(have, dict) else None, path + "."))
        elif isinstance(want, list):
            scores[path] = _list_score(want, have)
        else:
            scores[path] = 1.0 if normalise(want) == normalise(have) else 0.0
    return scores


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
            got = None
            if item.result is not None:
                valid += 1
                attempts += item.result.attempts
                usage = usage + item.result.usage
                got = adapter.dump_python(item.result.value, mode="json")
            else:
                attempts += len(getattr(item.error, "attempts", ()) or [1])
                error_usage = getattr(item.error, "usage", None)
                if isinstance(error_usage, Usage):
                    usage = usage + error_usage
                report.failures.append({"index": item.index, "error": str(item.error)[:300]})
            scores = score_fields(expected, got)
            for path, score in scores.items():
                totals.setdefault(path, []).append(score)
            if got is not None and all(s == 1.0 for s in scores.values()):
                exact += 1
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
