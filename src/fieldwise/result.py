"""What an extraction returns: the value, and what it cost to get it."""

from __future__ import annotations

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
        if self.cost is None and other.cost is None:
            cost = None
        else:
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

    @classmethod
    def from_response(cls, usage: dict[str, Any] | None) -> Usage:
        """Read an OpenAI/OpenRouter ``usage`` object (missing fields count as 0)."""
        if not usage:
            return cls(requests=1)
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        cost = usage.get("cost")
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=int(usage.get("total_tokens") or prompt + completion),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            requests=1,
            cost=float(cost) if cost is not None else None,
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
    evidence: dict[str, tuple[int, int]] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    #: fields on which the chunks of a long document disagreed (first value kept)
    conflicts: list[Any] = field(default_factory=list)
