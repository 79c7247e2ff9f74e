"""The common case of ``POST /v1/extract/{name}``, answered in front of FastAPI's routing.

Why: a JSON extraction request is the service's hot path, and FastAPI's per-request work
around it (routing, the ``Request`` object, dependency solving, parsing the body with
``json.loads`` and then validating the dict, its exception and exit-stack wrappers) was
about a quarter of the service's CPU per request, measured with py-spy at 64 concurrent
clients. Here a request for a registered schema with a JSON content type has its body
validated by ``ExtractRequest.model_validate_json`` (one pass, in pydantic's core) and goes
straight to the same ``extract`` the FastAPI route calls.

Only the success path is taken here. A body that is not valid JSON or not a valid request
goes on to FastAPI's route with the bytes already read, so every 4xx keeps one source; the
routes stay declared there too, which is what the OpenAPI document describes. It sits inside
the access log, the size caps and the token check, as the routes do.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import record_of
from .models import ExtractRequest
from .paths import route_path

#: ``extract(scope, name, request)``: the response for a valid request; raises what the
#: FastAPI route would raise (the caller maps it, as FastAPI's handlers do)
Extract = Callable[[Scope, str, ExtractRequest], Awaitable[Response]]
#: a JSON media type, parameters allowed (``application/json; charset=utf-8``, ``+json``)
JSON_TYPE = re.compile(r"application/([\w.+-]+\+)?json\s*(;.*)?", re.IGNORECASE)


class ExtractShortcut:
    """Answers valid JSON requests to ``paths`` (``{"/v1/extract/Invoice": "Invoice"}``)."""

    def __init__(self, app: ASGIApp, *, paths: Mapping[str, str], extract: Extract) -> None:
        self.app = app
        self.paths = dict(paths)
        self.extract = extract

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self.paths.get(route_path(scope)) if scope["type"] == "http" else None
        if name is not None:  # logged with its schema even when the app refuses it (422...)
            record = record_of(scope)
            if record is not None:
                record.schema = name
        if name is None or scope["method"] != "POST" or not _declares_json(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away: the access log records it, as it does
            raise ClientDisconnect  # for a body the app was reading
        try:
            request = ExtractRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)
            return
        response = await self.extract(scope, name, request)
        await response(scope, receive, send)


def _declares_json(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return JSON_TYPE.fullmatch(value.decode("latin-1").strip()) is not None
    return False


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` (already read) first, then what the client sends."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
