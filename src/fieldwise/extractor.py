"""``Extractor``: request → parse → validate → re-ask, with cache, usage and cost.

The loop is written once, as a generator that yields request bodies and receives
responses (``_flow``); ``run`` drives it with the sync transport, ``arun`` with the async
one, and ``stream`` with the streaming one. So there is one code path for every rule,
and neither shell pays for the other (no event loop per sync call).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import endpoints
from ._retry import MAX_RETRY_AFTER
from .batch import AsyncBatch, BatchSummary
from .cache import CacheMode, CacheUnavailable, ResultCache, request_key
from .chunking import Chunk, combine_results, split_document
from .consistency import sample_plan, vote
from .document import Document
from .exceptions import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    FieldwiseError,
    redact,
)
from .loop import (
    LOOKUP_FAILED,
    Call,
    LoopSettings,
    cached_result,
    extraction_flow,
    result_from_cache,
)
from .pricing import PriceBook, Prices
from .prompt import Input, Mode, build_body, build_messages, input_text
from .ratelimit import RateLimiter
from .responses import ChatResponse
from .result import Result, Usage
from .schema import compile_schema
from .streaming import astream_values, stream_values
from .sync_batch import Batch

if TYPE_CHECKING:
    from .transport import Transport

T = TypeVar("T")
logger = logging.getLogger("fieldwise")
_MODES = ("json_schema", "json_object", "tools")


class Extractor:
    """Fills pydantic models from text with a language model.

    ``model``/``base_url`` default to ``FIELDWISE_MODEL``/``FIELDWISE_BASE_URL``, then
    OpenRouter's ``qwen/qwen3.5-flash-02-23`` when ``OPENROUTER_API_KEY`` is set, then an
    installed offline backend (``model="local"``). ``api_key=None`` reads
    ``OPENROUTER_API_KEY`` for OpenRouter and ``OPENAI_API_KEY`` for any other endpoint
    (a key is never sent to the other service). ``max_retries`` bounds re-asks on invalid
    output; ``network_retries`` bounds retries of 408/409/429/5xx/timeouts, which never
    reach the prompt.
    ``cache``: ``True`` read+write, ``False`` off, ``"refresh"`` write only,
    ``"read_only"`` read only.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        max_retries: int = 2,
        temperature: float = 0.0,
        seed: int | None = 0,
        cache: CacheMode = True,
        timeout: float = 60.0,
        reasoning: str | dict[str, Any] | bool | None = None,
        provider: dict[str, Any] | None = None,
        instructions: str | None = None,
        mode: Mode = "json_schema",
        network_retries: int = 2,
        cache_dir: str | None = None,
        prices: Prices | None = None,
        max_tokens: int | None = None,
        max_chars: int | None = None,
        grounding: bool = False,
        samples: int = 1,
        top_p: float | None = None,
        profile: str | None = None,
        backoff_base: float = 0.5,
        rate_limit: float | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        if mode not in _MODES:
            raise ConfigurationError(f"mode={mode!r}: use one of {', '.join(_MODES)}.")
        if max_retries < 0 or network_retries < 0:
            raise ConfigurationError("max_retries and network_retries must be >= 0.")
        if cache not in (True, False, "refresh", "read_only"):
            raise ConfigurationError("cache= must be True, False, 'refresh' or 'read_only'.")
        if not max_retry_after >= 0:  # NaN too
            raise ConfigurationError("max_retry_after must be a number of seconds >= 0.")
        self._settings = endpoints.resolve_endpoint(model, base_url, api_key, profile)
        self.max_retries = max_retries
        self.temperature = temperature
        self.seed = seed
        self.cache_mode: CacheMode = cache
        self.timeout = timeout
        self.reasoning = reasoning
        self.provider = provider
        self.instructions = instructions
        self.mode: Mode = mode
        self.network_retries = network_retries
        self.max_tokens = max_tokens
        if max_chars is not None and max_chars < 100:
            raise ConfigurationError("max_chars must be at least 100 characters.")
        self.max_chars = max_chars
        self.grounding = grounding
        if samples < 1:
            raise ConfigurationError("samples must be >= 1.")
        self.samples = samples
        self.top_p = top_p
        self._backoff_base = backoff_base
        #: the longest Retry-After waited for (a call, a batch); a longer one fails the call
        self.max_retry_after = max_retry_after
        self._limiter = RateLimiter(rate_limit) if rate_limit else None
        self._cache_dir = cache_dir
        self._cache: ResultCache | None = None
        self._cache_unusable = False
        self._transport: Transport | None = None
        self._retired: list[Transport] = []  # replaced by a backend's new server; closed last
        self._prices = PriceBook(prices, fetch_models=self._fetch_models, store=self._disk)
        self._lock = threading.Lock()
        self._usage = Usage()
        # A backend's real model name is known only once its server runs; requests (and
        # cache keys) name the backend until then, and _wire() swaps the name in.
        self._request_model = self._settings.backend or self._settings.model
        # Cache keys name the endpoint stably: a backend's server gets a new port each run.
        self._endpoint_id = endpoints.endpoint_identity(self._settings)
        price = endpoints.backend_price(self._settings)
        if price is not None and self._settings.backend:  # known before any server starts
            self._prices.know(self._settings.backend, price)
        if self._settings.backend is None:
            endpoints.apply_profile(
                {}, self._settings.profile, reasoning=reasoning, provider=provider
            )

    # -- settings ------------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self._settings.model

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def usage(self) -> Usage:
        """Totals over every call this extractor made (cache hits add nothing)."""
        return self._usage

    def __repr__(self) -> str:
        return f"Extractor(model={self.model!r}, base_url={redact(self.base_url)!r})"

    def _transport_for_use(self, gone: Transport | None = None) -> Transport:
        """The transport, made on first use (a backend's server starts then).

        ``gone``: a transport whose backend server stopped answering (the plugin stopped
        it, e.g. to apply new settings). The backend is resolved again, and a new
        transport made when its server now listens elsewhere; when it resolves to the
        same place, ``gone`` is returned (there is nothing newer to try).
        """
        transport = self._transport
        if transport is None or transport is gone:
            with self._lock:
                if self._transport is None or self._transport is gone:
                    settings = endpoints.resolve_backend(self._settings)
                    endpoints.require_key(settings)
                    if self._transport is None or settings != self._settings:
                        from .transport import Transport  # loads the HTTP library: not before

                        if self._transport is not None:  # other calls may still hold it
                            self._retired.append(self._transport)
                        self._transport = Transport(
                            settings.base_url,
                            settings.api_key,
                            timeout=self.timeout,
                            network_retries=self.network_retries,
                            headers=endpoints.profile_headers(settings.profile),
                            backoff_base=self._backoff_base,
                            max_retry_after=self.max_retry_after,
                            openrouter=settings.profile == "openrouter",
                        )
                        self._settings = settings
                        if settings.price is not None:  # under both names the calls use
                            for name in (settings.model, settings.backend):
                                if name:
                                    self._prices.know(name, settings.price)
                transport = self._transport
        return transport

    def _server_gone(self, error: FieldwiseError) -> bool:
        """Whether ``error`` says a backend's server is no longer there (refused or dropped
        connections; a timeout only says it is slow), so resolving it again may help."""
        return (
            self._settings.backend is not None
            and isinstance(error, APIConnectionError)
            and not isinstance(error, APITimeoutError)
        )

    def _result_cache(self) -> ResultCache | None:
        """The answers' cache, or None: off, or its directory cannot be used (then every
        call is made, with one warning; an unusable cache never costs an answer)."""
        if self.cache_mode is False or self._cache_unusable:
            return None
        try:
            return self._disk()
        except CacheUnavailable as exc:
            self._cache_unusable = True
            logger.warning("%s; going on without a cache", exc)
            return None

    def _disk(self) -> ResultCache:
        """The cache directory (answers, and side data such as price lists)."""
        if self._cache is None:
            with self._lock:
                if self._cache is None:
                    self._cache = ResultCache(self._cache_dir)
        return self._cache

    def _fetch_models(self) -> Any:
        if self._settings.profile != "openrouter" or self._transport is None:
            return None
        return self._transport.get_json("/models")

    # -- building a request ----------------------------------------------------------------

    def _prepare(
        self,
        data: Input,
        target: Any,
        instructions: str | None,
        examples: Sequence[tuple[Any, Any]] | None,
        seed: int | None,
        temperature: float | None = None,
    ) -> Call:
        compiled = compile_schema(target)
        messages = build_messages(
            data,
            compiled,
            mode=self.mode,
            instructions=self.instructions if instructions is None else instructions,
            examples=examples,
        )
        body = build_body(
            compiled,
            messages,
            model=self._request_model,
            mode=self.mode,
            temperature=self.temperature if temperature is None else temperature,
            seed=self.seed if seed is None else seed,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
        )
        endpoints.apply_profile(
            body, self._settings.profile, reasoning=self.reasoning, provider=self.provider
        )
        variant = f"{compiled.fingerprint}:{self.mode}:{int(self.grounding)}"
        key = "" if self.cache_mode is False else request_key(body, self._endpoint_id, variant)
        return Call(compiled, body, key, input_text(data) if self.grounding else None)

    def _loop_settings(self) -> LoopSettings:
        return LoopSettings(
            mode=self.mode,
            max_retries=self.max_retries,
            cache=self._result_cache(),
            cache_mode=self.cache_mode,
            prices=self._prices,
            model=self._settings.model,
            on_usage=self._add_usage,
            grounding=self.grounding,
        )

    def _flow(
        self, call: Call, *, cache_checked: bool = False
    ) -> Generator[dict[str, Any], ChatResponse, Result[Any]]:
        return extraction_flow(call, self._loop_settings(), cache_checked=cache_checked)

    def _single_call(self, data: Input, target: Any, options: CallOptions) -> Call | None:
        """The prepared call when ``data``'s extraction is one call whose answer the cache
        may hold; None when it is not (samples, chunks) or the cache is not read."""
        if self.samples > 1 or self.cache_mode not in (True, "read_only"):
            return None
        if self._chunks(data) is not None or self._result_cache() is None:
            return None  # (the cache directory may have turned out unusable)
        return self._prepare(data, target, *options)

    def _lookup(
        self, data: Input, target: Any, options: CallOptions
    ) -> tuple[Call, Result[Any] | None] | None:
        """For batches: a single call's cached result without an event-loop task, and the
        prepared call to reuse on a miss (None: see ``_single_call``)."""
        call = self._single_call(data, target, options)
        return None if call is None else (call, cached_result(call, self._loop_settings()))

    def _lookup_many(self, inputs: Sequence[Input], target: Any, options: CallOptions) -> list[Any]:
        """``_lookup`` for each input, reading the cache once for all of them (a warm
        batch is bound by its lookups). An input whose preparation raised gets
        ``LOOKUP_FAILED`` instead (its own call will raise it again)."""
        found: list[Call | object | None] = []
        for data in inputs:
            try:
                found.append(self._single_call(data, target, options))
            except Exception:  # a bad input fails its own item later, never the batch
                found.append(LOOKUP_FAILED)
        calls = [item for item in found if isinstance(item, Call)]
        if not calls:
            return found
        settings = self._loop_settings()
        assert settings.cache is not None  # a call was prepared: the cache is read
        hits = iter(settings.cache.get_many([call.key for call in calls]))
        return [
            (item, result_from_cache(item, settings, next(hits)))
            if isinstance(item, Call)
            else item
            for item in found
        ]

    def _add_usage(self, usage: Usage) -> None:
        if usage.requests:
            with self._lock:
                self._usage = self._usage + usage

    # -- the shells ---------------------------------------------------------------------------

    @overload
    def run(
        self,
        data: Input,
        target: type[T],
        *,
        instructions: str | None = None,
        examples: Sequence[tuple[Any, Any]] | None = None,
        seed: int | None = None,
    ) -> Result[T]: ...
    @overload
    def run(
        self,
        data: Input,
        target: Any,
        *,
        instructions: str | None = None,
        examples: Sequence[tuple[Any, Any]] | None = None,
        seed: int | None = None,
    ) -> Result[Any]: ...
    def run(
        self,
        data: Input,
        target: Any,
        *,
        instructions: str | None = None,
        examples: Sequence[tuple[Any, Any]] | None = None,
        seed: int | None = None,
    ) -> Result[Any]:
        """Extract ``target`` from ``data``; the value plus usage, cost and attempts.

        A ``Document`` longer than ``max_chars`` is split along page and paragraph
        boundaries and the chunks' values merged (``Result.conflicts``); with
        ``samples=k`` the value is a per-field vote of k samples (``Result.confidence``).
        """
        units, combine = self._plan(data, target, seed)
        return combine(
            [self._run_one(piece, target, instructions, examples, s, t) for piece, s, t in units]
        )

    def _plan(
        self, data: Input, target: Any, seed: int | None
    ) -> tuple[
        list[tuple[Input, int | None, float | None]], Callable[[list[Result[Any]]], Result[Any]]
    ]:
        """The single calls one extraction needs — each chunk of a long document times each
        sample — and how to combine their results (vote per chunk, then merge chunks)."""
        chunks = self._chunks(data)
        pieces: list[Input] = [c.text for c in chunks] if chunks is not None else [data]
        plan: list[tuple[int | None, float | None]] = [(seed, None)]
        if self.samples > 1:
            plan = list(
                sample_plan(self.samples, self.seed if seed is None else seed, self.temperature)
            )
        units = [(piece, s, t) for piece in pieces for s, t in plan]
        k = len(plan)

        def combine(results: list[Result[Any]]) -> Result[Any]:
            groups = [results[i : i + k] for i in range(0, len(results), k)]
            merged = [vote(group, target) if k > 1 else group[0] for group in groups]
            if chunks is None:
                return merged[0]
            whole = data.text if self.grounding and isinstance(data, Document) else None
            return combine_results(merged, target, whole)

        return units, combine

    def _run_one(
        self,
        data: Input,
        target: type[T],
        instructions: str | None,
        examples: Sequence[tuple[Any, Any]] | None,
        seed: int | None,
        temperature: float | None,
    ) -> Result[T]:
        call = self._prepare(data, target, instructions, examples, seed, temperature)
        flow = self._flow(call)
        try:
            body = next(flow)
            transport = self._transport_for_use()
            reconnected = False
            while True:
                if self._limiter is not None:
                    self._limiter.wait_sync()
                try:
                    response = transport.chat(self._wire(body))
                except FieldwiseError as exc:
                    if not reconnected and self._server_gone(exc):
                        reconnected = True
                        fresh = self._transport_for_use(gone=transport)
                        if fresh is not transport:  # the backend's new server: ask it
                            transport = fresh
                            continue
                    flow.throw(exc)  # notes what was paid on the error, and raises it
                    raise
                body = flow.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()  # on a network error: count the usage of earlier attempts now

    @overload
    async def arun(
        self,
        data: Input,
        target: type[T],
        *,
        instructions: str | None = None,
        examples: Sequence[tuple[Any, Any]] | None = None,
        seed: int | None = None,
    ) -> Result[T]: ...
    @overload
    async def arun(
        self,
        data: Input,
        target: Any,
        *,
        instructions: str | None = None,
        examples: Sequence[tuple[Any, Any]] | None = None,
        seed: int | None = None,
    ) -> Result[Any]: ...
    async def arun(
        self,
        data: Input,
        target: Any,
        *,
        instructions: str | None = None,
        examples: Sequence[tuple[Any, Any]] | None = None,
        seed: int | None = None,
    ) -> Result[Any]:
        """``run``, without blocking the event loop (chunks and samples run concurrently)."""
        return await self._arun(data, target, instructions, examples, seed, self._limiter)

    async def _arun(
        self,
        data: Input,
        target: type[T],
        instructions: str | None,
        examples: Sequence[tuple[Any, Any]] | None,
        seed: int | None,
        limiter: RateLimiter | None,
    ) -> Result[T]:
        units, combine = self._plan(data, target, seed)
        if len(units) == 1:  # the common case: no gather, no extra task
            piece, s, t = units[0]  # a long document may be one chunk (the rest blank)
            result = await self._arun_one(piece, target, instructions, examples, s, t, limiter)
            return combine([result])
        results = await asyncio.gather(
            *(
                self._arun_one(piece, target, instructions, examples, s, t, limiter)
                for piece, s, t in units
            )
        )
        return combine(list(results))

    async def _arun_one(
        self,
        data: Input,
        target: type[T],
        instructions: str | None,
        examples: Sequence[tuple[Any, Any]] | None,
        seed: int | None,
        temperature: float | None,
        limiter: RateLimiter | None,
        call: Call | None = None,
    ) -> Result[T]:
        """One call; ``call``: already prepared and already looked up in the cache."""
        cache_checked = call is not None
        if call is None:
            call = self._prepare(data, target, instructions, examples, seed, temperature)
        flow = self._flow(call, cache_checked=cache_checked)
        try:
            body = next(flow)
            transport = self._transport
            if transport is None:  # a backend may start a server: not on the event loop
                transport = await asyncio.to_thread(self._transport_for_use)
            reconnected = False
            while True:
                if limiter is not None:
                    await limiter.wait()
                try:
                    response = await transport.achat(self._wire(body))
                    if self._prices.needs_remote(self._settings.model, response.usage):
                        await asyncio.to_thread(self._prices.load_remote)  # once, off the loop
                except FieldwiseError as exc:
                    if not reconnected and self._server_gone(exc):
                        reconnected = True
                        fresh = await asyncio.to_thread(self._transport_for_use, transport)
                        if fresh is not transport:  # the backend's new server: ask it
                            transport = fresh
                            continue
                    flow.throw(exc)  # notes what was paid on the error, and raises it
                    raise
                body = flow.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()  # on a network error: count the usage of earlier attempts now

    def _chunks(self, data: Input) -> list[Chunk] | None:
        if self.max_chars is None or not isinstance(data, Document):
            return None
        if len(data.text) <= self.max_chars:
            return None
        # Blank text yields no chunks: sent whole, as a short blank document would be.
        return split_document(data, self.max_chars) or None

    @overload
    def extract(self, data: Input, target: type[T], **options: Any) -> T: ...
    @overload
    def extract(self, data: Input, target: Any, **options: Any) -> Any: ...
    def extract(self, data: Input, target: Any, **options: Any) -> Any:
        """The validated value alone."""
        return self.run(data, target, **options).value

    @overload
    async def aextract(self, data: Input, target: type[T], **options: Any) -> T: ...
    @overload
    async def aextract(self, data: Input, target: Any, **options: Any) -> Any: ...
    async def aextract(self, data: Input, target: Any, **options: Any) -> Any:
        return (await self.arun(data, target, **options)).value

    def _wire(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["model"] == self._settings.model:
            return body
        return {**body, "model": self._settings.model}

    def _stream_body(self, body: dict[str, Any]) -> dict[str, Any]:
        streamed = {**self._wire(body), "stream": True}
        if self._settings.profile == "openai":
            streamed["stream_options"] = {"include_usage": True}
        return streamed

    def stream(self, data: Input, target: Any, **options: Any) -> Iterator[Any]:
        """Yield partial values while the answer streams in, then the validated value.

        Partials have the target's kind: for a model, instances of a copy of it whose
        fields are all optional; for ``list[Model]`` or ``dict[str, Model]``, lists or
        mappings of those; for an enum, ``Literal``, date or other single value, that value
        once complete. A partial never shows a value the answer does not have (a date,
        enum or number still being written is None until complete; a union waits for its
        tag), and each differs from the one before. After a re-ask (the answer failed
        validation) the partials start again from the new answer. The last item is a
        real, validated ``target`` instance.
        """
        self._check_streamable(data)
        return stream_values(self, self._prepare(data, target, *call_options(options)))

    def astream(self, data: Input, target: Any, **options: Any) -> AsyncIterator[Any]:
        """``stream`` for async code."""
        self._check_streamable(data)
        return astream_values(self, self._prepare(data, target, *call_options(options)))

    def _check_streamable(self, data: Input) -> None:
        """A stream is one call: refuse what ``run`` would make several of, rather than
        send a long document whole or drop the samples silently."""
        if self.samples > 1:
            raise ConfigurationError(
                f"stream() makes one call, and samples={self.samples} needs a vote over "
                "several: use run() (or an Extractor without samples=) to stream."
            )
        if self._chunks(data) is not None:
            raise ConfigurationError(
                f"this document is longer than max_chars={self.max_chars}, so it is "
                "extracted in chunks, which stream() cannot do in one call: use run(), or "
                "raise max_chars= if the model's context holds it."
            )

    def request_body(
        self, data: Input, target: Any, *, instructions: str | None = None
    ) -> dict[str, Any]:
        """The body the first request for ``data`` would send (for dry runs; no call)."""
        return dict(self._prepare(data, target, instructions, None, None).body)

    def estimate_cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for that many tokens at this model's known price, or None when unknown."""
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        return self._prices.cost(self.model, usage)

    def check(self) -> Any:
        """Ask the endpoint for its model list: proves it is reachable and the key accepted.
        Raises the same typed errors as an extraction."""
        return self._transport_for_use().get_json("/models")

    async def acheck(self) -> Any:
        """``check`` for async code (a backend's server starts off the event loop)."""
        transport = self._transport
        if transport is None:
            transport = await asyncio.to_thread(self._transport_for_use)
        return await transport.aget_json("/models")

    # -- batches ------------------------------------------------------------------------------

    @overload
    def arun_many(
        self,
        inputs: Iterable[Input],
        target: type[T],
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        max_cost: float | None = None,
        on_progress: Callable[[BatchSummary], None] | None = None,
        **options: Any,
    ) -> AsyncBatch[T]: ...
    @overload
    def arun_many(
        self,
        inputs: Iterable[Input],
        target: Any,
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        max_cost: float | None = None,
        on_progress: Callable[[BatchSummary], None] | None = None,
        **options: Any,
    ) -> AsyncBatch[Any]: ...
    def arun_many(
        self,
        inputs: Iterable[Input],
        target: Any,
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        max_cost: float | None = None,
        on_progress: Callable[[BatchSummary], None] | None = None,
        **options: Any,
    ) -> AsyncBatch[Any]:
        """Extract from many inputs; ``async for item in ...`` yields them in input order."""
        return AsyncBatch(
            self,
            inputs,
            target,
            concurrency=concurrency,
            rate_limit=rate_limit,
            max_cost=max_cost,
            on_progress=on_progress,
            options=options,
        )

    @overload
    def run_many(
        self,
        inputs: Iterable[Input],
        target: type[T],
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        max_cost: float | None = None,
        on_progress: Callable[[BatchSummary], None] | None = None,
        **options: Any,
    ) -> Batch[T]: ...
    @overload
    def run_many(
        self,
        inputs: Iterable[Input],
        target: Any,
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        max_cost: float | None = None,
        on_progress: Callable[[BatchSummary], None] | None = None,
        **options: Any,
    ) -> Batch[Any]: ...
    def run_many(
        self,
        inputs: Iterable[Input],
        target: Any,
        *,
        concurrency: int = 16,
        rate_limit: float | None = None,
        max_cost: float | None = None,
        on_progress: Callable[[BatchSummary], None] | None = None,
        **options: Any,
    ) -> Batch[Any]:
        """``arun_many`` for sync code: iterate the returned ``Batch``; ``.summary`` after."""
        return Batch(
            self.arun_many(
                inputs,
                target,
                concurrency=concurrency,
                rate_limit=rate_limit,
                max_cost=max_cost,
                on_progress=on_progress,
                **options,
            )
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections and the cache."""
        for transport in self._retired:
            transport.close()
        if self._transport is not None:
            self._transport.close()
        if self._cache is not None:  # a later call opens it again (its answers kept)
            self._cache.close()
            self._cache = None

    async def aclose(self) -> None:
        for transport in self._retired:
            await transport.aclose()
        if self._transport is not None:
            await self._transport.aclose()
        if self._cache is not None:  # a later call opens it again (its answers kept)
            self._cache.close()
            self._cache = None

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Extractor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


#: the keyword options that apply to one call rather than configure an ``Extractor``
CALL_OPTIONS = frozenset({"instructions", "examples", "seed"})


#: ``(instructions, examples, seed)``: a batch's per-call options
CallOptions = tuple[str | None, Sequence[tuple[Any, Any]] | None, int | None]


def call_options(options: dict[str, Any]) -> CallOptions:
    """``(instructions, examples, seed)`` from per-call keywords; unknown ones raise."""
    unknown = set(options) - CALL_OPTIONS
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return options.get("instructions"), options.get("examples"), options.get("seed")
