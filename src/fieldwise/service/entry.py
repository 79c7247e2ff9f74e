"""``ServiceApp``: the FastAPI application, entered at the service's own middleware when the
layers FastAPI puts in front of it have nothing to do.

Why: FastAPI wraps every request in its own layers before the middleware an app adds: the
application call itself (which asks OpenTelemetry whether any provider is configured),
Starlette's error page, FastAPI's exception telemetry and its body-size limit. The service's
outermost middleware (``AccessLogMiddleware``) already turns every exception into the
service's 500 body, and the service caps sizes itself, so with telemetry off and no size
limit of FastAPI's those layers only pass each message through, which cost ~20 µs a request
(measured in-process on the JSON extraction path, ~130 µs in all).

The shortcut is taken only when the built stack is exactly those known layers and then the
service's middleware, so anything else in front (middleware a user added after
``create_app``, a FastAPI ``max_body_size``, a layer a later FastAPI adds) keeps the usual
path; so do telemetry, a parent app's body limit (a key in the scope), non-HTTP scopes, a
stack someone wrapped after it was built (OpenTelemetry's ``instrument_app``) and a
patched ``Starlette.__call__`` or ``FastAPI.__call__`` (Sentry's integration).
(Starlette's error page never sees an exception from below the access log, which answers
every one itself, so skipping it changes no answer.)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from .access import AccessLogMiddleware

try:  # FastAPI's own layers; an older FastAPI without them has nothing to skip there
    from fastapi._body_limit import AppBodyLimitMiddleware
    from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware
except ImportError:  # pragma: no cover - depends on the installed FastAPI
    _PASS_THROUGH: tuple[type, ...] = (ServerErrorMiddleware,)
else:
    _PASS_THROUGH = (ServerErrorMiddleware, ExceptionTelemetryMiddleware, AppBodyLimitMiddleware)

#: set in the scope by a parent app with a body limit (Starlette's ``max_body_size``)
_PARENT_LIMIT = "starlette.max_body_size"
#: the framework's own entrances, as imported (an integration may patch them later)
_STARLETTE_CALL = Starlette.__call__
_FASTAPI_CALL = FastAPI.__call__


class ServiceApp(FastAPI):
    """FastAPI with a direct entrance to the service's middleware (see the module)."""

    _fieldwise_entrance: ASGIApp | None = None
    _fieldwise_stack: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._fieldwise_stack = stack
        self._fieldwise_entrance = _entrance(stack)
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entrance = self._fieldwise_entrance
        if (
            entrance is None
            # the stack in use is not the one the entrance was found in: something wrapped
            # it (OpenTelemetry's instrument_app swaps build_middleware_stack)
            or self.middleware_stack is not self._fieldwise_stack
            # an integration patched the framework's entrance (Sentry patches Starlette's)
            or Starlette.__call__ is not _STARLETTE_CALL
            or FastAPI.__call__ is not _FASTAPI_CALL
            or scope["type"] != "http"
            or _PARENT_LIMIT in scope
            or _telemetry_on(self)
        ):
            await super().__call__(scope, receive, send)
            return
        if self.root_path:  # as FastAPI's own entrance does
            scope["root_path"] = self.root_path
        scope["app"] = self
        await entrance(scope, receive, send)


def _entrance(stack: ASGIApp) -> ASGIApp | None:
    """The service's access-log middleware when only pass-through layers lie above it."""
    layer: Any = stack
    while isinstance(layer, _PASS_THROUGH):
        layer = getattr(layer, "app", None)
    return layer if isinstance(layer, AccessLogMiddleware) else None


def _telemetry_on(app: FastAPI) -> bool:
    telemetry = getattr(app, "_native_telemetry", None)
    return telemetry is not None and bool(telemetry.enabled())
