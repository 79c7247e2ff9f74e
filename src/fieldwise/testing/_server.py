"""``FakeLLM``: a real loopback HTTP server speaking OpenAI/OpenRouter chat completions.

Why a real server (not a mocked transport): the client's pooling, keep-alive, timeouts, retries
and SSE parsing are exactly what tests and benchmarks need to exercise. This module holds the
server's life cycle (a daemon thread running its own event loop), scripting and inspection,
and routing a request to its answer; the HTTP/1.1 spoken on each connection is in
``_http_connection``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ._http_connection import _Connection
from ._render import DEFAULT_PRICES, Context, Rendered, error_body, render
from ._replies import Reply, valid

__all__ = ["FakeLLM", "RecordedRequest"]

logger = logging.getLogger("fieldwise.testing")

SUPPORTED_PARAMETERS = [
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "response_format",
    "structured_outputs",
    "tools",
    "tool_choice",
    "reasoning",
    "include_reasoning",
]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


Handler = Callable[[RecordedRequest], Reply | None]


class FakeLLM:
    """A chat-completions endpoint on 127.0.0.1 for tests and benchmarks.

    Answers, in order of precedence: the next ``script()``-ed reply, then ``handler(request)``
    if it returns a reply, then a valid instance of the request's schema. Every answer waits
    ``latency`` seconds first (a timer, so concurrent requests overlap as with a real API),
    counted from the request's arrival: the fake's own parsing and rendering, and a burst of
    requests queued behind each other on its one thread, are not added to it (a real API's
    many servers do not queue our requests behind each other either).
    """

    def __init__(
        self,
        latency: float = 0.0,
        model: str = "fake/model",
        provider: str = "FakeProvider",
        send_cost: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        prices: Mapping[str, tuple[float, float]] | None = None,
        record: bool = True,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> None:
        self.latency = latency
        self.model = model
        self.provider = provider
        self.send_cost = send_cost
        self.host = host
        self.port = port
        self.prices: dict[str, tuple[float, float]] = {model: DEFAULT_PRICES, **(prices or {})}
        self.record = record
        self.handler: Handler | None = None
        # told every chat answer (scripted or not) with its request: answer_with's memory
        self._answered: Callable[[RecordedRequest, Rendered], None] | None = None
        self._loop_factory = loop_factory
        self._lock = threading.Lock()
        self._queue: collections.deque[Reply] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()
        self._accepted = 0

    # -- life cycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1`` (the port is known once started)."""
        if self._server is None:
            raise RuntimeError("FakeLLM is not started; call start() or use it as a context")
        host = self.host
        if ":" in host and not host.startswith("["):  # an IPv6 address
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    def start(self) -> FakeLLM:
        """Bind and serve in a daemon thread; returns once the port is known."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="fieldwise-fake-llm", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, then end the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._server = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server is not None else "stopped"
        return f"FakeLLM({where}, model={self.model!r}, latency={self.latency})"

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop_factory()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), self.host, self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # surfaced in start()
            failure.append(exc)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
        # Let the transports' connection_lost callbacks run, so every socket is closed.
        for _ in range(3):
            await asyncio.sleep(0)

    # -- scripting and inspection ----------------------------------------------------------

    def script(self, *replies: Reply) -> FakeLLM:
        """Queue replies; each request consumes the next one, across connections."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """How many scripted replies are still queued."""
        return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """The requests once at least ``count`` have arrived (a client that gave up on a
        slow answer may raise before its last request reached the fake's thread); a
        ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} request(s) arrived, not {count}")
            time.sleep(0.01)

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted (to check that clients keep them alive)."""
        return self._accepted

    def reset(self) -> None:
        """Forget recorded requests, queued replies and the connection count (not ``handler``)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._accepted = 0

    # -- serving (event-loop thread) -------------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Rendered:
        path = target.split("?", 1)[0]
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        request = RecordedRequest(method, target, headers, body)
        if self.record:
            with self._lock:
                self._requests.append(request)
        if path.endswith("/chat/completions"):
            if method != "POST":
                return error_body(405, "Use POST for /chat/completions")
            if bad_json or not isinstance(body, dict):
                return error_body(400, "The request body is not a JSON object")
            return self._chat(request, len(raw))
        if path.endswith("/models"):
            if method not in ("GET", "HEAD"):
                return error_body(405, "Use GET for /models")
            return self._models()
        return error_body(404, f"No route for {method} {path}")

    def _chat(self, request: RecordedRequest, size: int) -> Rendered:
        reply = None
        if self._queue:
            with self._lock:
                reply = self._queue.popleft() if self._queue else None
        if reply is None and self.handler is not None:
            try:
                reply = self.handler(request)
            except Exception as exc:
                logger.exception("FakeLLM handler raised")
                return error_body(500, f"FakeLLM handler raised {type(exc).__name__}: {exc}")
        ctx = Context(request.body, size, self.model, self.provider, self.prices, self.send_cost)
        try:
            out = render(reply or valid(), ctx)
            if self._answered is not None:
                self._answered(request, out)
        except Exception as exc:
            logger.exception("FakeLLM could not render a reply")
            return error_body(500, f"FakeLLM could not render the reply: {exc}")
        out.delay += self.latency
        return out

    def _models(self) -> Rendered:
        # ``model`` may have been set after construction: list it, at the default prices
        prices = {self.model: DEFAULT_PRICES, **self.prices}
        data = [
            {
                "id": model,
                "name": model,
                "context_length": 1_000_000,
                "pricing": {"prompt": _decimal(prompt), "completion": _decimal(completion)},
                "supported_parameters": SUPPORTED_PARAMETERS,
            }
            for model, (prompt, completion) in prices.items()
        ]
        body = json.dumps({"data": data}).encode()
        return Rendered(body=body, headers=[("Content-Type", "application/json")])


def _decimal(value: float) -> str:
    """Prices as OpenRouter writes them: decimal strings, never exponent notation."""
    return f"{value:.12f}".rstrip("0").rstrip(".") or "0"
