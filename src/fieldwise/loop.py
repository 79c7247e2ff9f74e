"""The extraction loop: request → parse → validate → re-ask, with cache and usage.

Written once, as a generator that yields request bodies and is sent the responses, so
the sync, async and streaming shells in ``extractor.py`` drive the very same rules and
neither pays for the other (no event loop per sync call, no thread per async call).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .answers import answer_text, decode_answer, summarise_errors, tool_call_id
from .cache import CachedAnswer, CacheMode, ResultCache
from .exceptions import Attempt, ExtractionError, FieldwiseError
from .grounding import check_grounding, grounding_reask
from .pricing import PriceBook
from .prompt import Mode, reask_messages, reask_text
from .responses import ChatResponse
from .result import Result, Usage
from .schema import CompiledSchema


@dataclass(slots=True)  # made per call: a frozen __init__ costs ~1 µs more
class Call:
    """One prepared extraction: the compiled target, the first request, its cache key."""

    compiled: CompiledSchema[Any]
    body: dict[str, Any]
    key: str
    #: the input's text, for the grounding check (None: not checked)
    text: str | None = None


@dataclass(slots=True)  # made per call: a frozen __init__ costs ~1 µs more
class LoopSettings:
    mode: Mode
    max_retries: int
    cache: ResultCache | None
    cache_mode: CacheMode
    prices: PriceBook
    model: str
    on_usage: Callable[[Usage], None]
    grounding: bool = False


#: ``Extractor._lookup_many``'s answer for an input whose preparation raised
LOOKUP_FAILED: Any = object()

#: When set (in the caller's context, which tasks inherit), also told the usage of every
#: call that ends here, answered, failed or abandoned: an extraction cancelled by a
#: timeout raises no error that could carry what its earlier attempts were paid for (the
#: service's 504 logs it from here).
usage_sink: ContextVar[Callable[[Usage], None] | None] = ContextVar(
    "fieldwise_usage_sink", default=None
)


def cached_result(call: Call, settings: LoopSettings) -> Result[Any] | None:
    """The cached answer for ``call`` as a ``Result`` (``cached=True``, cost 0), or None."""
    if settings.cache is None or settings.cache_mode not in (True, "read_only"):
        return None
    return result_from_cache(call, settings, settings.cache.get(call.key))


def result_from_cache(
    call: Call, settings: LoopSettings, hit: CachedAnswer | None
) -> Result[Any] | None:
    """``hit`` (the cached answer read for ``call``) as a ``Result``, or None."""
    if hit is None:
        return None
    value, _, errors = decode_answer(call.compiled, hit.raw)
    if errors:  # e.g. the model class changed its validators since: ask again
        return None
    evidence, ungrounded = (
        check_grounding(value, call.text or "") if _grounded(call, settings) else ({}, {})
    )
    return Result(
        value=value,
        usage=Usage(cost=0.0),  # nothing was spent: known to be free
        cost=0.0,
        attempts=hit.attempts,
        cached=True,
        model=hit.model,
        provider=hit.provider,
        repairs=list(hit.repairs),
        raw=hit.raw,
        evidence=evidence,
        ungrounded=ungrounded,
        original_usage=_original_usage(hit),
    )


def _original_usage(hit: CachedAnswer) -> Usage | None:
    """What the cached answer cost when it was made (its stored ``Usage.to_dict()``)."""
    try:
        return Usage(**hit.usage)
    except TypeError:  # stored by another version, with other fields
        return None


def _grounded(call: Call, settings: LoopSettings) -> bool:
    return settings.grounding and call.text is not None


def extraction_flow(
    call: Call, settings: LoopSettings, *, cache_checked: bool = False
) -> Generator[dict[str, Any], ChatResponse, Result[Any]]:
    """Yield request bodies; be sent each response; return the ``Result`` or raise.
    ``cache_checked``: the caller already looked the call up and missed."""
    cached = None if cache_checked else cached_result(call, settings)
    if cached is not None:
        return cached
    body = call.body
    usage = Usage()
    failed: list[Attempt] = []
    try:
        for attempt in range(1, settings.max_retries + 2):
            try:
                response = yield body
            except FieldwiseError as exc:  # the caller's request failed (API, network)
                if usage.requests and exc.usage is None:
                    exc.usage = usage  # earlier answers of this call were paid for
                raise
            step = Usage.from_response(response.usage)
            step.cost = settings.prices.cost(settings.model, response.usage)
            usage = usage + step
            text = answer_text(response, settings.mode, usage)
            value, repairs, errors = decode_answer(call.compiled, text)
            evidence: dict[str, tuple[int, int]] = {}
            ungrounded: dict[str, str] = {}
            if not errors and _grounded(call, settings):
                evidence, ungrounded = check_grounding(value, call.text or "")
                if ungrounded and attempt <= settings.max_retries:
                    failed.append(Attempt(text, _ungrounded_errors(ungrounded)))
                    body = _reask(body, call, settings, response, text, grounding_reask(ungrounded))
                    continue
            if not errors:
                model = response.model or settings.model
                if settings.cache is not None and settings.cache_mode in (True, "refresh"):
                    answer = CachedAnswer(
                        text,
                        usage.to_dict(),
                        usage.cost,
                        model,
                        response.provider,
                        tuple(repairs),
                        attempt,
                    )
                    settings.cache.set(call.key, answer)
                return Result(
                    value=value,
                    usage=usage,
                    cost=usage.cost,
                    attempts=attempt,
                    cached=False,
                    model=model,
                    provider=response.provider,
                    repairs=repairs,
                    raw=text,
                    evidence=evidence,
                    ungrounded=ungrounded,
                )
            failed.append(Attempt(text, errors))
            body = _reask(body, call, settings, response, text, reask_text(errors))
        raise ExtractionError(
            f"The model's output failed validation {len(failed)} time(s); the last "
            f"errors: {summarise_errors(failed[-1].errors)}. Raise max_retries=, add "
            "instructions= or examples=, or use a stronger model.",
            attempts=failed,
            usage=usage,
        )
    finally:
        settings.on_usage(usage)
        sink = usage_sink.get()
        if sink is not None and usage.requests:
            sink(usage)


def _ungrounded_errors(ungrounded: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "type": "ungrounded",
            "loc": (path,),
            "msg": "value does not occur in the input",
            "input": value,
        }
        for path, value in ungrounded.items()
    ]


def _reask(
    body: dict[str, Any],
    call: Call,
    settings: LoopSettings,
    response: ChatResponse,
    answer: str,
    feedback: str,
) -> dict[str, Any]:
    """The next request: the same body with the answer and the feedback appended (a new
    dict and list each time: the caller's objects are never mutated)."""
    call_id = tool_call_id(response) if settings.mode == "tools" else None
    reask = reask_messages(
        settings.mode, answer, feedback, tool_name=call.compiled.name, tool_call_id=call_id
    )
    return {**body, "messages": body["messages"] + reask}
