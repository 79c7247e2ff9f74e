"""Turning a stream of chunks into partial values and, at the end, one response.

A partial value is an instance of a *partial model*: a copy of the target model whose
fields are all optional and unconstrained (a half-written string must not fail a
``min_length``), built once per class. The final value is validated by the real model in
the extraction loop, like any other answer.
"""

from __future__ import annotations

import asyncio
import threading
import types
import typing
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ._sse import ChatChunk
from .responses import ChatResponse
from .schema import CompiledSchema

if TYPE_CHECKING:
    from .extractor import Extractor
    from .loop import Call

_partials: dict[type[BaseModel], type[BaseModel]] = {}
_building: set[type[BaseModel]] = set()
_lock = threading.RLock()


def _partial_annotation(tp: Any) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return partial_model(tp) if tp not in _building else Any
    origin = get_origin(tp)
    if origin is Annotated:
        return _partial_annotation(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return Union[tuple(_partial_annotation(a) for a in get_args(tp))]  # noqa: UP007
    if origin in (list, set, frozenset, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        item = Union[tuple(_partial_annotation(a) for a in args)] if args else Any  # noqa: UP007
        return list[item]  # type: ignore[valid-type]
    if origin is typing.Literal:
        return tp
    return tp


def partial_model(cls: type[BaseModel]) -> type[BaseModel]:
    """The all-optional twin of ``cls`` (cached)."""
    with _lock:
        found = _partials.get(cls)
        if found is not None:
            return found
        _building.add(cls)
        try:
            fields: dict[str, Any] = {}
            for name, info in cls.model_fields.items():
                annotation = _partial_annotation(info.annotation)
                fields[name] = (annotation | None, Field(default=None, alias=info.alias))
            model: type[BaseModel] = create_model(
                f"Partial{cls.__name__}",
                __config__=ConfigDict(populate_by_name=True),
                **fields,
            )
        finally:
            _building.discard(cls)
        _partials[cls] = model
        return model


class StreamAssembler:
    """Collects chunks; ``feed`` returns a new partial value when the answer grew one."""

    def __init__(self, compiled: CompiledSchema[Any], *, tools: bool) -> None:
        self._compiled = compiled
        self._tools = tools
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._last: Any = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.provider: str | None = None
        target = compiled.target
        self._partial = (
            partial_model(target)
            if isinstance(target, type) and issubclass(target, BaseModel)
            else None
        )

    def feed(self, chunk: ChatChunk) -> Any:
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
        if not piece:
            return None
        self._text.append(piece)
        try:
            obj = pydantic_core.from_json("".join(self._text), allow_partial="trailing-strings")
        except ValueError:
            return None
        if obj == self._last:
            return None
        self._last = obj
        if self._compiled.wrapped:
            return obj.get("value") if isinstance(obj, dict) else None
        if self._partial is None:
            return obj
        try:
            return self._partial.model_validate(obj)
        except ValidationError:
            return None

    def response(self) -> ChatResponse:
        text = "".join(self._text)
        return ChatResponse(
            content=None if self._tools else text,
            reasoning="".join(self._reasoning) or None,
            refusal="".join(self._refusal) or None,
            tool_arguments=text if self._tools else None,
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=self.model,
            provider=self.provider,
            id=None,
            raw={},
        )


def stream_values(extractor: Extractor, call: Call) -> Iterator[Any]:
    """Drive the extraction loop with the streaming transport (sync)."""
    flow = extractor._flow(call)
    tools = extractor.mode == "tools"
    try:
        body = next(flow)
        transport = extractor._transport_for_use()
        while True:
            if extractor._limiter is not None:
                extractor._limiter.wait_sync()
            assembler = StreamAssembler(call.compiled, tools=tools)
            for chunk in transport.stream(extractor._stream_body(body)):
                partial = assembler.feed(chunk)
                if partial is not None:
                    yield partial
            body = flow.send(assembler.response())
    except StopIteration as done:
        yield done.value.value
    finally:
        flow.close()


async def astream_values(extractor: Extractor, call: Call) -> AsyncIterator[Any]:
    """Drive the extraction loop with the streaming transport (async)."""
    flow = extractor._flow(call)
    tools = extractor.mode == "tools"
    try:
        body = next(flow)
        transport = extractor._transport
        if transport is None:  # a backend may start a server: not on the event loop
            transport = await asyncio.to_thread(extractor._transport_for_use)
        while True:
            if extractor._limiter is not None:
                await extractor._limiter.wait()
            assembler = StreamAssembler(call.compiled, tools=tools)
            async for chunk in transport.astream(extractor._stream_body(body)):
                partial = assembler.feed(chunk)
                if partial is not None:
                    yield partial
            body = flow.send(assembler.response())
    except StopIteration as done:
        yield done.value.value
    finally:
        flow.close()
