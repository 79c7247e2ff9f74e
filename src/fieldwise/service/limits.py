"""Request-size caps enforced while the body streams in, and the cap on upstream calls.

Why ASGI middleware for size: the framework (and a multipart parser) would otherwise read
or spool the whole body before any route code runs, so a 2 GB upload would be stored
before it could be refused. Here the declared ``Content-Length`` is checked before the app
runs, and the bytes actually received are counted message by message; the first message
past the cap aborts the request with 413 and the connection is closed, so the rest is
never read.

Why a semaphore with a queue timeout: upstream calls are what is slow and what costs; a
burst beyond ``max_concurrency`` waits its turn, but not for ever: after
``queue_timeout`` the caller gets 429 with ``Retry-After`` instead of piling up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import record_of
from .errors import ServiceError
from .paths import route_path


class BodyTooLarge(Exception):
    """Raised from ``receive`` once more bytes arrived than the route allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes.")
        self.limit = limit


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``limit_for(path)`` bytes, without reading them.

    ``path`` is the one below the app's mount point (``paths.route_path``), the path its
    routes are declared with, so each route keeps its own cap under a prefix too.

    The app's own answer is replaced by the 413 when the cap was hit while it read the
    body, whatever the app made of the exception (FastAPI turns errors while reading a
    JSON body into a 400).
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(route_path(scope))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(scope, send, limit)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The app answered after the cap was hit: answer 413 in its place, once.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_413(scope, send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await _send_413(scope, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    record = record_of(scope)
    if record is not None:  # whatever the app made of the aborted read, this is why
        record.error = "payload_too_large"
    body = json.dumps(
        {
            "error": {
                "type": "payload_too_large",
                "message": f"The request body is larger than the limit of {limit} bytes.",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class UpstreamLimiter:
    """At most ``max_concurrency`` extractions at once; a waiter gives up after
    ``queue_timeout`` seconds with a 429.

    ``slot()`` is a plain class, not an ``asynccontextmanager``: the generator behind one
    cost ~3 µs a request, on the service's busiest path.
    """

    def __init__(self, max_concurrency: int, queue_timeout: float) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if queue_timeout < 0:
            raise ValueError("queue_timeout must be >= 0")
        self.max_concurrency = max_concurrency
        self.queue_timeout = queue_timeout
        self._semaphore = anyio.Semaphore(max_concurrency)
        self.waiting = 0

    @property
    def in_use(self) -> int:
        """How many slots are taken right now."""
        return self.max_concurrency - self._semaphore.value

    def slot(self) -> _Slot:
        """``async with limiter.slot():`` holds one slot for its body, or raises a 429."""
        return _Slot(self)

    async def _acquire(self) -> None:
        try:
            self._semaphore.acquire_nowait()
        except anyio.WouldBlock:
            await self._wait_for_slot()

    async def _wait_for_slot(self) -> None:
        self.waiting += 1
        acquired = False
        try:
            with anyio.move_on_after(self.queue_timeout):
                await self._semaphore.acquire()
                acquired = True
        finally:
            self.waiting -= 1
        if not acquired:
            raise ServiceError(
                429,
                "overloaded",
                f"All {self.max_concurrency} extraction slots are busy; try again later.",
                headers={"Retry-After": str(max(1, math.ceil(self.queue_timeout)))},
            )

    def _release(self) -> None:
        self._semaphore.release()


class _Slot:
    """One use of ``UpstreamLimiter.slot()``."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: UpstreamLimiter) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> None:
        await self._limiter._acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._limiter._release()
