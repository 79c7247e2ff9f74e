"""What an extraction returns: the value, and what it cost to get it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Usage:
    """Token counts and cost, summable across attempts, calls and batches."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    cost: float | None = None

    def __add__(self, other: Usage) -> Usage:
        # An unknown cost is never counted as zero: if either side made requests whose
        # cost is unknown, so is the sum's. (An empty Usage adds nothing either way.)
        cost: float | None = None
        if not (self._cost_unknown() or other._cost_unknown()) and (
            self.cost is not None or other.cost is not None
        ):
            cost = (self.cost or 0.0) + (other.cost or 0.0)
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
            cost=cost,
        )

    def _cost_unknown(self) -> bool:
        return self.cost is None and self.requests > 0

    @classmethod
    def from_response(cls, usage: dict[str, Any] | None) -> Usage:
        """Read an OpenAI/OpenRouter ``usage`` object (missing fields count as 0)."""
        if not isinstance(usage, dict) or not usage:
            return cls(requests=1)
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=_count(usage.get("total_tokens")) or prompt + completion,
            cached_tokens=_count(_get(prompt_details, "cached_tokens")),
            reasoning_tokens=_count(_get(completion_details, "reasoning_tokens")),
            requests=1,
            cost=money(usage.get("cost")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "requests": self.requests,
            "cost": self.cost,
        }


def _get(details: Any, key: str) -> Any:
    return details.get(key) if isinstance(details, dict) else None


def _count(value: Any) -> int:
    """A token count from a server's JSON; anything that is not a number counts as 0."""
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def money(value: Any) -> float | None:
    """A cost from a server's JSON; anything that is not a number is unknown (None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Result(Generic[T]):
    """A validated value plus everything about how it was obtained.

    ``cost`` is in USD (``None`` when neither the endpoint nor a price table says);
    a cache hit has ``cached=True`` and ``cost=0``. ``raw`` is the final answer's text;
    ``repairs`` lists what was fixed to make near-JSON parse.
    """

    value: T
    usage: Usage
    cost: float | None
    attempts: int
    cached: bool
    model: str | None
    provider: str | None = None
    repairs: list[str] = field(default_factory=list)
    raw: str = ""
    #: with ``grounding=True``: where each string value occurs in the input, and the
    #: string values still not found there after the re-asks ran out
    evidence: dict[str, tuple[int, int]] = field(default_factory=dict)
    ungrounded: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    #: fields on which the chunks of a long document disagreed (first value kept)
    conflicts: list[Any] = field(default_factory=list)
    #: answered from the cache, wholly or in part (chunks, samples): what all its calls
    #: cost when they were made (paid then, not now); None when nothing came from the cache
    original_usage: Usage | None = None


def original_usage_of(results: Sequence[Result[Any]]) -> Usage | None:
    """The ``original_usage`` of a result combined from ``results`` (chunks, samples):
    what each part cost when it was made, or None when no part came from the cache."""
    if all(r.original_usage is None for r in results):
        return None
    total = Usage()
    for r in results:
        total = total + (r.original_usage if r.original_usage is not None else r.usage)
    return total
