"""``Batch``: the sync face of ``AsyncBatch`` for ``Extractor.run_many``.

Why a thread: a plain ``for`` loop over a batch must not need an event loop of its own, and
up to ``concurrency`` calls must stay in flight while the caller works on each item. So an
event loop runs in a worker thread and hands ready items over in runs (one queue operation
and one thread wake-up per run, not per item). The leading items the cache answers are
served in the caller's thread first, with no loop or thread at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from .batch import AsyncBatch, BatchItem, BatchSummary

__all__ = ["Batch"]

T = TypeVar("T")
_HANDOFF = 64  # at most this many ready items cross to the sync caller's thread at once


class Batch(Generic[T]):
    """The sync face of ``AsyncBatch``: an event loop in a worker thread feeds a bounded
    queue, so a plain ``for`` loop gets items in order while up to ``concurrency`` calls
    are in flight. Leaving the loop early (``break``, an exception, Ctrl-C) cancels the
    in-flight calls and returns promptly."""

    _DONE = object()

    def __init__(self, batch: AsyncBatch[T]) -> None:
        self._batch = batch
        # runs of items (lists), so that ready items cross the thread boundary together
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()

    @property
    def summary(self) -> BatchSummary:
        return self._batch.summary

    async def _put(self, obj: Any) -> bool:
        """Queue ``obj`` without blocking the event loop; False once the consumer left."""
        while not self._stop.is_set():
            try:
                self._queue.put_nowait(obj)
                return True
            except queue.Full:
                await asyncio.sleep(0.002)
        return False

    async def _consume(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started.set()
        run: list[BatchItem[T]] = []
        try:
            async for item in self._batch:
                run.append(item)
                if len(run) >= _HANDOFF or not self._batch.next_ready():
                    if not await self._put(run):
                        return
                    run = []
        except BaseException as exc:  # handed to the consumer thread, raised there
            if run and not await self._put(run):
                return
            await self._put(exc)
            return
        if run and not await self._put(run):
            return
        await self._put(self._DONE)

    def _pump(self) -> None:
        try:
            asyncio.run(self._consume())
        finally:
            self._started.set()

    def __iter__(self) -> Iterator[BatchItem[T]]:
        try:
            # Cached items first, here: no event loop or thread while the cache answers.
            yield from self._batch.cached_prefix()
            if self._batch.exhausted:
                return
            self._thread = threading.Thread(target=self._pump, name="fieldwise-batch", daemon=True)
            self._thread.start()
            while True:
                got = self._queue.get()
                if got is self._DONE:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield from got
        finally:
            self.close()

    def close(self) -> None:
        """Stop: cancel in-flight calls, and wait for the worker thread to end."""
        self._stop.set()
        if self._thread is None:  # ended within the cached prefix: no loop was started
            return
        self._started.wait(timeout=5)
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close in between
                self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    while True:
                        self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)

    def results(self) -> list[BatchItem[T]]:
        """Every item as a list (holds them all: for small batches)."""
        return list(self)
