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
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from ..exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    EmptyOutputError,
    ExtractionError,
    FieldwiseError,
    InsufficientCreditsError,
    ModerationError,
    OutputError,
    PluginError,
    RateLimitError,
    RefusalError,
    TruncatedOutputError,
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


#: on every response (``access.AccessLogMiddleware`` adds it), the success included
_REQUEST_ID = {
    "X-Request-ID": {
        "description": "the request's id in the access log",
        "required": True,
        "schema": {"type": "string"},
    }
}
#: on every 429: the service's queue and the model endpoint's rate limit both say when
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` argument declaring ``statuses`` with the error model, and the
    headers every answer carries (the success's body is the route's own model)."""
    declared: dict[int | str, dict[str, Any]] = {200: {"headers": _REQUEST_ID}}
    for status in sorted(set(statuses)):
        headers = {**_REQUEST_ID, **_RETRY_AFTER} if status == 429 else _REQUEST_ID
        declared[status] = {
            "model": ErrorResponse,
            "description": DESCRIPTIONS[status],
            "headers": headers,
        }
    return declared


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


#: nginx's "client closed request": the status logged for a client that left before it
#: was answered (nothing is sent: nobody is there to read it)
CLIENT_CLOSED = 499


def map_exception(exc: BaseException) -> ServiceError:
    """The one mapping from any exception raised while serving to an HTTP error.

    The messages are the service's own, written for an HTTP client: what failed and what it
    can do (try again, shorten the input, ask the service's operator). The library's
    messages advise a Python caller (``max_retries=``, which key to set) and name the model
    endpoint, which is the operator's business: they go to the service log instead.
    """
    if isinstance(exc, ServiceError):
        return exc
    if _client_left(exc):
        return ServiceError(CLIENT_CLOSED, "client_closed", "The client closed the connection.")
    if isinstance(exc, StarletteHTTPException):
        # an HTTP status raised by the framework around the app, such as a parent app's
        # body limit tripping while this app reads the body (413), is that status
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        return http_error(exc.status_code, message, dict(exc.headers or {}))
    if not isinstance(exc, FieldwiseError) or isinstance(exc, PluginError):
        # a bug, here or in a plugin (PluginError names it): the operator gets the traceback
        log.error("unexpected error while serving", exc_info=exc)
        return ServiceError(500, "internal_error", _INTERNAL)
    error = _for_client(exc)
    _log_failure(exc, error)
    return error


def _client_left(exc: BaseException) -> bool:
    """The client closed the connection while its body was read: Starlette's
    ``ClientDisconnect``, or the 400 FastAPI makes of one while it reads a JSON body."""
    return isinstance(exc, ClientDisconnect) or (
        isinstance(exc, StarletteHTTPException) and isinstance(exc.__cause__, ClientDisconnect)
    )


_INTERNAL = "Internal error; contact the service's operator if it persists."
_OPERATOR = "contact the service's operator"
#: (library error, status, type, what the client is told); the first match wins, so a
#: class comes before its bases
_ANSWERS: tuple[tuple[type[FieldwiseError], int, str, str], ...] = (
    (
        UnsupportedInputError,
        415,
        "unsupported_file_type",
        "This service has no document loader for this type of file; send the document in "
        "another format, or its text as JSON.",
    ),
    (
        ContextLengthError,
        400,
        "input_too_long",
        "The input is too long for the model's context window; shorten it, or send it in parts.",
    ),
    (
        ModerationError,
        400,
        "input_flagged",
        "The model provider's moderation refused the input; remove or rephrase what it flagged.",
    ),
    (
        AuthenticationError,
        502,
        "upstream_error",
        f"The model endpoint refused the service's credentials; {_OPERATOR}.",
    ),
    (
        InsufficientCreditsError,
        502,
        "upstream_error",
        f"The service's account with the model provider is out of credits; {_OPERATOR}.",
    ),
    (
        BadRequestError,
        502,
        "upstream_error",
        f"The model endpoint refused the service's request; {_OPERATOR} if it persists.",
    ),
    (APIError, 502, "upstream_error", "The model endpoint failed; try again later."),
    (
        APITimeoutError,
        504,
        "upstream_timeout",
        "The model endpoint did not answer in time; try again later.",
    ),
    (
        APIConnectionError,
        502,
        "upstream_unreachable",
        "The model endpoint could not be reached; try again later.",
    ),
    (
        TruncatedOutputError,
        502,
        "unusable_output",
        f"The model's answer was cut off at its length limit; try a shorter input, or {_OPERATOR}.",
    ),
    (
        RefusalError,
        502,
        "unusable_output",
        "The model refused to answer; rephrase the instructions or the input.",
    ),
    (EmptyOutputError, 502, "unusable_output", "The model's answer was empty; try again."),
    (OutputError, 502, "unusable_output", "The model's answer could not be used; try again."),
    (
        ConfigurationError,
        500,
        "configuration_error",
        f"The service is misconfigured; {_OPERATOR}.",
    ),
)


def _for_client(exc: FieldwiseError) -> ServiceError:
    """The error a library exception is for the HTTP client."""
    if isinstance(exc, RateLimitError):  # before APIError, its base
        return ServiceError(
            429,
            "upstream_rate_limited",
            "The model endpoint is rate limiting this service; try again after the "
            "Retry-After seconds.",
            headers=_retry_after(exc.retry_after),
        )
    if isinstance(exc, ExtractionError):
        return _never_validated(exc)
    if isinstance(exc, UnsupportedInputError) and type(exc) is not UnsupportedInputError:
        # a loader refused this very file (encrypted, damaged, empty, a scan, too large,
        # built to exhaust the reader): its message, written for whoever sent the file,
        # names the file and what to do; the client sent the file, so it tells them
        # nothing new
        return ServiceError(415, "unsupported_file_type", exc.message)
    for kind, status, type_, message in _ANSWERS:
        if isinstance(exc, kind):
            return ServiceError(status, type_, message)
    return ServiceError(500, "internal_error", _INTERNAL)


def _never_validated(exc: ExtractionError) -> ServiceError:
    field = _first_field(exc)
    tries = f" after {len(exc.attempts)} attempts" if len(exc.attempts) > 1 else ""
    advice = f"how to fill '{field}'" if field else "what to extract"
    return ServiceError(
        502,
        "extraction_failed",
        f"The model's answer did not fit the schema{tries}; try again, or send instructions "
        f"that say {advice}.",
        field=field,
    )


#: library errors whose message is about the service's own setup (its key, its credits,
#: where its endpoint is, which loaders it has), never about what a request sent
_ABOUT_THE_SERVICE = (
    ConfigurationError,
    AuthenticationError,
    InsufficientCreditsError,
    APIConnectionError,
    UnsupportedInputError,
)


def _log_failure(exc: FieldwiseError, error: ServiceError) -> None:
    """The library's message, for the operator: at warning level, or info when it was the
    client's own input (400, 415). What the endpoint or the model answered can quote the
    input, which the log does not hold: those messages are logged at debug level only,
    with their type and status at the usual level."""
    level = logging.WARNING if error.status >= 429 else logging.INFO
    if isinstance(exc, _ABOUT_THE_SERVICE):
        log.log(level, "%s: %s", type(exc).__name__, _one_line(exc.message))
        return
    status = getattr(exc, "status_code", None)
    upstream = f", status {status}" if status else ""
    log.log(level, "%s (%s%s)", error.type, type(exc).__name__, upstream)
    log.debug("%s: %s", type(exc).__name__, _one_line(exc.message))


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _one_line(text: str) -> str:
    """``text`` with its control characters escaped: a message from the model endpoint
    (or naming an upload) is logged as one line, never one that forges the next."""
    return _CONTROL.sub(lambda found: ascii(found[0])[1:-1], text)


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
