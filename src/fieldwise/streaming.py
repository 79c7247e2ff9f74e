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
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pydantic_core
from pydantic import BaseModel, ValidationError

from ._partials import (
    HELD,
    Cut,
    StringScan,
    _json_start,
    _without_trailing_number,
    last_string,
    partial_model,
    partial_wrapper,
    same_partial,
)
from ._sse import ChatChunk
from .exceptions import FieldwiseError
from .responses import ChatResponse
from .result import Usage
from .schema import CompiledSchema

if TYPE_CHECKING:
    from .extractor import Extractor
    from .loop import Call


#: characters of answer per chunk read for partials: past this, a partial every two
#: chunks, past twice this every three... (reading and validating the text so far costs
#: ~25 µs a kilobyte for a list of models)
_THIN = 16_384


class StreamAssembler:
    """Collects chunks; ``feed`` returns a new partial value when the answer grew one."""

    def __init__(self, compiled: CompiledSchema[Any], *, tools: bool) -> None:
        self._compiled = compiled
        self._tools = tools
        self._text = ""
        self._start: int | None = None
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._last: BaseModel | None = None  # the partial shown last
        self._read: Any = None  # what it was read from
        self._scan = StringScan()
        self._held: set[tuple[Any, ...]] = set()  # where a string being written is no text
        self._skipped = 0  # chunks since the text so far was last read (see ``_THIN``)
        self.chunks = 0
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.id: str | None = None
        self.tool_call_id: str | None = None  # the first the server sent, if any
        target = compiled.target
        # a wrapped target's partial is the ``value`` of a one-field model; a model target's
        # is its partial model (compiling sends every target that is not a model wrapped)
        self._partial = partial_wrapper(target) if compiled.wrapped else partial_model(target)
        self._names = {
            info.validation_alias if isinstance(info.validation_alias, str) else name: name
            for name, info in self._partial.model_fields.items()
        }

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
            self._scan.feed(self._text[self._start :])
        else:
            self._scan.feed(piece)
        # every chunk reads the whole text so far: a long answer is read every few chunks
        # only, so that its cost a chunk stays bounded (the last value always comes whole)
        self._skipped += 1
        if self._skipped < 1 + len(self._text) // _THIN:
            return None
        self._skipped = 0
        text = _without_trailing_number(self._text)
        try:
            obj = pydantic_core.from_json(text[self._start :], allow_partial="trailing-strings")
        except ValueError:
            return None
        cut = last_string(obj) if self._scan.in_value else None
        if cut is not None:
            parent, key, path = cut
            if path in self._held:  # no text there before: held back again, unasked
                del parent[key]
                cut = None
            else:
                parent[key] = Cut(parent[key])
        if obj == self._read:  # nothing new to read (a key, a number or a value held back)
            return None
        partial = self._partial_of(obj, cut)
        self._read = obj
        # the same partial again (the text grew where the partial does not show it) is no
        # new one
        if partial is None or same_partial(partial, self._last):
            return None
        self._last = partial
        return getattr(partial, "value", None) if self._compiled.wrapped else partial

    def _partial_of(
        self, obj: Any, cut: tuple[Any, Any, tuple[Any, ...]] | None
    ) -> BaseModel | None:
        """The partial value of ``obj``. A string the text ends inside (``cut``) shows only
        where it is text: a date, an enum, a UUID… waits for its closing quote, as a number
        does, and its path is kept so that the next chunks hold it back at once."""
        if cut is None:
            return self._validate(obj)
        context: dict[str, bool] = {}  # told (HELD) when a value refused the cut string
        try:
            partial = self._partial.model_validate(obj, context=context)
        except ValidationError as exc:
            if not context.get(HELD):
                return self._readable(obj, exc)
        else:
            if not context.get(HELD):
                return partial  # text, or a union's text branch took it
        parent, key, path = cut
        self._held.add(path)
        del parent[key]  # as if its opening quote had not come yet
        return self._validate(obj)

    def _validate(self, obj: Any) -> BaseModel | None:
        try:
            return self._partial.model_validate(obj)
        except ValidationError as exc:
            return self._readable(obj, exc)

    def _readable(self, obj: Any, exc: ValidationError) -> BaseModel | None:
        """The partial of the fields of ``obj`` that can be read: one that cannot (yet) is
        left out, rather than every partial after it, and one already shown keeps its last
        partial rather than vanish for a chunk."""
        if not isinstance(obj, dict):
            return None
        bad = {e["loc"][0] for e in exc.errors(include_url=False) if e["loc"]}
        try:
            partial = self._partial.model_validate({k: v for k, v in obj.items() if k not in bad})
        except ValidationError:
            return None
        return self._kept(partial, bad)

    def _kept(self, partial: BaseModel, bad: set[Any]) -> BaseModel:
        """``partial`` with the fields in ``bad`` (wire keys) as the last partial had them."""
        if self._last is None:
            return partial
        last = self._last
        update = {
            name: getattr(last, name)
            for key in bad
            if (name := self._names.get(key)) is not None and getattr(last, name) is not None
        }
        return partial.model_copy(update=update) if update else partial

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


def _paid(extractor: Extractor, assembler: StreamAssembler | None, *, fetch: bool) -> Usage | None:
    """What a request left part way cost (the caller stopped reading, or the connection was
    cut after some of the answer): it was sent and answered in part, so it counts, as what
    its chunks reported or one request of unknown size. None when nothing came back (then
    it counts as ``run`` counts a failed request). ``fetch=False``: async code, which never
    waits on the price list on the event loop (the cost stays unknown instead)."""
    if assembler is None or not assembler.chunks:
        return None
    usage = assembler.abandoned_usage()
    model = extractor._settings.model
    if fetch or not extractor._prices.needs_remote(model, assembler.usage):
        usage.cost = extractor._prices.cost(model, assembler.usage)
    return usage


def _fail(
    extractor: Extractor,
    flow: Generator[Any, Any, Any],
    exc: FieldwiseError,
    paid: Usage | None,
) -> NoReturn:
    """Raise ``exc`` through the extraction loop (which notes on it what earlier attempts
    paid), adding what the failed request itself paid, if anything came back."""
    try:
        flow.throw(exc)
    except FieldwiseError as raised:
        if paid is not None:
            extractor._add_usage(paid)
            raised.usage = paid if raised.usage is None else raised.usage + paid
        raise
    raise AssertionError("the extraction loop went on after a failed request")


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
                        pending = None  # counted here, not again as a stream left early
                        _fail(extractor, flow, exc, _paid(extractor, assembler, fetch=True))
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
        paid = _paid(extractor, pending, fetch=True)
        if paid is not None:  # the caller stopped reading
            extractor._add_usage(paid)
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
                        pending = None  # counted here, not again as a stream left early
                        _fail(extractor, flow, exc, _paid(extractor, assembler, fetch=False))
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
        paid = _paid(extractor, pending, fetch=False)
        if paid is not None:  # the caller stopped reading
            extractor._add_usage(paid)
        flow.close()
