"""``Transport``: chat-completions over pooled HTTP clients, with network retries and SSE.

Why it is separate from the extractor: everything here is about getting *an* answer through
the network (connection reuse, timeouts, 429/5xx retries with backoff, typed errors); nothing
here reads message content, so a re-ask never mixes with a network retry. The sync path runs on
httpx clients (``_pool``), the async path on aiohttp (``_async_http``, chosen for its CPU per
request under concurrency, and imported on the first async call); both are thin loops over
the same pure helpers: request encoding and answer parsing in ``responses``, retry decisions
and error mapping in ``_retry``, SSE framing in ``_sse``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from ._answer_size import AnswerBuffer, AnswerTooLarge
from ._pool import Shards, httpx_fault, shared_ssl_context
from ._retry import (
    MAX_RETRY_AFTER,
    Failure,
    RetryPolicy,
    failure_from_exception,
    failure_from_shape,
    failure_from_status,
)
from ._sse import ChatChunk, ChunkReader, LineSplitter
from .exceptions import ConfigurationError, redact, register_secret
from .responses import ChatResponse, encode_body, parse_json, parse_response

if TYPE_CHECKING:
    from ._async_http import Answer, AsyncHTTP

__all__ = ["ChatChunk", "ChatResponse", "Transport", "encode_body", "parse_response"]

logger = logging.getLogger("fieldwise.transport")
T = TypeVar("T")

# Per client: no connection cap, every connection kept alive (30 s idle). Concurrency is spread
# over several clients instead (``_pool``, which records the measurements behind this choice).
_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=None, keepalive_expiry=30)
_SSE_HEADERS = {"Accept": "text/event-stream"}


def _credentials_apart(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@``, and the Basic ``Authorization`` they make.

    A reverse proxy with basic auth in front of a local server is named like this. Both
    HTTP paths then send the same header to the same clean URL (httpx would send it from
    the URL by itself, aiohttp refuses a URL with credentials beside an ``Authorization``
    header), and the password is remembered as a secret that no message or log shows.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    register_secret(password if parts.password is not None else user)  # a token as user
    host = parts.netloc.rpartition("@")[2]
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    register_secret(token)
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


class Transport:
    """Pooled sync (httpx) and async (aiohttp) clients for one endpoint; safe to share across
    threads.

    Clients are made on first use and reused (keep-alive). Concurrent sync requests are spread
    over a few clients (see ``_pool``); async sessions are kept per running event loop, so
    ``asyncio.run`` may be called many times with the same ``Transport``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float | None = 60.0,
        network_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = MAX_RETRY_AFTER,
        openrouter: bool | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url must start with http:// or https://, got {redact(base_url)!r}"
            )
        register_secret(api_key)
        base_url, basic = _credentials_apart(base_url)
        self.base_url = base_url.rstrip("/")
        #: whose key and credits error advice names (None: as the URL's host says)
        self._openrouter = openrouter
        self.timeout = timeout
        self.network_retries = network_retries
        self._policy = RetryPolicy(network_retries, backoff_base, backoff_max, max_retry_after)
        sent = {"Accept": "application/json", "Content-Type": "application/json"}
        sent["User-Agent"] = "fieldwise"
        sent.update(headers or {})
        if api_key:
            sent["Authorization"] = f"Bearer {api_key}"
        if basic is not None:  # the URL's credentials win, as with curl and httpx
            sent["Authorization"] = basic
        self._headers = sent
        # A loopback server (a local model, a test fake) is never reached through the
        # proxy that HTTP_PROXY may name; anything else honours the environment.
        host = urlsplit(self.base_url).hostname
        self._trust_env = host not in ("127.0.0.1", "localhost", "::1")
        self._has_key = bool(api_key)
        self._connect_timeout = min(timeout, 10.0) if timeout is not None else None
        self._timeout = httpx.Timeout(timeout, connect=self._connect_timeout)
        self._chat_url = f"{self.base_url}/chat/completions"
        # httpx re-parses a str URL on every request (~12 µs each); parse each URL once.
        self._targets: dict[str, httpx.URL] = {}
        self._rng = random.Random()
        self._shards = Shards(self._new_client, per_shard=4, max_shards=32)
        self._async_http: AsyncHTTP | None = None  # made on the first async call
        self._async_lock = threading.Lock()

    def __repr__(self) -> str:
        key = "<set>" if self._has_key else None
        return (
            f"Transport(base_url={self.base_url!r}, api_key={key}, timeout={self.timeout!r}, "
            f"network_retries={self.network_retries})"
        )

    # -- clients ---------------------------------------------------------------------------

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            headers=self._headers,
            timeout=self._timeout,
            limits=_LIMITS,
            verify=shared_ssl_context(),
            trust_env=self._trust_env,
        )

    def _async(self) -> AsyncHTTP:
        http = self._async_http
        if http is None:
            with self._async_lock:
                if self._async_http is None:
                    from ._async_http import AsyncHTTP

                    self._async_http = AsyncHTTP(
                        self.base_url,
                        self._headers,
                        timeout=self.timeout,
                        connect_timeout=self._connect_timeout,
                        trust_env=self._trust_env,
                    )
                http = self._async_http
        return http

    def close(self) -> None:
        """Close the sync clients, and schedule closing async sessions on their live loops."""
        for client in self._shards.take_all():
            client.close()
        if self._async_http is not None:
            self._async_http.close()

    async def aclose(self) -> None:
        """Close this loop's async session now, and everything ``close`` closes."""
        if self._async_http is not None:
            await self._async_http.aclose()
        self.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- retries -----------------------------------------------------------------------------

    def _target(self, url: str) -> httpx.URL:
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = httpx.URL(url)
        return target

    def _url(self, path: str) -> str:
        return (
            path
            if path.startswith(("http://", "https://"))
            else f"{self.base_url}/{path.lstrip('/')}"
        )

    def _delay(self, failure: Failure, attempt: int) -> float:
        """Seconds to wait before the next attempt, or raise the final typed error."""
        delay = self._policy.delay(failure, attempt, self._rng)
        if delay is None:
            limit = (
                self._policy.max_retry_after if self._policy.too_long(failure, attempt) else None
            )
            error = failure.for_service(self._openrouter).error(attempt + 1, max_retry_after=limit)
            logger.debug("giving up: %s", error)
            raise error
        logger.info(
            "%s; retry %d of %d in %.2f s",
            redact(failure.message),
            attempt + 1,
            self._policy.retries,
            delay,
        )
        return delay

    def _outcome(
        self,
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        url: str,
        model: str | None,
        parse: Callable[[Any, str, str | None], T | Failure],
    ) -> T | Failure:
        if 200 <= status < 300:
            payload = parse_json(content, url)
            return payload if isinstance(payload, Failure) else parse(payload, url, model)
        return failure_from_status(
            status, headers, content, url=url, model=model, openrouter=self._openrouter
        )

    def _request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        model: str | None,
        parse: Callable[[Any, str, str | None], T | Failure],
    ) -> T:
        shards = self._shards
        attempt = 0
        while True:
            shard = shards.acquire()
            try:
                client = shards.clients[shard]
                with client.stream(method, self._target(url), content=content) as response:
                    body = _read(response)
            except (httpx.HTTPError, AnswerTooLarge) as exc:
                outcome: T | Failure = failure_from_exception(
                    exc, httpx_fault(exc), url=url, timeout=self.timeout
                )
            else:
                outcome = self._outcome(
                    response.status_code, response.headers, body, url, model, parse
                )
            finally:
                shards.release(shard)
            if not isinstance(outcome, Failure):
                return outcome
            time.sleep(self._delay(outcome, attempt))
            attempt += 1

    async def _arequest(
        self,
        method: str,
        url: str,
        content: bytes | None,
        model: str | None,
        parse: Callable[[Any, str, str | None], T | Failure],
    ) -> T:
        http = self._async()
        attempt = 0
        while True:
            try:
                answer = await http.request(method, url, content)
            except http.network_errors as exc:
                outcome: T | Failure = failure_from_exception(
                    exc, http.fault(exc), url=url, timeout=self.timeout
                )
            else:
                outcome = self._outcome(
                    answer.status, answer.headers, answer.content, url, model, parse
                )
            if not isinstance(outcome, Failure):
                return outcome
            await asyncio.sleep(self._delay(outcome, attempt))
            attempt += 1

    # -- public calls ------------------------------------------------------------------------

    def chat(self, body: Mapping[str, Any]) -> ChatResponse:
        """POST ``body`` to ``/chat/completions``; retries network failures, then raises."""
        return self._request("POST", self._chat_url, encode_body(body), _model(body), _chat)

    async def achat(self, body: Mapping[str, Any]) -> ChatResponse:
        """Async ``chat``."""
        client_body = encode_body(body)
        return await self._arequest("POST", self._chat_url, client_body, _model(body), _chat)

    def get_json(self, path: str) -> Any:
        """GET ``base_url/path`` (e.g. ``/models``) and return the parsed JSON."""
        return self._request("GET", self._url(path), None, None, _any)

    async def aget_json(self, path: str) -> Any:
        """Async ``get_json``."""
        return await self._arequest("GET", self._url(path), None, None, _any)

    def stream(self, body: Mapping[str, Any]) -> Iterator[ChatChunk]:
        """Stream a chat completion (``stream: true`` is set); yields one chunk per event.

        Failures before the first chunk are retried like ``chat``; once a chunk has been
        yielded a failure is raised at once (the caller already holds part of the answer).
        The body is read to its end after ``[DONE]`` so the connection can be reused.
        """
        content, model, url = _stream_body(body), _model(body), self._chat_url
        shards = self._shards
        attempt = 0
        while True:
            yielded = False
            failure: Failure | None = None
            shard = shards.acquire()
            try:
                client = shards.clients[shard]
                with client.stream(
                    "POST", self._target(url), content=content, headers=_SSE_HEADERS
                ) as response:
                    if response.status_code != 200:
                        failure = self._outcome(
                            response.status_code,
                            response.headers,
                            _read(response),
                            url,
                            model,
                            _never,
                        )
                    else:
                        reader = ChunkReader(url, model)
                        for event in _events(response, reader):
                            if isinstance(event, Failure):
                                failure = event
                                break
                            yielded = True
                            yield event
                        else:
                            failure = reader.unfinished()
            except (httpx.HTTPError, AnswerTooLarge) as exc:
                failure = failure_from_exception(
                    exc, httpx_fault(exc), url=url, timeout=self.timeout
                )
            finally:
                shards.release(shard)
            if failure is None:
                return
            if yielded:
                raise failure.for_service(self._openrouter).error(attempt + 1)
            time.sleep(self._delay(failure, attempt))
            attempt += 1

    async def astream(self, body: Mapping[str, Any]) -> AsyncIterator[ChatChunk]:
        """Async ``stream``."""
        content, model, url = _stream_body(body), _model(body), self._chat_url
        http = self._async()
        attempt = 0
        while True:
            yielded = False
            failure: Failure | None = None
            answer: list[Answer] = []
            try:
                reader = ChunkReader(url, model)
                lines = http.lines(url, content, _SSE_HEADERS, answer)
                async with contextlib.aclosing(lines):
                    async for line in lines:
                        event = reader.feed(line)
                        if isinstance(event, Failure):
                            failure = event
                            break
                        if event is not None:
                            yielded = True
                            yield event
                    else:
                        failure = None if answer else reader.unfinished()
                if answer:
                    first = answer[0]
                    failure = self._outcome(
                        first.status, first.headers, first.content, url, model, _never
                    )
            except http.network_errors as exc:
                failure = failure_from_exception(
                    exc, http.fault(exc), url=url, timeout=self.timeout
                )
            if failure is None:
                return
            if yielded:
                raise failure.for_service(self._openrouter).error(attempt + 1)
            await asyncio.sleep(self._delay(failure, attempt))
            attempt += 1


def _read(response: httpx.Response) -> bytes:
    """The whole body, up to ``MAX_ANSWER_BYTES`` (``response.read()`` has no limit)."""
    buffer = AnswerBuffer()
    for chunk in response.iter_bytes():
        buffer.add(chunk)
    return buffer.content()


def _events(response: httpx.Response, reader: ChunkReader) -> Iterator[ChatChunk | Failure]:
    """A 200 stream's chunks, and a ``Failure`` where an event reports one (the caller
    stops there)."""
    splitter = LineSplitter()
    for data in response.iter_bytes():
        for line in splitter.feed(data):
            event = reader.feed(line)
            if event is not None:
                yield event
    for line in splitter.end():
        event = reader.feed(line)
        if event is not None:
            yield event


def _model(body: Mapping[str, Any]) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) else None


def _stream_body(body: Mapping[str, Any]) -> bytes:
    return encode_body(body if body.get("stream") is True else {**body, "stream": True})


def _chat(payload: Any, url: str, model: str | None) -> ChatResponse | Failure:
    return parse_response(payload, url=url, model=model)


def _any(payload: Any, url: str, model: str | None) -> Any:
    return payload


def _never(payload: Any, url: str, model: str | None) -> Failure:
    """Used for streams' non-200 answers: a 2xx other than 200 is not an event stream."""
    return failure_from_shape(url, payload)
