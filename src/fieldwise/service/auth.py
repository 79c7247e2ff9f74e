"""Bearer-token authentication for the ``/v1/`` routes.

Why both a middleware and a dependency: the middleware refuses a request before any of its
body is read (an unauthenticated client cannot make the service read, parse or validate
anything); the dependency puts the bearer scheme and the 401 into the OpenAPI document,
and would still guard a route should the middleware ever be bypassed. Both use the same
constant-time comparison.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from .access import record_of
from .errors import ServiceError, error_json

TOKEN_ENV = "FIELDWISE_SERVICE_TOKEN"


class TokenGuard:
    """Checks ``Authorization: Bearer <token>`` in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    def accepts(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self._expected)

    @staticmethod
    def refusal() -> ServiceError:
        return ServiceError(
            401,
            "unauthorized",
            "Send the service token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


class AuthMiddleware:
    """Refuses ``/v1/`` requests without the token before any of their body is read."""

    def __init__(self, app: ASGIApp, *, guard: TokenGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            header = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"),
                None,
            )
            if not self.guard.accepts(header):
                error = self.guard.refusal()
                record = record_of(scope)
                if record is not None:
                    record.error = error.type
                await error_json(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def bearer_dependency(guard: TokenGuard) -> Callable[..., Coroutine[Any, Any, None]]:
    """The same check as the middleware, as a dependency: it puts the bearer scheme into
    the OpenAPI document (and guards the routes should the middleware be bypassed)."""
    scheme = HTTPBearer(auto_error=False, description=f"the service token ({TOKEN_ENV})")

    # A default, not Annotated[..., Depends(scheme)]: annotations are strings here and
    # ``scheme`` is a local that FastAPI could not resolve from them.
    from_header = Depends(scheme)

    async def require_token(
        credentials: HTTPAuthorizationCredentials | None = from_header,
    ) -> None:
        header = f"Bearer {credentials.credentials}" if credentials is not None else None
        if not guard.accepts(header):
            raise guard.refusal()

    return require_token
