"""The service's error shape and the one place that maps exceptions to HTTP statuses.

Why one table: every route must answer the same ``{"error": {...}}`` body for the same
failure, and the OpenAPI document must list exactly the statuses a route can produce, so
the mapping and the declared responses are kept side by side here.

Choices (see ``docs/service.md``): 400 is a client input the service cannot use (bad JSON,
bad multipart, an input too long for the model or refused by moderation); 422 is a
request body that fails its schema; an answer from the model that never validated
(``ExtractionError``) is an upstream failure, 502, because the caller's request was fine.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from ..exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    ContextLengthError,
    ExtractionError,
    FieldwiseError,
    ModerationError,
    OutputError,
    RateLimitError,
    UnsupportedInputError,
)

log = logging.getLogger("fieldwise.service")


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine ``type``, a human ``message``, maybe a ``field``."""

    type: str = Field(examples=["validation_error"])
    message: str
    field: str | None = Field(default=None, description="dotted path of the offending field")


class ErrorResponse(BaseModel):
    """Every non-2xx answer of the service has this body."""

    error: ErrorDetail


class ServiceError(Exception):
    """An error already decided: status, type, message, optional field and headers."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.field = field
        self.headers = headers or {}


# status -> what the OpenAPI document says it means
DESCRIPTIONS: dict[int, str] = {
    400: "Bad input: malformed JSON or multipart body, or an input the model cannot take",
    401: "Missing or wrong bearer token",
    404: "Unknown schema",
    413: "Request body or upload larger than the configured limit",
    415: "Unsupported content type or file type (no document loader reads it)",
    422: "The request body does not match its schema",
    429: "Too many requests: the service's queue or the upstream rate limit (see Retry-After)",
    500: "Internal error, or the service is misconfigured",
    502: "The model endpoint failed, or its output never validated",
    503: "The model endpoint is not reachable or rejects the service's key",
    504: "The extraction did not finish in time",
}

# What a Starlette/FastAPI HTTPException status is called in our error ``type``.
HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` argument declaring ``statuses`` with the error model."""
    return {
        status: {"model": ErrorResponse, "description": DESCRIPTIONS[status]}
        for status in sorted(set(statuses))
    }


def error_json(error: ServiceError) -> JSONResponse:
    """The response for an already-decided error."""
    detail: dict[str, Any] = {"type": error.type, "message": error.message}
    if error.field is not None:
        detail["field"] = error.field
    return JSONResponse({"error": detail}, status_code=error.status, headers=error.headers)


def http_error(status: int, message: str, headers: dict[str, str] | None = None) -> ServiceError:
    """A ``ServiceError`` for a plain HTTP status raised by the framework (404, 405...)."""
    return ServiceError(status, HTTP_TYPES.get(status, "http_error"), message, headers=headers)


#: the longest ``Retry-After`` passed on from the model endpoint, in seconds
MAX_RETRY_AFTER = 3600


def _retry_after(seconds: float | None) -> dict[str, str]:
    """Whole seconds from 1 to ``MAX_RETRY_AFTER``, whatever the upstream said.

    Why clamp: the value comes from the model endpoint's own header, which can say ``inf``,
    ``1e400`` (which parse as infinity), ``nan`` or a date decades ahead; rounding infinity
    raises, and passing on a wait of years tells the client nothing useful.
    """
    if seconds is None or math.isnan(seconds):
        return {"Retry-After": "1"}
    return {"Retry-After": str(math.ceil(min(max(seconds, 1.0), MAX_RETRY_AFTER)))}


def map_exception(exc: BaseException) -> ServiceError:
    """The one mapping from any exception raised while serving to an HTTP error.

    Messages are the library's, with every URL replaced: where the service's model
    endpoint lives is the operator's business, not the client's (it is logged instead).
    """
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, StarletteHTTPException):
        # an HTTP status raised by the framework around the app, such as a parent app's
        # body limit tripping while this app reads the body (413), is that status
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return http_error(exc.status_code, message, dict(exc.headers or {}))
    if not isinstance(exc, FieldwiseError):
        log.error("unexpected error while serving", exc_info=exc)
        return ServiceError(500, "internal_error", "Internal error; see the service log.")
    text = without_addresses(exc.message)
    if isinstance(exc, UnsupportedInputError):
        return ServiceError(415, "unsupported_file_type", text)
    if isinstance(exc, ContextLengthError):
        return ServiceError(400, "input_too_long", text)
    if isinstance(exc, ModerationError):
        return ServiceError(400, "input_flagged", text)
    if isinstance(exc, RateLimitError):
        headers = _retry_after(exc.retry_after)
        return ServiceError(429, "upstream_rate_limited", text, headers=headers)
    if isinstance(exc, APIError):
        status = f"HTTP {exc.status_code}" if exc.status_code else "an error"
        return ServiceError(502, "upstream_error", f"The model endpoint answered {status}: {text}")
    if isinstance(exc, APIConnectionError):  # timeouts included: the details are the log's
        log.warning("the model endpoint failed: %s", exc.message)
        if isinstance(exc, APITimeoutError):
            return ServiceError(504, "upstream_timeout", "The model endpoint did not answer.")
        return ServiceError(
            502, "upstream_unreachable", "The model endpoint could not be reached; try later."
        )
    if isinstance(exc, OutputError):
        return ServiceError(502, "unusable_output", f"{type(exc).__name__}: {text}")
    if isinstance(exc, ExtractionError):
        return ServiceError(502, "extraction_failed", text, field=_first_field(exc))
    if isinstance(exc, ConfigurationError):
        return ServiceError(500, "configuration_error", text)
    return ServiceError(500, "internal_error", text)


_ADDRESS = re.compile(r"\bhttps?://[^\s'\"<>()]+")


def without_addresses(text: str) -> str:
    """``text`` with every URL replaced: an upstream error names the endpoint's address,
    which is the operator's business, not the client's."""
    return _ADDRESS.sub("the model endpoint", text)


def _first_field(exc: ExtractionError) -> str | None:
    """The first failing field of the last attempt, as a dotted path (None for the root)."""
    if not exc.attempts or not exc.attempts[-1].errors:
        return None
    loc = exc.attempts[-1].errors[0].get("loc") or ()
    return ".".join(str(part) for part in loc) or None


def validation_error(errors: list[Any], *, json_expected: bool) -> ServiceError:
    """Turn FastAPI's request-validation errors into 400 (unparseable) or 422 (wrong shape).

    ``json_expected`` is false when the request did not declare a JSON content type: that
    is a 415, not a body that failed its schema.
    """
    if not json_expected:
        return ServiceError(415, "unsupported_media_type", "Send the body as application/json.")
    if any(e.get("type") == "json_invalid" for e in errors):
        return ServiceError(400, "bad_request", "The request body is not valid JSON.")
    said = [_said(error) for error in errors[:_NAMED]] or [(None, "Invalid request")]
    field = said[0][0]
    text = "; ".join(f"{where or 'body'}: {message}" for where, message in said)
    more = f" (+{len(errors) - _NAMED} more)" if len(errors) > _NAMED else ""
    return ServiceError(422, "validation_error", f"{text}{more}", field=field)


#: how many of a request's validation errors the message names (``field`` is the first's)
_NAMED = 3


def _said(error: Any) -> tuple[str | None, str]:
    """Where a request-validation error is (``text``, ``seed``) and what it says."""
    loc = [str(p) for p in error.get("loc", ()) if p != "body"]
    return ".".join(loc) or None, str(error.get("msg", "Invalid request"))
