"""Self-consistency: k seeded samples, a majority vote per field, agreement as confidence.

Each sample is a full extraction at a temperature above zero (``SAMPLE_TEMPERATURE`` when
the extractor's own is 0) with its own seed, so the samples differ and each is cached on
its own. The vote runs on the samples' JSON form: objects field by field, everything else
(scalars, lists) as a whole value. ``Result.confidence`` maps each field path to the
share of samples that agreed with the chosen value.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .result import Result, Usage, original_usage_of

SAMPLE_TEMPERATURE = 0.7


def sample_plan(samples: int, seed: int | None, temperature: float) -> list[tuple[int, float]]:
    """``(seed, temperature)`` for each of ``samples`` samples."""
    base = seed or 0
    chosen = temperature if temperature > 0 else SAMPLE_TEMPERATURE
    return [(base + i, chosen) for i in range(samples)]


def _key(node: Any) -> str:
    return json.dumps(node, sort_keys=True, default=str)


def _vote(nodes: list[Any], path: str, confidence: dict[str, float]) -> Any:
    present = [n for n in nodes if n is not None]
    if present and all(isinstance(n, dict) for n in present) and len(present) == len(nodes):
        keys: list[str] = []
        for node in nodes:
            keys.extend(k for k in node if k not in keys)
        return {
            k: _vote([n.get(k) for n in nodes], f"{path}.{k}" if path else k, confidence)
            for k in keys
        }
    counts = Counter(_key(n) for n in nodes)
    winner, agreeing = counts.most_common(1)[0]
    confidence[path or "value"] = agreeing / len(nodes)
    return next(n for n in nodes if _key(n) == winner)


def vote(results: Sequence[Result[Any]], target: Any) -> Result[Any]:
    """Combine samples into one ``Result`` whose value is the per-field majority."""
    adapter: TypeAdapter[Any] = TypeAdapter(target)
    dumps = [adapter.dump_python(r.value, mode="json", by_alias=True) for r in results]
    confidence: dict[str, float] = {}
    voted = _vote(dumps, "", confidence)
    try:
        value = adapter.validate_python(voted)
    except ValidationError:  # fields that only make sense together: keep the best sample
        best = max(range(len(dumps)), key=lambda i: _agreement(dumps[i], voted))
        value = results[best].value
    usage = Usage()
    for r in results:
        usage = usage + r.usage
    cached = all(r.cached for r in results)
    # raw text and evidence belong to one sample: take one whose value is the voted value
    chosen = next((r for r in results if r.value == value), None)
    return Result(
        value=value,
        usage=usage,
        cost=0.0 if cached else usage.cost,
        attempts=sum(r.attempts for r in results),
        cached=cached,
        model=results[0].model,
        provider=results[0].provider,
        repairs=[note for r in results for note in r.repairs],
        raw=chosen.raw if chosen else "",
        evidence=chosen.evidence if chosen else {},
        ungrounded=chosen.ungrounded if chosen else {},
        confidence=confidence,
        original_usage=original_usage_of(results),
    )


def _agreement(sample: Any, voted: Any) -> int:
    if isinstance(sample, dict) and isinstance(voted, dict):
        return sum(_agreement(sample.get(k), v) for k, v in voted.items())
    return int(_key(sample) == _key(voted))
