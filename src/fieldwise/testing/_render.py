"""How a ``Reply`` becomes an OpenRouter-shaped answer: a JSON body or an SSE event list.

Kept apart from the constructors so that the user-facing ``reply`` namespace stays small, and
so that the server loop only deals with bytes. The answer's shape (tool call or content) is
read from the request, see ``request_shape``.
"""

from __future__ import annotations

import itertools
import json as _json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._replies import Reply, valid
from ._sample import sample

__all__ = ["DEFAULT_PRICES", "Context", "Rendered", "error_body", "render", "request_shape"]

DEFAULT_PRICES = (0.000001, 0.000002)  # per token: a model the price table does not list
PLAIN_TEXT = "This is a fake answer."
_FENCE = re.compile(r"```json[ \t]*\r?\n(.*?)```", re.DOTALL)
_SCHEMA_KEYS = frozenset({"type", "properties", "$defs", "definitions", "$ref", "anyOf", "$schema"})
_ids = itertools.count(1)


@dataclass(slots=True)
class Context:
    """What rendering needs to know about the request and the fake's settings."""

    body: Any
    size: int
    model: str
    provider: str
    prices: Mapping[str, tuple[float, float]]
    send_cost: bool


@dataclass(slots=True)
class Rendered:
    """An answer ready to write: a plain body, an SSE event list, or a dropped connection."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    events: list[bytes] | None = None
    drop: bool = False
    short: int | None = None  # send only this many bytes of ``body``, then close
    delay: float = 0.0
    interval: float = 0.0  # seconds between stream events (``reply.trickle``)
    bodiless: bool = False  # the answer to a HEAD request: headers only
    said: str | None = None  # the answer's text (content or tool arguments), as sent


def request_shape(body: Any) -> tuple[str | None, Any]:
    """(forced tool name or None, schema or None) of a chat request.

    The schema comes from the forced tool's parameters, else ``response_format.json_schema``,
    else the last ```json fenced schema in a system message; ``json_object`` mode without one
    answers ``{}``; None means a plain-text request.
    """
    if not isinstance(body, Mapping):
        return None, None
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if isinstance(tools, list) and tools and choice is not None and choice != "none":
        wanted = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
        fn = next(
            (t.get("function", {}) for t in tools if t.get("function", {}).get("name") == wanted),
            tools[0].get("function", {}),
        )
        return str(fn.get("name") or "extract"), fn.get("parameters") or {"type": "object"}
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        return None, (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    fenced = _fenced_schema(body.get("messages"))
    if fenced is not None:
        return None, fenced
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        return None, {"type": "object"}
    return None, None


def _fenced_schema(messages: Any) -> Any:
    found = None
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "developer"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        for block in _FENCE.findall(content if isinstance(content, str) else ""):
            try:
                parsed = _json.loads(block)
            except ValueError:
                continue
            if isinstance(parsed, dict) and _SCHEMA_KEYS & parsed.keys():
                found = parsed
    return found


def render(reply: Reply, ctx: Context) -> Rendered:
    """Turn ``reply`` into the bytes (or events) answering the request in ``ctx``."""
    delay = interval = 0.0
    while reply.kind in ("slow", "trickle"):
        if reply.kind == "slow":
            delay += reply.seconds
        else:
            interval = reply.seconds
        reply = reply.then or valid()
    stream = isinstance(ctx.body, Mapping) and ctx.body.get("stream") is True
    out = _render(reply, ctx, stream)
    out.delay = delay
    out.interval = interval if out.events else 0.0
    return out


def _render(reply: Reply, ctx: Context, stream: bool) -> Rendered:
    kind = reply.kind
    if kind == "drop":
        return Rendered(drop=True)
    if kind == "cut":
        return _cut(_render(valid(), ctx, stream), reply.after_chars)
    if kind == "http_error":
        return _error_answer(reply)
    tool, schema = request_shape(ctx.body)
    model, provider = _identity(reply, ctx)
    head = {"id": f"gen-{int(time.time())}-{next(_ids):08d}", "provider": provider, "model": model}
    if kind == "error_in_body":
        error = {"code": reply.code, "message": reply.value}
        if reply.metadata is not None:
            error["metadata"] = dict(reply.metadata)
        if stream:
            return _sse([_chunk(head, {"content": ""}, "error", error=error)], done=False)
        return _json_answer(200, {**head, "error": error})
    content: str | None = None
    reasoning = refusal_text = None
    finish = "stop"
    choice_error = None
    if kind in ("valid", "truncated", "stream_error"):
        content = reply.value if kind == "truncated" else None
        if content is None:
            content = PLAIN_TEXT if schema is None else _json.dumps(sample(schema))
        if kind == "truncated" and reply.value is None:
            content = content[: max(1, len(content) // 2)]
        if kind == "truncated":
            finish = "length"
    elif kind in ("content", "tool_call"):
        content = reply.value
        tool = tool or ("extract" if kind == "tool_call" else None)
    elif kind == "empty":
        content, reasoning, tool = "", reply.value, None
    elif kind == "refusal":
        refusal_text, tool = reply.value, None
    elif kind == "finish_error":
        content, finish, tool = "", "error", None
        choice_error = {"code": reply.code, "message": reply.value}
    else:
        raise ValueError(f"unknown reply kind {kind!r}")
    if kind == "stream_error":
        content = content[: reply.after_chars] if content else content
        finish = "error"
        choice_error = {"code": reply.code, "message": reply.value}
    args = None
    if tool is not None:
        args, content = content, None
        finish = "tool_calls" if finish == "stop" else finish
    produced = sum(len(t) for t in (content, args, reasoning, refusal_text) if t)
    usage = _usage(reply, ctx, model, produced, len(reasoning or ""))
    if stream:
        out = _stream(
            head,
            tool,
            content,
            args,
            reasoning,
            refusal_text,
            finish,
            usage,
            choice_error,
            kind == "stream_error",
        )
        out.said = content if tool is None else args
        return out
    calls = None
    if tool is not None:
        function = {"name": tool, "arguments": args}
        calls = [{"id": "call_fake_0", "type": "function", "function": function}]
    message = {"role": "assistant", "content": content, "reasoning": reasoning}
    message.update(refusal=refusal_text, tool_calls=calls)
    choice: dict[str, Any] = {"index": 0, "message": message}
    choice.update(finish_reason=finish, native_finish_reason=finish)
    if choice_error is not None:
        choice["error"] = choice_error
    answer: dict[str, Any] = {**head, "object": "chat.completion", "created": int(time.time())}
    answer["choices"] = [choice]
    if usage is not None:
        answer["usage"] = usage
    out = _json_answer(200, answer)
    out.said = content if tool is None else args
    return out


def _identity(reply: Reply, ctx: Context) -> tuple[str, str]:
    """The answering model: the reply's, else the requested one if the fake prices it."""
    asked = ctx.body.get("model") if isinstance(ctx.body, Mapping) else None
    model = reply.model or (asked if isinstance(asked, str) and asked in ctx.prices else ctx.model)
    return model, reply.provider or ctx.provider


def _usage(
    reply: Reply, ctx: Context, model: str, produced: int, reasoned: int
) -> dict[str, Any] | None:
    """OpenRouter-style usage: about four characters a token, cost from the price table."""
    if reply.usage is False:
        return None
    if reply.usage is not None:
        return dict(reply.usage)
    prompt = ctx.size // 4
    completion = produced // 4
    reasoning = reasoned // 4
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    if ctx.send_cost:
        per_prompt, per_completion = (
            ctx.prices.get(model) or ctx.prices.get(ctx.model) or DEFAULT_PRICES
        )
        usage["cost"] = round(prompt * per_prompt + completion * per_completion, 12)
    return usage


def _stream(
    head: dict[str, Any],
    tool: str | None,
    content: str | None,
    args: str | None,
    reasoning: str | None,
    refusal_text: str | None,
    finish: str,
    usage: dict[str, Any] | None,
    choice_error: dict[str, Any] | None,
    broken: bool,
) -> Rendered:
    chunks = [_chunk(head, {"role": "assistant", "content": ""}, None)]
    chunks += [_chunk(head, {"reasoning": piece}, None) for piece in _pieces(reasoning)]
    chunks += [_chunk(head, {"content": piece}, None) for piece in _pieces(content)]
    if refusal_text is not None:
        chunks.append(_chunk(head, {"refusal": refusal_text}, None))
    for i, piece in enumerate(_pieces(args) or ([""] if tool else [])):
        call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
        if i == 0:
            call.update(id="call_fake_0", type="function")
            call["function"]["name"] = tool
        chunks.append(_chunk(head, {"tool_calls": [call]}, None))
    if broken:
        chunks.append(_chunk(head, {"content": ""}, "error", error=choice_error))
        return _sse(chunks, done=False)
    final = _chunk(head, {}, finish)
    if choice_error is not None:
        final["choices"][0]["error"] = choice_error
    chunks.append(final)
    if usage is not None:
        chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return _sse(chunks, done=True)


def _cut(whole: Rendered, after_chars: int) -> Rendered:
    """``whole`` ended early: a stream's content deltas up to ``after_chars`` (no finish, no
    ``[DONE]``), or a plain body's first ``after_chars`` bytes."""
    if whole.events is None:
        whole.short = min(after_chars, len(whole.body) - 1)
        return whole
    chunks: list[dict[str, Any]] = []
    left = after_chars
    for event in whole.events:
        if not event.startswith(b"data: {"):
            continue
        chunk = _json.loads(event[6:])
        choice = (chunk.get("choices") or [{}])[0]
        if choice.get("finish_reason") or left <= 0:
            break
        delta = choice.get("delta") or {}
        holder, key = delta, "content"
        if delta.get("tool_calls"):
            holder, key = delta["tool_calls"][0]["function"], "arguments"
        text = holder.get(key)
        if isinstance(text, str) and text:
            holder[key] = text[:left]
            left -= len(holder[key])
        chunks.append(chunk)
    return _sse(chunks, done=False)


def _chunk(
    head: dict[str, Any], delta: dict[str, Any], finish: str | None, error: Any = None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}
    chunk = {**head, "object": "chat.completion.chunk", "choices": [choice]}
    if error is not None:
        chunk["error"] = error
    return chunk


def _pieces(text: str | None, parts: int = 5) -> list[str]:
    """Split ``text`` into a few deltas, as a real stream would."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _sse(chunks: list[dict[str, Any]], *, done: bool) -> Rendered:
    events = [b": OPENROUTER PROCESSING\n\n"]
    events += [b"data: " + _json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks]
    if done:
        events.append(b"data: [DONE]\n\n")
    return Rendered(headers=[("Content-Type", "text/event-stream")], events=events)


def _json_answer(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Rendered:
    return Rendered(
        status=status,
        body=_json.dumps(payload, separators=(",", ":")).encode(),
        headers=[("Content-Type", "application/json"), *(headers or [])],
    )


def _error_answer(reply: Reply) -> Rendered:
    error: dict[str, Any] = {"code": reply.code, "message": reply.value}
    if reply.metadata is not None:
        error["metadata"] = dict(reply.metadata)
    headers = list((reply.headers or {}).items())
    if reply.retry_after is not None:
        value = reply.retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        headers.append(("Retry-After", str(value)))
    return _json_answer(reply.status, {"error": error}, headers)


def error_body(status: int, message: str) -> Rendered:
    """An OpenRouter-shaped error answer (for requests the fake cannot serve)."""
    return _error_answer(Reply("http_error", message, status=status, code=status))
