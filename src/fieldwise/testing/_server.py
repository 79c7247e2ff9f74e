"""``FakeLLM``: a real loopback HTTP server speaking OpenAI/OpenRouter chat completions.

Why a real server (not a mocked transport): the client's pooling, keep-alive, timeouts, retries
and SSE parsing are exactly what tests and benchmarks need to exercise. Why hand-written
HTTP/1.1 on ``asyncio.Protocol``: the fake must sustain 64 keep-alive connections at 50 ms
latency (~1,300 req/s) on two cores while sharing them with the client under test, so the
per-request path is one buffer scan, one ``json.loads``, one ``json.dumps`` and a timer; no
coroutine, task or stream object per request. It speaks the HTTP/1.1 that clients send
(``Content-Length`` and chunked bodies, ``Expect: 100-continue``, keep-alive, pipelining,
``Connection: close``, ``HEAD``), and answers what it cannot read with a 400 and a close.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from ._render import DEFAULT_PRICES, Context, Rendered, error_body, render
from ._replies import Reply, phrase, valid

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
_MAX_HEAD = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: requests are answered one at a time, in order."""

    def __init__(self, fake: FakeLLM) -> None:
        self.fake = fake
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.continued = False  # "100 Continue" was sent for the request being read
        self.timer: asyncio.TimerHandle | None = None
        self.arrived = 0.0  # loop time when the request being read began to arrive

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.fake._conns.add(self)
        self.fake._accepted += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.fake._conns.discard(self)
        self.transport = None

    def close(self) -> None:
        """Drop the connection now (``FakeLLM.stop``): ``abort``, not ``close``, which would
        wait for a client that stopped reading to take the rest of a large answer."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if not self.buffer and not self.busy:
            self.arrived = asyncio.get_running_loop().time()
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Parse one complete request from the buffer, if there is one, and answer it."""
        buffer = self.buffer
        if buffer.startswith(b"\r\n"):  # empty lines before a request line are ignored
            del buffer[: len(buffer) - len(buffer.lstrip(b"\r\n"))]
            if not buffer:
                return
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                self._fail(431, "Request header too large")
            return
        lines = buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._fail(400, "Malformed request line")
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        coding = headers.get("transfer-encoding")
        if coding is None:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self._fail(400, "Bad Content-Length")
                return
            stop = start + length
            got = bytes(buffer[start:stop]) if len(buffer) >= stop else None
        elif coding.lower() == "chunked":  # it overrides any Content-Length
            try:
                got, stop = _dechunk(buffer, start)
            except ValueError:
                self._fail(400, "Malformed chunked body")
                return
        else:
            self._fail(501, f"Transfer-Encoding {coding!r} is not supported; use chunked")
            return
        if got is None:  # the body is still on its way
            if not self.continued and headers.get("expect", "").lower() == "100-continue":
                self.continued = version == "HTTP/1.1"
                if self.continued and self.transport is not None:
                    self.transport.write(_CONTINUE)
            return
        raw = got
        del buffer[:stop]
        self.continued = False
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        self.busy = True
        out = self.fake._answer(method, target, headers, raw)
        out.bodiless = method == "HEAD"
        loop = asyncio.get_running_loop()
        if out.delay <= 0:
            loop.call_soon(self._send, out, keep, False)
        elif out.events:
            # Like OpenRouter: headers and the keep-alive comment at once, content when ready.
            self._send_head(out, keep, out.events[:1])
            self.timer = loop.call_at(self.arrived + out.delay, self._send, out, keep, True)
        else:
            self.timer = loop.call_at(self.arrived + out.delay, self._send, out, keep, False)

    def _send_head(self, out: Rendered, keep: bool, events: list[bytes]) -> None:
        assert self.transport is not None
        head = [f"HTTP/1.1 {out.status} {phrase(out.status)}"]
        head += [f"{name}: {value}" for name, value in out.headers]
        if not keep:
            head.append("Connection: close")
        if out.events is None:
            head.append(f"Content-Length: {len(out.body)}")
            body = out.body if out.short is None else out.body[: out.short]
            if out.bodiless:
                body = b""
            self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            return
        head += ["Cache-Control: no-cache", "Transfer-Encoding: chunked"]
        parts = [("\r\n".join(head) + "\r\n\r\n").encode("latin-1")]
        parts += [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
        self.transport.writelines(parts)

    def _send(self, out: Rendered, keep: bool, head_sent: bool) -> None:
        self.timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if out.drop:
            transport.close()
            return
        if out.events is None:
            self._send_head(out, keep, [])
            if out.short is not None:
                transport.close()
                return
        else:
            events = out.events[1:] if head_sent else out.events
            if not head_sent:
                self._send_head(out, keep, events)
            else:
                transport.writelines(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
            transport.write(b"0\r\n\r\n")
        if not keep:
            transport.close()
            return
        self.busy = False
        if self.buffer:  # the next request waited for this answer: its time starts now
            self.arrived = asyncio.get_running_loop().time()
            self._next()

    def _fail(self, status: int, message: str) -> None:
        self.busy = True
        self.buffer.clear()
        self._send(error_body(status, message), False, False)


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes | None, int]:
    """(body, end) of a chunked body that begins at ``start``; (None, 0) while it is still
    arriving. Chunk extensions and trailer fields are read past; ValueError when malformed."""
    parts: list[bytes] = []
    pos = start
    while True:
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            if len(buffer) - pos > _MAX_HEAD:
                raise ValueError("chunk size line too long")
            return None, 0
        size_text = bytes(buffer[pos:eol]).partition(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise ValueError(f"bad chunk size {size_text!r}")
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            break
        if len(buffer) < pos + size + 2:
            return None, 0
        if buffer[pos + size : pos + size + 2] != b"\r\n":
            raise ValueError("a chunk does not end with CRLF")
        parts.append(bytes(buffer[pos : pos + size]))
        pos += size + 2
    while True:  # trailer fields, up to an empty line
        eol = buffer.find(b"\r\n", pos)
        if eol < 0:
            if len(buffer) - pos > _MAX_HEAD:
                raise ValueError("trailer section too long")
            return None, 0
        if eol == pos:
            return b"".join(parts), eol + 2
        pos = eol + 2
