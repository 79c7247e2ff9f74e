"""The structured access log (logger ``fieldwise.access``), request ids, and the last-resort
500.

One JSON object per request, after the response is sent: request id (also returned as the
``X-Request-ID`` header), method, path, schema, status, latency, tokens, cost, cached,
attempts and the error ``type`` if any. Why so little: the log must be safe to ship
anywhere, so it never holds document text, instructions, error messages (which can quote
the input), headers, query strings, the API key or the service token.

This middleware is the outermost one the app installs, so it also turns an exception that
escaped everything else into the service's 500 body (with the request id), instead of the
framework's plain-text page; a client that left while its body was read is sent nothing and
logged as 499 (``errors.CLIENT_CLOSED``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..result import Usage
from .errors import CLIENT_CLOSED, HTTP_TYPES, error_json, map_exception

access_log = logging.getLogger("fieldwise.access")
log = logging.getLogger("fieldwise.service")

SCOPE_KEY = "fieldwise.access"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: request ids: 64 random bits drawn once per process, then a counter (32 hex digits in
#: all). Unique across processes and restarts without a system call per request, which
#: ``uuid4`` makes (~2 µs); an id names a request, it guards nothing.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def _new_id_series() -> None:
    """In a forked child (a pre-fork server's worker): a prefix of its own."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = os.urandom(8).hex()
    _ID_COUNTER = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_id_series)
#: one encoder for every line (``json.dumps`` with options builds a new one per call)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


@dataclass
class AccessRecord:
    """What a route learned that belongs in the access log; filled in as the request goes."""

    request_id: str
    schema: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    cached: bool | None = None
    attempts: int | None = None
    error: str | None = None

    def fields(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "schema": self.schema,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            "cost": self.cost,
            "cached": self.cached,
            "attempts": self.attempts,
            "error": self.error,
        }


def record_of(scope: Scope) -> AccessRecord | None:
    """The request's access record (``None`` outside the access middleware)."""
    record = scope.get(SCOPE_KEY)
    return record if isinstance(record, AccessRecord) else None


class AccessLogMiddleware:
    """Assign a request id, time the request, log one JSON line, catch what escaped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        record = AccessRecord(request_id)
        scope[SCOPE_KEY] = record
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error = map_exception(exc)
            if error.status == CLIENT_CLOSED:  # nobody is left to answer, and no fault
                record.error = error.type
                return
            record.error = record.error or error.type
            if status == 0:
                await error_json(error)(scope, receive, send_with_id)
            else:  # the response had begun: nothing sensible can be sent any more
                log.error("request %s failed after its response started", request_id)
        finally:
            latency_ms = (time.perf_counter() - started) * 1000
            if status >= 400 and record.error is None:
                record.error = HTTP_TYPES.get(status, f"http_{status}")
            _log(scope, record, status or _unanswered(record), latency_ms)


def _unanswered(record: AccessRecord) -> int:
    """The status logged for a request that was sent no answer: 499 when its client left
    (``errors.CLIENT_CLOSED``), 500 otherwise."""
    return CLIENT_CLOSED if record.error == "client_closed" else 500


def _request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a short plain token, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(text):
                return text
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _log(scope: Scope, record: AccessRecord, status: int, latency_ms: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": record.request_id,
        "method": scope.get("method"),
        "path": str(scope.get("path", ""))[:256],
        "status": status,
        "latency_ms": round(latency_ms, 3),
        **record.fields(),
    }
    access_log.info(_ENCODE(line), extra={"access": line})
