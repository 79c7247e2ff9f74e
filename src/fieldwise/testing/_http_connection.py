"""The fake's HTTP/1.1 server side: one ``asyncio.Protocol`` per connection.

Why hand-written HTTP/1.1 on ``asyncio.Protocol``: the fake must sustain 64 keep-alive
connections at 50 ms latency (~1,300 req/s) on two cores while sharing them with the client
under test, so the per-request path is one buffer scan, one ``json.loads``, one ``json.dumps``
and a timer; no coroutine, task or stream object per request. It speaks the HTTP/1.1 that
clients send (``Content-Length`` and chunked bodies, ``Expect: 100-continue``, keep-alive,
pipelining, ``Connection: close``, ``HEAD``), and answers what it cannot read with a 400 and a
close. Separate from ``_server`` because it is wire protocol: it hands each parsed request to
``FakeLLM._answer`` and writes back the ``Rendered`` answer, knowing nothing of chat
completions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import TYPE_CHECKING, cast

from ._render import Rendered, error_body
from ._replies import phrase

if TYPE_CHECKING:
    from ._server import FakeLLM

_MAX_HEAD = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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
            if out.interval > 0 and len(events) > 1:  # one event now, the rest one by one
                if not head_sent:
                    self._send_head(out, keep, events[:1])
                else:
                    transport.writelines(_chunked(events[:1]))
                rest = dataclasses.replace(out, events=events)  # its first one is sent
                self.timer = asyncio.get_running_loop().call_later(
                    out.interval, self._send, rest, keep, True
                )
                return
            if not head_sent:
                self._send_head(out, keep, events)
            else:
                transport.writelines(_chunked(events))
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


def _chunked(events: list[bytes]) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(event), event) for event in events]


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
