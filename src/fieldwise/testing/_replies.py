"""Scripted replies for ``FakeLLM`` and how each becomes an OpenRouter-shaped HTTP answer.

Why a data object per reply: tests queue what the endpoint should do next (a valid answer, a
429, a dropped connection, a stream that breaks) without knowing the wire format, and the
server renders the same reply as a plain JSON answer or as an SSE stream depending on what the
client asked for. Content-style replies (``valid``, ``json``, ``text``, ``malformed``,
``truncated``) are delivered the way the request expects them: as the forced tool's call
arguments when the request sends ``tools`` + ``tool_choice``, else as ``message.content``.

Every constructor accepts ``usage=`` (a dict sent as is, or ``False`` to send no usage),
``model=`` and ``provider=`` to override what the answer reports.
"""

from __future__ import annotations

import json as _json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

__all__ = [
    "Reply",
    "cut",
    "drop",
    "empty",
    "error_in_body",
    "finish_error",
    "http_error",
    "json",
    "malformed",
    "refusal",
    "slow",
    "stream_error",
    "text",
    "tool_call",
    "trickle",
    "truncated",
    "valid",
]

UsageOverride = Mapping[str, Any] | Literal[False] | None

# No braces, brackets or quotes: a JSON repairer cannot turn this into an object.
MALFORMED = "I am unable to comply ~~~ <<garbage>> ::: @@@ not json at all"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake endpoint does for one request; build it with the functions below."""

    kind: str
    value: Any = None
    status: int = 200
    code: Any = None
    metadata: Mapping[str, Any] | None = None
    retry_after: float | str | None = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0
    then: Reply | None = None
    after_chars: int = 0
    usage: UsageOverride = None
    model: str | None = None
    provider: str | None = None


def valid(
    *, usage: UsageOverride = None, model: str | None = None, provider: str | None = None
) -> Reply:
    """The default answer: an instance of the request's schema (what an empty queue gives)."""
    return Reply("valid", usage=usage, model=model, provider=provider)


def json(
    obj: Any, *, usage: UsageOverride = None, model: str | None = None, provider: str | None = None
) -> Reply:
    """Answer with ``obj`` serialised as JSON (valid or not against the schema)."""
    return Reply(
        "content", _json.dumps(obj, ensure_ascii=False), usage=usage, model=model, provider=provider
    )


def text(
    content: str,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """Answer with this exact raw text (near-JSON, fenced JSON, prose...)."""
    return Reply("content", content, usage=usage, model=model, provider=provider)


def malformed(
    *, usage: UsageOverride = None, model: str | None = None, provider: str | None = None
) -> Reply:
    """Answer with garbage that no JSON repair can turn into an object."""
    return Reply("content", MALFORMED, usage=usage, model=model, provider=provider)


def empty(
    reasoning: str | None = None,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """Empty content; ``reasoning`` (if given) goes to ``message.reasoning`` (the Qwen failure)."""
    return Reply("empty", reasoning, usage=usage, model=model, provider=provider)


def truncated(
    content: str | None = None,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """``finish_reason: "length"`` with ``content`` (default: a valid answer cut in half)."""
    return Reply("truncated", content, usage=usage, model=model, provider=provider)


def refusal(
    text: str = "I can't help with that.",
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """``message.refusal`` set and ``content`` null."""
    return Reply("refusal", text, usage=usage, model=model, provider=provider)


def http_error(
    status: int,
    message: str | None = None,
    retry_after: float | str | None = None,
    code: Any = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """An HTTP error with OpenRouter's body ``{"error": {"code", "message", "metadata"}}``.

    ``retry_after`` (seconds, or an HTTP date string) becomes the ``Retry-After`` header;
    ``headers`` adds any other header (``retry-after-ms``, ``x-should-retry``...). ``code``
    defaults to ``status``; ``message`` to the status phrase.
    """
    return Reply(
        "http_error",
        message or phrase(status),
        status=status,
        code=status if code is None else code,
        metadata=metadata,
        retry_after=retry_after,
        headers=headers,
        usage=usage,
        model=model,
        provider=provider,
    )


def error_in_body(
    code: Any,
    message: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """HTTP 200 whose body is a top-level ``error`` (a failure during generation)."""
    return Reply(
        "error_in_body",
        message,
        code=code,
        metadata=metadata,
        usage=usage,
        model=model,
        provider=provider,
    )


def finish_error(
    message: str = "Upstream error during generation",
    code: Any = 502,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """A normal answer with ``choices[0].finish_reason == "error"`` and ``choices[0].error``."""
    return Reply("finish_error", message, code=code, usage=usage, model=model, provider=provider)


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """Wait ``seconds`` (on top of the fake's latency), then answer ``then`` (default: valid)."""
    return Reply("slow", seconds=seconds, then=then)


def trickle(seconds: float, then: Reply | None = None) -> Reply:
    """Stream ``then`` (default: valid) one piece every ``seconds``, as a model generates,
    instead of all pieces at once: for a UI that shows partials as they come, or a client
    that cancels mid-answer. A request that does not stream gets ``then`` whole."""
    return Reply("trickle", seconds=seconds, then=then)


def drop() -> Reply:
    """Close the connection without sending any response."""
    return Reply("drop")


def cut(after_chars: int = 20) -> Reply:
    """The connection ends mid-answer without an error, as a proxy or gateway may close it.

    Streaming: ``after_chars`` of a valid answer, then the stream ends cleanly with neither a
    ``finish_reason`` nor ``data: [DONE]``. A plain answer: the first ``after_chars`` bytes
    of a body whose ``Content-Length`` promises more, then the connection closes.
    """
    return Reply("cut", after_chars=after_chars)


def tool_call(
    arguments: Any,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """Answer with a tool call whose arguments are ``arguments`` (a dict, or a raw string)."""
    raw = arguments if isinstance(arguments, str) else _json.dumps(arguments, ensure_ascii=False)
    return Reply("tool_call", raw, usage=usage, model=model, provider=provider)


def stream_error(
    after_chars: int,
    message: str = "Provider disconnected unexpectedly",
    code: Any = 502,
    *,
    usage: UsageOverride = None,
    model: str | None = None,
    provider: str | None = None,
) -> Reply:
    """Streaming: send ``after_chars`` of a valid answer, then an error chunk, then stop.

    A non-streaming request gets the same partial content with ``finish_reason: "error"``.
    """
    return Reply(
        "stream_error",
        message,
        code=code,
        after_chars=after_chars,
        usage=usage,
        model=model,
        provider=provider,
    )


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("Error" when unknown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
