"""The sync httpx clients for the transport, spread over "shards"; async clients kept per loop.

Why: one httpcore connection pool gets slower the more requests it has in flight. On every
request it re-scans all its connections (polling each idle socket), and requests arriving
together are all handed the same idle connection, so all but one fail internally and re-queue.
Measured at 64 requests in flight against FakeLLM (50 ms latency, in its own process;
httpx 0.28.1, httpcore 1.0.9, a 2-vCPU VM), client CPU per call and throughput,
async / threads with the sync client:

    one client, default limits (100/20)   4.3-4.8 ms, 62-85 req/s   /  2.4 ms, 190 req/s
    one client, max_connections=64        4.6-5.3 ms, 65-84 req/s   /  1.9 ms, 491 req/s
    one client, no limits, keep all       4.3-4.8 ms, 70-72 req/s   /  2.2 ms, 350 req/s
    shards of 4, no limits (chosen)       0.9-1.1 ms, 285-345 req/s /  0.9 ms, 834 req/s

(The VM gives a process about half a core, so req/s is CPU-bound and noisy; the fake's own
ceiling measured with a raw-socket client is ~1,170 req/s.) ``max_connections=64`` is no
better than the default: the single pool, not its limit, is the problem. A small
``max_keepalive_connections`` (20) also cut CPU (~1.8 ms) but reopens connections all the
time, a TLS handshake each against a real API. So each client carries at most ``per_shard``
requests and more clients are added as concurrency grows; at concurrency 1 only the first is
ever used (one connection). The async path left httpx for aiohttp after the same kind of
measurement (``_async_http``); only its per-loop bookkeeping (``PerLoop``) lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from ._answer_size import AnswerTooLarge
from ._retry import NetworkFault

__all__ = ["PerLoop", "Shards", "httpx_fault", "shared_ssl_context"]

ClientT = TypeVar("ClientT")


class Shards(Generic[ClientT]):
    """Clients made on demand; ``acquire`` picks the first one with room, ``release`` frees it."""

    __slots__ = ("_lock", "_make", "clients", "loads", "max_shards", "per_shard")

    def __init__(self, make: Callable[[], ClientT], *, per_shard: int, max_shards: int) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.per_shard = per_shard
        self.max_shards = max_shards
        self.clients: list[ClientT] = []
        self.loads: list[int] = []

    def acquire(self) -> int:
        """Index of the client to use for one request (call ``release`` with it after)."""
        with self._lock:
            loads = self.loads
            index = next((i for i, load in enumerate(loads) if load < self.per_shard), -1)
            if index < 0:
                if len(loads) < self.max_shards:
                    self.clients.append(self._make())
                    loads.append(0)
                    index = len(loads) - 1
                else:
                    index = loads.index(min(loads))
            loads[index] += 1
            return index

    def release(self, index: int) -> None:
        with self._lock:
            self.loads[index] -= 1

    def take_all(self) -> list[ClientT]:
        """Forget every client (for closing them); new requests start fresh ones."""
        with self._lock:
            clients, self.clients, self.loads = self.clients, [], []
        return clients


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One CA-loaded context for every client: building one costs ~0.1 s of CPU."""
    return httpx.create_ssl_context()


def httpx_fault(exc: httpx.HTTPError | AnswerTooLarge) -> NetworkFault:
    """Which kind of network failure an httpx error is (see ``_retry.failure_from_exception``)."""
    if isinstance(exc, AnswerTooLarge):
        return "too_large"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "read_timeout"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return "refused"
    # reached, then broken: a reset while sending or reading, as aiohttp's are sorted
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "dropped"
    if isinstance(exc, httpx.TransportError):
        return "unreachable"
    return "other"


@dataclass(slots=True)
class _LoopEntry(Generic[ClientT]):
    client: ClientT
    closer: AsyncGenerator[None, None]


class PerLoop(Generic[ClientT]):
    """One async client per running asyncio event loop, closed while that loop shuts down.

    Connections cannot move between event loops, so a user calling ``asyncio.run`` twice with
    one ``Transport`` gets a fresh client in the second loop (see ``_close_with_loop``). Loops
    in several threads (sync batches each run one) may use it at once.
    """

    def __init__(
        self,
        make: Callable[[], ClientT],
        close: Callable[[ClientT], Awaitable[None]],
    ) -> None:
        self._make = make
        self._close = close
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, _LoopEntry[ClientT]] = {}

    async def current(self) -> ClientT:
        """This loop's client (made on first use); raises RuntimeError outside asyncio."""
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is not None:
            return entry.client
        with self._lock:
            for old in [k for k in self._loops if k.is_closed()]:
                del self._loops[old]  # closed without finalizing async generators
            client = self._make()
            closer = self._close_with_loop(loop, client)
            self._loops[loop] = _LoopEntry(client, closer)
        await anext(closer)
        return client

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, client: ClientT
    ) -> AsyncGenerator[None, None]:
        """Suspends until its loop finalizes async generators, then closes the loop's client.

        ``asyncio.run`` finalizes live async generators before the loop closes, so pooled
        connections are closed while the loop can still run, instead of leaking as unclosed
        transports.
        """
        try:
            yield
        finally:
            with self._lock:
                entry = self._loops.get(loop)
                if entry is not None and entry.client is client:
                    del self._loops[loop]
            await self._close(client)

    def close(self) -> None:
        """Close every loop's client, each on its own loop.

        The calling thread's own running loop is left to close its client while it shuts
        down (``asyncio.run`` finalizes async generators): closing it from here as well would
        close it twice. A loop that is not running is run just long enough to close it.
        """
        with self._lock:
            entries, self._loops = self._loops, {}
        try:
            mine: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            mine = None
        for loop, entry in entries.items():
            if loop.is_closed() or loop is mine:
                continue
            if loop.is_running():
                loop.call_soon_threadsafe(_spawn, loop, entry.closer)
            elif mine is None:
                with contextlib.suppress(RuntimeError):  # started meanwhile in another thread
                    loop.run_until_complete(entry.closer.aclose())

    async def aclose(self) -> None:
        """Close this loop's client now, then the others (see ``close``)."""
        with self._lock:
            entry = self._loops.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.closer.aclose()
        self.close()


_background: set[asyncio.Task[None]] = set()


def _spawn(loop: asyncio.AbstractEventLoop, closer: AsyncGenerator[None, None]) -> None:
    async def run() -> None:
        await closer.aclose()

    task = loop.create_task(run())
    _background.add(task)  # the loop holds tasks weakly
    task.add_done_callback(_background.discard)
