"""httpx clients for the transport: spread over "shards", and kept per event loop.

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
ever used (one connection).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

__all__ = ["ClientPools", "Shards", "shared_ssl_context"]

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


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One CA-loaded context for every client: building one costs ~0.1 s of CPU."""
    return httpx.create_ssl_context()


def _loop_key() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # another async library (trio): one shared set of clients
        return None


@dataclass(slots=True)
class _LoopEntry:
    shards: Shards[httpx.AsyncClient]
    closer: AsyncGenerator[None, None]


class ClientPools:
    """The sync shards (made on first use) and one set of async shards per running event loop.

    Connections cannot move between event loops, so a user calling ``asyncio.run`` twice with
    one ``Transport`` gets fresh async clients in the second loop; each loop's clients are
    closed while that loop shuts down (see ``_close_with_loop``).
    """

    def __init__(
        self,
        make_sync: Callable[[], httpx.Client],
        make_async: Callable[[], httpx.AsyncClient],
        *,
        per_shard: int = 4,
        max_shards: int = 32,
    ) -> None:
        self._make_sync = make_sync
        self._make_async = make_async
        self._per_shard = per_shard
        self._max_shards = max_shards
        self._lock = threading.Lock()
        self._sync: Shards[httpx.Client] | None = None
        self._loops: dict[asyncio.AbstractEventLoop | None, _LoopEntry] = {}

    def sync(self) -> Shards[httpx.Client]:
        shards = self._sync
        if shards is None:
            with self._lock:
                if self._sync is None:
                    self._sync = Shards(
                        self._make_sync, per_shard=self._per_shard, max_shards=self._max_shards
                    )
                shards = self._sync
        return shards

    async def current(self) -> Shards[httpx.AsyncClient]:
        key = _loop_key()
        entry = self._loops.get(key)
        if entry is not None:
            return entry.shards
        for old in [k for k in self._loops if k is not None and k.is_closed()]:
            del self._loops[old]  # closed without finalizing async generators: nothing to do
        shards = Shards(self._make_async, per_shard=self._per_shard, max_shards=self._max_shards)
        closer = self._close_with_loop(key, shards)
        self._loops[key] = _LoopEntry(shards, closer)
        await anext(closer)
        return shards

    async def _close_with_loop(
        self, key: asyncio.AbstractEventLoop | None, shards: Shards[httpx.AsyncClient]
    ) -> AsyncGenerator[None, None]:
        """Suspends until its loop finalizes async generators, then closes the loop's clients.

        ``asyncio.run`` (and the anyio/trio runners) finalize live async generators before the
        loop closes, so pooled connections are closed while the loop can still run, instead of
        leaking as unclosed transports.
        """
        try:
            yield
        finally:
            entry = self._loops.get(key)
            if entry is not None and entry.shards is shards:
                del self._loops[key]
            for client in shards.clients:
                await client.aclose()

    def close(self) -> None:
        """Close the sync clients now; async ones on their own (still running) loops."""
        with self._lock:
            shards, self._sync = self._sync, None
        for client in shards.clients if shards is not None else ():
            client.close()
        for key in list(self._loops):
            entry = self._loops.pop(key)
            if key is not None and not key.is_closed():
                key.call_soon_threadsafe(_spawn, key, entry.closer)

    async def aclose(self) -> None:
        """Close this loop's async clients now, then everything ``close`` closes."""
        entry = self._loops.pop(_loop_key(), None)
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
