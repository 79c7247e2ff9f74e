"""Network retry rules and HTTP → typed-error mapping, free of I/O.

Why a separate module: the sync and async transports (and their streaming variants) must make
the same decision for the same failure, so each rule lives here once: which failures are worth
another attempt, how long to wait (full-jitter exponential backoff, or the server's
``retry-after-ms`` / ``Retry-After``), and which ``fieldwise.exceptions`` type and message a
final failure becomes. Nothing here looks at message content; only at statuses, error codes and
error text sent by the endpoint.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import json
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .endpoints import is_openrouter
from .exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    FieldwiseError,
    InsufficientCreditsError,
    ModerationError,
    ProviderError,
    RateLimitError,
    redact,
)

__all__ = [
    "MAX_RETRY_AFTER",
    "Failure",
    "NetworkFault",
    "RetryPolicy",
    "failure_from_body_error",
    "failure_from_exception",
    "failure_from_shape",
    "failure_from_status",
    "failure_from_unfinished_stream",
    "failure_in_payload",
    "parse_retry_after",
]

_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "too many tokens",
    "prompt is too long",
)
_CONSTRAINT_HINTS = ("constraint", "require_parameters", "no endpoints found")
# Error codes that some servers put in a 200 body (or a stream chunk) instead of a status.
_CODE_STATUS = {
    "server_error": 500,
    "internal_error": 500,
    "internal_server_error": 500,
    "bad_gateway": 502,
    "service_unavailable": 503,
    "overloaded": 529,
    "overloaded_error": 529,
    "timeout": 408,
    "rate_limit_exceeded": 429,
    "rate_limited": 429,
    "too_many_requests": 429,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
    "invalid_request": 400,
    "insufficient_quota": 402,
    "moderation": 403,
}
_OTHER_PROVIDER = "Try again later or choose another provider with provider={'order': [...]}."


@dataclass(slots=True)
class Failure:
    """One failed attempt: what to raise if it is the last, and whether another may help."""

    kind: type[FieldwiseError]
    message: str
    advice: str
    retryable: bool
    retry_after: float | None = None
    status: int | None = None
    code: Any = None
    provider: str | None = None
    body: Any = None

    def for_service(self, openrouter: bool | None) -> Failure:
        """This failure with its key or credits advice named as ``openrouter`` says (the
        endpoint's profile; None: as the URL's host said when it was made). An error in a
        200 body or a stream chunk is made where only the URL is known."""
        if openrouter is None or self.kind not in (AuthenticationError, InsufficientCreditsError):
            return self
        return dataclasses.replace(self, advice=_account_advice(self.kind, openrouter))

    def error(self, attempts: int, *, max_retry_after: float | None = None) -> FieldwiseError:
        """The exception for this failure, ``attempts`` being how many requests were sent.

        ``max_retry_after`` is given when the wait the endpoint asked for was too long.
        """
        text = self.message
        if attempts > 1:
            text += f" (gave up after {attempts} attempts)"
        if max_retry_after is not None and self.retry_after is not None:
            text += (
                f". The endpoint asked to wait {self.retry_after:g} s before retrying, longer "
                f"than max_retry_after={max_retry_after:g} s, so fieldwise did not wait"
            )
        elif self.retry_after is not None:
            text += f" (the endpoint asked to wait {self.retry_after:g} s)"
        text = f"{text}. {self.advice}" if self.advice else text
        if issubclass(self.kind, APIError):
            return self.kind(
                text,
                status_code=self.status,
                code=self.code,
                provider=self.provider,
                retry_after=self.retry_after,
                body=_redacted(self.body),
            )
        return self.kind(text)


MAX_RETRY_AFTER = 60.0
"""The longest ``Retry-After`` waited for; a longer one fails the call (and a batch item)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many retries, and how long to wait before each."""

    retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = MAX_RETRY_AFTER

    def delay(self, failure: Failure, attempt: int, rng: random.Random) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``; None: raise now.

        The server's own ``Retry-After`` wins over backoff; one longer than
        ``max_retry_after`` is not waited for (the error then carries ``retry_after``).
        """
        if not failure.retryable or attempt >= self.retries:
            return None
        if failure.retry_after is not None:
            if failure.retry_after > self.max_retry_after:
                return None
            return failure.retry_after
        return rng.uniform(0.0, min(self.backoff_max, self.backoff_base * 2.0**attempt))

    def too_long(self, failure: Failure, attempt: int) -> bool:
        """True when a retry was allowed but the endpoint asked for too long a wait."""
        return (
            failure.retryable
            and attempt < self.retries
            and failure.retry_after is not None
            and failure.retry_after > self.max_retry_after
        )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        seconds = _finite(value)
        if seconds is not None:
            return max(0.0, seconds / 1000.0)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are GMT, never local time
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - time.time())


def _finite(text: str) -> float | None:
    """A number of seconds; "inf", "nan" and overflowing values are not one."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _error_fields(payload: Any) -> tuple[str, Any, dict[str, Any]]:
    """(message, code, metadata) from an OpenRouter/OpenAI/FastAPI-style error body."""
    error = payload.get("error", payload) if isinstance(payload, Mapping) else payload
    if isinstance(error, str):
        return error, None, {}
    if not isinstance(error, Mapping):
        return "", None, {}
    message = error.get("message") or error.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message)[:500]
    metadata = error.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}
    raw = metadata.get("raw")
    if raw and (not message or "provider returned error" in message.lower()):
        raw_text = raw if isinstance(raw, str) else json.dumps(raw)
        message = f"{message}: {raw_text[:300]}" if message else raw_text[:300]
    return message, error.get("code") or error.get("type"), metadata


def _account_advice(kind: type[FieldwiseError], openrouter: bool) -> str:
    """What to do about a refused key or an empty account, named as the service has them."""
    if kind is AuthenticationError:
        variable = "OPENROUTER_API_KEY" if openrouter else "OPENAI_API_KEY"
        return f"Check {variable} (or the api_key= you passed): it is missing, mistyped or revoked."
    where = " (https://openrouter.ai/settings/credits)" if openrouter else ""
    return (
        f"Add credits to the account{where} or lower max_tokens= so the request fits the "
        "remaining balance."
    )


def _describe(
    status: int | None,
    message: str,
    code: Any,
    metadata: Mapping[str, Any],
    model: str | None,
    openrouter: bool,
) -> tuple[type[FieldwiseError], str]:
    """The exception type and what-to-do-next advice for an error status (and code/message);
    the key and the credits are named as OpenRouter has them, or as any other service."""
    lowered = f"{message} {code}".lower()
    if status == 413 or (status in (400, 422) and any(h in lowered for h in _CONTEXT_HINTS)):
        return ContextLengthError, (
            "Shorten the input, split the document into parts, lower max_tokens=, or choose a "
            "model with a longer context window."
        )
    if status in (400, 422):
        return BadRequestError, (
            "The request was rejected as sent: check the options named in the message "
            "(model, mode, max_tokens, reasoning, provider)."
        )
    if status in (401, 402):
        kind = AuthenticationError if status == 401 else InsufficientCreditsError
        return kind, _account_advice(kind, openrouter)
    if status == 403:
        reasons = metadata.get("reasons")
        flagged = f"Moderation reasons: {', '.join(map(str, reasons))}. " if reasons else ""
        return ModerationError, (
            f"{flagged}Remove or rephrase the flagged content, or choose another model."
        )
    if status == 404:
        if any(h in lowered for h in _CONSTRAINT_HINTS):
            return BadRequestError, (
                f"No provider of model {model!r} supports all the requested parameters "
                "(a strict response_format with provider={'require_parameters': True}, tools, "
                "...): use mode='tools' or mode='json_object', or choose another model."
            )
        return BadRequestError, (
            f"Check the model id {model!r} (GET /models lists them) and base_url."
        )
    if status == 429:
        return RateLimitError, (
            "Lower concurrency, pass rate_limit= to run_many, or try again later."
        )
    if status == 408:
        return ProviderError, (
            "The request timed out upstream: lower max_tokens= or the reasoning effort. "
            + _OTHER_PROVIDER
        )
    return ProviderError, _OTHER_PROVIDER


def failure_from_status(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    url: str,
    model: str | None,
    openrouter: bool | None = None,
) -> Failure:
    """A non-2xx answer: retryable for 408/409/429/5xx unless ``x-should-retry`` says no."""
    try:
        payload: Any = json.loads(content) if content else None
    except ValueError:
        payload = content.decode("utf-8", "replace").strip()[:2000]
    message, code, metadata = _error_fields(payload)
    if 300 <= status < 400:
        where = headers.get("location", "elsewhere")
        return Failure(
            BadRequestError,
            f"HTTP {status} from {url}: the endpoint redirects to {where}",
            "Set base_url to the final address.",
            False,
            status=status,
            body=payload,
        )
    if openrouter is None:  # the endpoint's profile, else its host, says whose key it is
        openrouter = is_openrouter(url)
    kind, advice = _describe(status, message, code, metadata, model, openrouter)
    retry_after = parse_retry_after(headers)
    retryable = _retryable_status(status)
    hint = headers.get("x-should-retry")
    if hint in ("true", "false"):
        retryable = hint == "true"
    detail = f": {message[:500]}" if message else ""
    return Failure(
        kind,
        f"HTTP {status} from {url}{detail}",
        advice,
        retryable,
        retry_after=retry_after,
        status=status,
        code=code,
        provider=metadata.get("provider_name"),
        body=payload,
    )


def failure_from_body_error(
    error: Any, *, url: str, model: str | None, provider: str | None, payload: Any
) -> Failure:
    """An error reported inside a 200 answer, a stream chunk, or a ``finish_reason: error``.

    The code decides: a numeric code (or a known name) that maps to a retryable status is
    retried; an error without any code is treated as an upstream failure (502).
    """
    message, code, metadata = _error_fields({"error": error})
    status = _status_of(code)
    kind, advice = _describe(status, message, code, metadata, model, is_openrouter(url))
    detail = f": {message[:500]}" if message else ""
    shown = f" (code {code})" if code is not None else ""
    return Failure(
        kind,
        f"The endpoint {url} answered HTTP 200 but reported an error{shown}{detail}",
        advice,
        status is not None and _retryable_status(status),
        status=status,
        code=code,
        provider=metadata.get("provider_name") or provider,
        body=payload,
    )


def _status_of(code: Any) -> int | None:
    if code is None:
        return 502
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str):
        if code.isdigit():
            return int(code)
        return _CODE_STATUS.get(code.lower())
    return None


NetworkFault = Literal[
    "connect_timeout", "read_timeout", "refused", "dropped", "unreachable", "too_large", "other"
]
"""What went wrong when no answer came back; each HTTP library's errors are sorted into these
by the module that drives it (``_pool`` for httpx, ``_async_http`` for aiohttp)."""


def failure_from_unfinished_stream(url: str) -> Failure:
    """A stream whose bytes ended before ``data: [DONE]`` and any ``finish_reason``: the
    answer is incomplete, so it is retried like a dropped connection and never parsed,
    re-asked or cached."""
    return Failure(
        APIConnectionError,
        f"The stream from {url} ended before its end marker (no 'data: [DONE]' and no "
        "finish_reason): the connection was cut mid-answer",
        "Check base_url, that the server is running, and the network (proxy, firewall).",
        True,
    )


def failure_from_exception(
    exc: BaseException, fault: NetworkFault, *, url: str, timeout: float | None
) -> Failure:
    """A request that got no usable answer: timeouts and dropped connections are retried."""
    name = type(exc).__name__
    if fault in ("connect_timeout", "read_timeout"):
        if fault == "connect_timeout":
            what = f"Could not connect to {url} in time ({name})"
        else:
            limit = f" within timeout={timeout:g} s" if timeout else ""
            what = f"No answer from {url}{limit} ({name})"
        return Failure(
            APITimeoutError,
            what,
            "Increase timeout=, lower max_tokens= or the reasoning effort, or try again later.",
            True,
        )
    if fault == "refused":
        return Failure(
            APIConnectionError, f"Cannot send to {url}: {name}: {exc}", "Check base_url.", False
        )
    if fault == "too_large":
        return Failure(
            ProviderError,
            f"The answer from {url} was not read to its end: {exc}",
            "No chat completion is this large: check that base_url points at an "
            "OpenAI-compatible API.",
            False,
        )
    if fault == "dropped":
        what = f"The connection to {url} closed without a complete answer ({name}: {exc})"
    elif fault == "unreachable":
        what = f"Could not reach {url} ({name}: {exc})"
    else:
        return Failure(APIConnectionError, f"Request to {url} failed ({name}: {exc})", "", False)
    return Failure(
        APIConnectionError,
        what,
        "Check base_url, that the server is running, and the network (proxy, firewall).",
        True,
    )


def failure_in_payload(payload: Any, *, url: str, model: str | None) -> Failure | None:
    """What a parsed answer or stream chunk reports before its content is read: not a JSON
    object (a wrong shape), or an ``error`` member (an error in a 200 body); else None."""
    if not isinstance(payload, dict):
        return failure_from_shape(url, payload)
    if payload.get("error"):
        provider = payload.get("provider")
        return failure_from_body_error(
            payload["error"], url=url, model=model, provider=provider, payload=payload
        )
    return None


def failure_from_shape(url: str, payload: Any) -> Failure:
    """A 2xx answer that is not what was asked for (HTML, a wrong shape): not retried."""
    snippet = redact(str(payload)[:200])
    return Failure(
        ProviderError,
        f"The endpoint {url} answered with something that is not a chat completion: {snippet!r}",
        "Check base_url: it should point at an OpenAI-compatible API (usually ending in /v1).",
        False,
        body=payload,
    )


def _redacted(body: Any) -> Any:
    """``body`` with any known secret removed (an endpoint may echo request headers)."""
    if body is None:
        return None
    try:
        text = json.dumps(body)
    except (TypeError, ValueError):
        return redact(str(body))
    cleaned = redact(text)
    return body if cleaned == text else json.loads(cleaned)
