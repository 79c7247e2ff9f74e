"""Bearer-token authentication for the ``/v1/`` routes.

Why both a middleware and a dependency: the middleware refuses a request before any of its
body is read (an unauthenticated client cannot make the service read, parse or validate
anything); the dependency puts the bearer scheme and the 401 into the OpenAPI document,
and would still guard a route should the middleware ever be bypassed. Both use the same
constant-time comparison.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from ..exceptions import ConfigurationError
from .access import record_of
from .errors import ServiceError, error_json
from .paths import is_api_path

TOKEN_ENV = "FIELDWISE_SERVICE_TOKEN"


def clean_token(value: str, source: str) -> str | None:
    """The service token from ``value`` (named ``source`` in errors), or ``None`` for
    ``""``, no authentication.

    Surrounding whitespace is dropped: a token read from a secret file ends with its
    newline, which no client sends. One with whitespace or a control character inside, or
    nothing but whitespace, could never arrive in a bearer header, so every client would
    get 401: refused at start instead. The message never shows the token.
    """
    if not value:
        return None
    token = value.strip()
    if not token:
        raise ConfigurationError(f"{source}: the service token is only whitespace.")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in token):
        raise ConfigurationError(
            f"{source}: the service token has whitespace or a control character inside it, "
            "which an 'Authorization: Bearer' header cannot carry."
        )
    return token


class TokenGuard:
    """Checks ``Authorization: Bearer <token>`` in constant time.

    On the header's raw bytes against the token's UTF-8 bytes: HTTP carries bytes, and a
    client sends a non-ASCII token as UTF-8. Decoding the header first (as latin-1, as
    ASGI frameworks do) and encoding it again as UTF-8 would turn every such byte into two,
    so the right token could never match.
    """

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    def accepts(self, header: bytes | None) -> bool:
        scheme, _, value = (header or b"").partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(value.strip(), self._expected)

    @staticmethod
    def refusal(*, closing: bool = False) -> ServiceError:
        """The 401; ``closing`` when the request's body is left unread, so that the
        connection is closed rather than read to the end of a body of any size."""
        headers = {"WWW-Authenticate": "Bearer"}
        if closing:
            headers["Connection"] = "close"
        return ServiceError(
            401,
            "unauthorized",
            "Send the service token as 'Authorization: Bearer <token>'.",
            headers=headers,
        )


class AuthMiddleware:
    """Refuses ``/v1/`` requests without the token before any of their body is read.

    The path is the one below the app's mount point (``paths.route_path``), so the check
    holds under ``Mount("/api", app)`` or a ``root_path`` as well.
    """

    def __init__(self, app: ASGIApp, *, guard: TokenGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_api_path(scope):
            header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            if not self.guard.accepts(header):
                error = self.guard.refusal(closing=_has_body(scope))
                record = record_of(scope)
                if record is not None:
                    record.error = error.type
                await error_json(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a length over 0, or a chunked one)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


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
        # Starlette decoded the header as latin-1: encoding it back gives the bytes sent.
        header = (
            f"Bearer {credentials.credentials}".encode("latin-1")
            if credentials is not None
            else None
        )
        if not guard.accepts(header):
            raise guard.refusal()

    return require_token
