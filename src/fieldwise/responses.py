"""A chat-completions answer: the request body's encoding and the answer's parsing, free of I/O.

Why apart from ``transport``: the extraction loop, the answer readers and streaming only need
these shapes, so importing them does not load an HTTP library (``transport`` is imported when
an ``Extractor`` first makes a request).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._retry import Failure, failure_from_body_error, failure_from_shape, failure_in_payload
from ._sse import first_call_arguments, first_call_id, message_text

__all__ = ["ChatResponse", "encode_body", "parse_json", "parse_response"]


@dataclass(slots=True)
class ChatResponse:
    """One chat-completions answer, reduced to what the extractor reads (``raw`` has it all)."""

    content: str | None
    reasoning: str | None
    refusal: str | None
    tool_arguments: str | None
    finish_reason: str | None
    usage: dict[str, Any] | None
    model: str | None
    provider: str | None
    id: str | None
    raw: dict[str, Any] = field(repr=False)
    #: the first tool call's id, when the server gave one
    tool_call_id: str | None = None


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON with the stdlib.

    Measured: ~100 us for a 12.8 KB body (10 KB of text and a 30-field schema), against
    ~1 ms of client CPU per call in the pool; orjson could save most of that 100 us, not
    enough to add a dependency.
    """
    fixed = body.get("response_format")
    if isinstance(fixed, dict) and len(body) > 1:
        # The compiled schema's dict is shared and never changed (schema.py says so):
        # serialise it once, by identity, and splice it in (19.6 → 7.3 µs measured).
        cached = _FIXED_PARTS.get(id(fixed))
        if cached is None or cached[0] is not fixed:
            if len(_FIXED_PARTS) > 256:
                _FIXED_PARTS.clear()
            cached = _FIXED_PARTS[id(fixed)] = (fixed, _dumps(fixed))
        rest = _dumps({k: v for k, v in body.items() if k != "response_format"})
        return rest[:-1] + b',"response_format":' + cached[1] + b"}"
    return _dumps(body)


_FIXED_PARTS: dict[int, tuple[Any, bytes]] = {}


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate in the text: escape it, as JSON allows
        return json.dumps(value, separators=(",", ":")).encode()


def parse_response(payload: Any, *, url: str, model: str | None) -> ChatResponse | Failure:
    """A 2xx body → ``ChatResponse``, or the ``Failure`` it reports (error in a 200 body)."""
    failure = failure_in_payload(payload, url=url, model=model)
    if failure is not None:
        return failure
    provider = payload.get("provider")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return failure_from_shape(url, payload)
    choice = choices[0]
    finish = choice.get("finish_reason")
    if finish == "error":
        error = choice.get("error") or {"message": "the answer ended with finish_reason 'error'"}
        return failure_from_body_error(
            error, url=url, model=model, provider=provider, payload=payload
        )
    message = choice.get("message") or {}
    arguments = first_call_arguments(message.get("tool_calls"))
    if arguments is None and isinstance(message.get("function_call"), dict):
        arguments = message["function_call"].get("arguments")
    usage = payload.get("usage")
    return ChatResponse(
        content=message_text(message.get("content")),
        reasoning=message_text(message.get("reasoning") or message.get("reasoning_content")),
        refusal=message_text(message.get("refusal")),
        tool_arguments=message_text(arguments),
        finish_reason=finish,
        usage=usage if isinstance(usage, dict) else None,
        model=payload.get("model"),
        provider=provider,
        id=payload.get("id"),
        raw=payload,
        tool_call_id=first_call_id(message.get("tool_calls")),
    )


def parse_json(content: bytes, url: str) -> Any:
    """A 2xx body as JSON, or the ``Failure`` of an answer that is not JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return failure_from_shape(url, content.decode("utf-8", "replace"))
