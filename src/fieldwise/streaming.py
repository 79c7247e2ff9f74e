"""Turning a stream of chunks into partial values and, at the end, one response.

``StreamAssembler`` collects one request's chunks and yields a new partial value whenever
the answer so far grew one; ``stream_values``/``astream_values`` drive the extraction loop
with the streaming transport, one assembler per request, and account for the usage of a
request the caller stopped reading. The final value is validated by the real model in the
extraction loop, like any other answer.

Why apart from ``_partials``: this is the driver (chunks, transports, re-asks, usage);
how a partial model is built and how the text so far becomes a partial value live there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import BaseModel, ValidationError

from ._partials import _json_start, _without_trailing_number, _wrapped_shape, partial_model
from ._sse import ChatChunk
from .exceptions import FieldwiseError
from .responses import ChatResponse
from .result import Usage
from .schema import CompiledSchema

if TYPE_CHECKING:
    from .extractor import Extractor
    from .loop import Call


class StreamAssembler:
    """Collects chunks; ``feed`` returns a new partial value when the answer grew one."""

    def __init__(self, compiled: CompiledSchema[Any], *, tools: bool) -> None:
        self._compiled = compiled
        self._tools = tools
        self._text = ""
        self._start: int | None = None
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._last: Any = None
        self.chunks = 0
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.id: str | None = None
        self.tool_call_id: str | None = None  # the first the server sent, if any
        target = compiled.target
        self._partial = (
            partial_model(target)
            if isinstance(target, type) and issubclass(target, BaseModel) and not compiled.wrapped
            else None
        )
        self._shape = _wrapped_shape(target) if compiled.wrapped else None

    def feed(self, chunk: ChatChunk) -> Any:
        self.chunks += 1
        piece = chunk.tool_arguments if self._tools else chunk.content
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        if chunk.refusal:
            self._refusal.append(chunk.refusal)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage:
            self.usage = chunk.usage
        self.model = chunk.model or self.model
        self.provider = chunk.provider or self.provider
        self.id = chunk.id or self.id
        self.tool_call_id = self.tool_call_id or chunk.tool_call_id
        if not piece:
            return None
        self._text += piece
        if self._start is None:
            self._start = _json_start(self._text)
            if self._start is None:
                return None
        text = _without_trailing_number(self._text)
        try:
            obj = pydantic_core.from_json(text[self._start :], allow_partial="trailing-strings")
        except ValueError:
            return None
        if obj == self._last:
            return None
        self._last = obj
        if self._compiled.wrapped:
            value = obj.get("value") if isinstance(obj, dict) else None
            return value if self._shape is None or value is None else self._shape(value)
        if self._partial is None:
            return obj
        return self._validate(obj)

    def _validate(self, obj: Any) -> Any:
        assert self._partial is not None
        try:
            return self._partial.model_validate(obj)
        except ValidationError as exc:
            if not isinstance(obj, dict):
                return None
            # A field that cannot be read yet is left out, rather than every partial after it.
            bad = {e["loc"][0] for e in exc.errors(include_url=False) if e["loc"]}
            try:
                return self._partial.model_validate({k: v for k, v in obj.items() if k not in bad})
            except ValidationError:
                return None

    def response(self) -> ChatResponse:
        text = self._text
        return ChatResponse(
            content=None if self._tools else text,
            reasoning="".join(self._reasoning) or None,
            refusal="".join(self._refusal) or None,
            tool_arguments=text if self._tools else None,
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=self.model,
            provider=self.provider,
            id=self.id,
            raw={},
            tool_call_id=self.tool_call_id,
        )

    def abandoned_usage(self) -> Usage:
        """The usage of a request left unfinished: what its chunks reported, if any, else
        one request of unknown size."""
        return Usage.from_response(self.usage)


def stream_values(extractor: Extractor, call: Call) -> Iterator[Any]:
    """Drive the extraction loop with the streaming transport (sync)."""
    flow = extractor._flow(call)
    tools = extractor.mode == "tools"
    pending: StreamAssembler | None = None  # the request whose answer is streaming in
    try:
        body = next(flow)
        transport = extractor._transport_for_use()
        reconnected = False
        while True:
            if extractor._limiter is not None:
                extractor._limiter.wait_sync()
            assembler = pending = StreamAssembler(call.compiled, tools=tools)
            chunks = transport.stream(extractor._stream_body(body))
            moved = None
            try:
                while True:
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        break
                    except FieldwiseError as exc:
                        if not reconnected and not assembler.chunks and extractor._server_gone(exc):
                            reconnected = True  # as run() does: the backend's new server
                            moved = extractor._transport_for_use(gone=transport)
                            if moved is not transport:
                                break
                        pending = None  # counted as run() counts a failed request
                        flow.throw(exc)  # notes what was paid on the error, and raises it
                        raise
                    partial = assembler.feed(chunk)
                    if partial is not None:
                        yield partial
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:  # the connection goes now, not when collected
                    close()
            if moved is not None and moved is not transport:  # ask the new server instead
                transport = moved
                continue
            pending = None
            body = flow.send(assembler.response())
    except StopIteration as done:
        yield done.value.value
    finally:
        if pending is not None and pending.chunks:  # the caller stopped reading
            usage = pending.abandoned_usage()
            usage.cost = extractor._prices.cost(extractor._settings.model, pending.usage)
            extractor._add_usage(usage)
        flow.close()


async def astream_values(extractor: Extractor, call: Call) -> AsyncIterator[Any]:
    """Drive the extraction loop with the streaming transport (async)."""
    flow = extractor._flow(call)
    tools = extractor.mode == "tools"
    prices = extractor._prices
    pending: StreamAssembler | None = None  # the request whose answer is streaming in
    try:
        body = next(flow)
        transport = extractor._transport
        if transport is None:  # a backend may start a server: not on the event loop
            transport = await asyncio.to_thread(extractor._transport_for_use)
        reconnected = False
        while True:
            if extractor._limiter is not None:
                await extractor._limiter.wait()
            assembler = pending = StreamAssembler(call.compiled, tools=tools)
            chunks = transport.astream(extractor._stream_body(body))
            moved = None
            try:
                while True:
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    except FieldwiseError as exc:
                        if not reconnected and not assembler.chunks and extractor._server_gone(exc):
                            reconnected = True  # as arun() does: the backend's new server
                            moved = await asyncio.to_thread(extractor._transport_for_use, transport)
                            if moved is not transport:
                                break
                        pending = None  # counted as arun() counts a failed request
                        flow.throw(exc)  # notes what was paid on the error, and raises it
                        raise
                    partial = assembler.feed(chunk)
                    if partial is not None:
                        yield partial
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:  # the connection goes now, not when collected
                    await aclose()
            if moved is not None and moved is not transport:  # ask the new server instead
                transport = moved
                continue
            pending = None
            if prices.needs_remote(extractor._settings.model, assembler.usage):
                await asyncio.to_thread(prices.load_remote)  # once, off the loop
            body = flow.send(assembler.response())
    except StopIteration as done:
        yield done.value.value
    finally:
        if pending is not None and pending.chunks:  # the caller stopped reading
            usage = pending.abandoned_usage()
            model = extractor._settings.model
            if not prices.needs_remote(model, pending.usage):  # never a fetch on the loop
                usage.cost = prices.cost(model, pending.usage)
            extractor._add_usage(usage)
        flow.close()
