"""The transport's async HTTP: one aiohttp session per running event loop.

Why aiohttp and not httpx's ``AsyncClient`` here: batches and the service keep dozens of
requests in flight, and there the HTTP client's own CPU decides throughput. Measured against
FakeLLM in its own process, 64 requests in flight, the same small chat-completions body
(2026-11-25, 2 vCPUs, httpx 0.28.1 / httpcore 1.0.9 / aiohttp 3.14.5), client CPU per request:

    latency 0 ms:  httpx one client 1,489 µs, httpx in shards of 4 ~700 µs, aiohttp 127 µs
    latency 50 ms: httpx one client 9,105 µs (110 req/s), aiohttp 303 µs (1,156 req/s)

httpx's per-request path (request and response models, cookie and auth hooks, anyio cancel
scopes and locks around every read) costs more than the rest of an extraction together;
aiohttp's C-accelerated parser and connector do the same job in a fraction. The sync API keeps
httpx (``_pool``), where one request at a time costs ~1.1x a bare call.

What this module owns: making the session (headers, timeouts, TLS context, the proxy the
environment names, as the sync clients read it), sending one request, and sorting aiohttp's
errors into the transport's ``NetworkFault`` kinds. Like httpx, it follows no redirects (a
3xx becomes the same typed error on both paths) and reads no ``.netrc``; aiohttp's own
``trust_env`` would read both netrc and the proxy variables again on every request (~0.45 ms
of CPU each, measured), so the proxy is worked out once per transport instead. Retry
decisions stay in ``_retry``; SSE parsing in ``_sse``.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ._answer_size import AnswerBuffer, AnswerTooLarge
from ._pool import PerLoop, shared_ssl_context
from ._retry import NetworkFault
from ._sse import LineSplitter
from .exceptions import ConfigurationError, redact

__all__ = ["Answer", "AsyncHTTP", "aiohttp_fault", "environment_proxy"]


@dataclass(slots=True)
class Answer:
    """A complete HTTP answer: what ``_retry`` needs to judge it."""

    status: int
    headers: Mapping[str, str]
    content: bytes


class AsyncHTTP:
    """aiohttp sessions for one endpoint's headers and timeouts, one per running loop."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None,
        connect_timeout: float | None,
        trust_env: bool,
    ) -> None:
        self._headers = dict(headers)
        self._proxy = environment_proxy(base_url) if trust_env else None
        # TLS is spoken only to an https:// endpoint (redirects are not followed and the
        # proxy is http://), so a local server (llama.cpp, vLLM, Ollama) spares building
        # the CA context the sync path shares (~35 ms of CPU); ``True`` is aiohttp's own
        # verified context, built when aiohttp is imported, for any other URL
        self._plain_http = urlsplit(base_url).scheme.lower() != "https"
        # sock_read, like httpx's read timeout, limits each wait for bytes (a stream that
        # keeps sending may run longer than ``timeout`` in all); no limit on the whole call.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self._sessions: PerLoop[aiohttp.ClientSession] = PerLoop(self._new_session, _close)
        self._urls: dict[str, URL] = {}

    network_errors = (aiohttp.ClientError, asyncio.TimeoutError, AnswerTooLarge)
    """What ``request`` and ``lines`` raise when no answer came back (see ``fault``)."""

    @staticmethod
    def fault(exc: BaseException) -> NetworkFault:
        return aiohttp_fault(exc)

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # concurrency is bounded by the caller (batch, service), not here
            keepalive_timeout=30,
            ssl=True if self._plain_http else shared_ssl_context(),
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
        )

    async def session(self) -> aiohttp.ClientSession:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no running asyncio loop (trio, curio)
            raise ConfigurationError(
                "fieldwise's async API runs on asyncio; under another event loop call the "
                "sync API in a worker thread (for trio: trio.to_thread.run_sync)."
            ) from None
        return await self._sessions.current()

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 256:
                self._urls.clear()
            parsed = self._urls[url] = URL(url)
        return parsed

    async def request(self, method: str, url: str, content: bytes | None) -> Answer:
        """Send one request and read the whole answer; aiohttp errors propagate."""
        session = await self.session()
        async with session.request(
            method, self._url(url), data=content, proxy=self._proxy, allow_redirects=False
        ) as response:
            return Answer(response.status, response.headers, await _read(response))

    async def lines(
        self, url: str, content: bytes, headers: Mapping[str, str], answer: list[Answer]
    ) -> AsyncGenerator[str, None]:
        """POST and yield the answer's lines; a non-200 answer is read whole into ``answer``."""
        session = await self.session()
        async with session.post(
            self._url(url), data=content, headers=headers, proxy=self._proxy, allow_redirects=False
        ) as response:
            if response.status != 200:
                answer.append(Answer(response.status, response.headers, await _read(response)))
                return
            splitter = LineSplitter()
            async for data in response.content.iter_any():
                for line in splitter.feed(data):
                    yield line
            for line in splitter.end():
                yield line

    def close(self) -> None:
        self._sessions.close()

    async def aclose(self) -> None:
        await self._sessions.aclose()


async def _read(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, up to ``MAX_ANSWER_BYTES`` (``response.read()`` has no limit)."""
    buffer = AnswerBuffer()
    async for chunk in response.content.iter_any():
        buffer.add(chunk)
    return buffer.content()


def environment_proxy(url: str) -> str | None:
    """The proxy that ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` name for ``url``, unless
    ``NO_PROXY`` exempts its host (the variables httpx reads for the sync path)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    if not proxy.startswith("http://"):
        raise ConfigurationError(
            f"the proxy {redact(proxy)!r} from the environment is not an http:// proxy, which "
            "is all fieldwise's async calls (aiohttp) can use; name an http:// proxy, set "
            "NO_PROXY for this host, or use the sync API."
        )
    return proxy


async def _close(session: aiohttp.ClientSession) -> None:
    await session.close()


def aiohttp_fault(exc: BaseException) -> NetworkFault:
    """Which kind of network failure an aiohttp error (or timeout) is."""
    if isinstance(exc, AnswerTooLarge):
        return "too_large"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect_timeout"
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return "read_timeout"
    if isinstance(exc, aiohttp.InvalidURL):
        return "refused"
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientProxyConnectionError):
        return "unreachable"
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return "dropped"
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        return "dropped"
    return "other"
