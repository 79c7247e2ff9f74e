"""Every error fieldwise raises, in one place.

Hierarchy::

    FieldwiseError
    ├── ConfigurationError        bad option or missing key/model, found before any call
    ├── SchemaError               a model the strict subset cannot express (compile time)
    ├── UnsupportedInputError     no installed plugin reads this input
    ├── PluginError               a plugin broke its contract (a bug in the plugin)
    ├── APIError                  the endpoint answered with an error (after network retries)
    │   ├── BadRequestError           400/404/422: the request itself is wrong
    │   │   └── ContextLengthError    the input does not fit the model's context
    │   ├── AuthenticationError       401
    │   ├── InsufficientCreditsError  402
    │   ├── ModerationError           403
    │   ├── RateLimitError            429 after retries
    │   └── ProviderError             5xx, upstream failure, error inside a 200 body
    ├── APIConnectionError        could not reach the endpoint (after retries)
    │   └── APITimeoutError       the endpoint did not answer in time (after retries)
    ├── OutputError               the model answered, but not with usable output
    │   ├── TruncatedOutputError  finish_reason "length"
    │   ├── RefusalError          the model refused
    │   └── EmptyOutputError      empty content (often: it all went into reasoning)
    ├── ExtractionError           out of re-asks: output never validated
    └── BudgetExceededError       a batch item not started: max_cost would be exceeded

Messages say what to do next. No message, repr or attribute ever holds the API key:
``redact`` is applied to every text that came from the network or the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import Usage

_SECRET_PATTERNS = [
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]+"),
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
]
#: the password of a URL's ``user:password@`` (a proxy's or an endpoint's)
_URL_PASSWORD = re.compile(r"(?<=://)(?=[^/@\s]*@)([^/:@\s]*):[^/@\s]*(?=@)")
#: a URL's ``token@`` without a password: a token sent as the user name
_URL_TOKEN = re.compile(r"(?<=://)[^/:@\s]+(?=@)")
_known_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret so that ``redact`` removes it from any text."""
    if secret and len(secret) >= 6:
        _known_secrets.add(secret)


def redact(text: str) -> str:
    """Remove API keys, bearer tokens and URL passwords from ``text``."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[REDACTED]", text)
    return _URL_TOKEN.sub("[REDACTED]", _URL_PASSWORD.sub(r"\1:[REDACTED]", text))


class FieldwiseError(Exception):
    """Base class of every fieldwise error.

    ``usage``: what the answered requests behind this error cost, when any were answered
    (an invalid answer re-asked, then a network error, still paid for the first).
    """

    usage: Usage | None = None

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(FieldwiseError):
    """An option, key or model setting is missing or wrong."""


class SchemaError(FieldwiseError):
    """The target type cannot be expressed as a strict JSON schema.

    ``path`` is the field path (``"items[].price"``) where the problem is.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UnsupportedInputError(FieldwiseError):
    """No installed plugin can read this input."""


class PluginError(FieldwiseError):
    """A plugin broke its contract: a loader returned something that is not a
    ``Document``, an adapter's report is not one, a command sets no function, or its code
    raised an error that is not fieldwise's (chained as ``__cause__``). A bug in the
    plugin, not in the input: ``plugin`` names it (``""`` when unknown).
    """

    def __init__(self, message: str, *, plugin: str = "") -> None:
        self.plugin = plugin  # keyword with a default, so that pickle can rebuild it
        super().__init__(message)


class APIError(FieldwiseError):
    """The endpoint answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: Any = None,
        provider: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.provider = provider
        self.retry_after = retry_after
        self.body = body
        super().__init__(message)


class BadRequestError(APIError):
    """The endpoint rejected the request (400/404/422)."""


class ContextLengthError(BadRequestError):
    """The input is longer than the model's context window."""


class AuthenticationError(APIError):
    """The API key was missing or rejected (401)."""


class InsufficientCreditsError(APIError):
    """The account has no credits left (402)."""


class ModerationError(APIError):
    """The input was flagged by the provider's moderation (403)."""


class RateLimitError(APIError):
    """Still rate limited (429) after the network retries."""


class ProviderError(APIError):
    """The upstream model or provider failed (5xx, or an error inside a 200 body)."""


class APIConnectionError(FieldwiseError):
    """The endpoint could not be reached, even after retries."""


class APITimeoutError(APIConnectionError):
    """The endpoint did not answer within the timeout, even after retries."""


class OutputError(FieldwiseError):
    """The model answered, but the answer cannot be used."""

    def __init__(self, message: str, *, raw: str | None = None, usage: Usage | None = None) -> None:
        self.raw = raw
        self.usage = usage
        super().__init__(message)


class TruncatedOutputError(OutputError):
    """The answer was cut off at the token limit (``finish_reason: length``)."""


class RefusalError(OutputError):
    """The model refused to answer."""


class EmptyOutputError(OutputError):
    """The answer had no content."""


class ExtractionError(FieldwiseError):
    """Every attempt's output failed validation, and no re-asks are left.

    ``attempts`` holds each attempt's raw output and the errors it had; ``usage`` is the
    usage summed over all attempts (you paid for them).
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: Sequence[Attempt] = (),  # a default, so that pickle can rebuild it
        usage: Usage | None = None,
    ) -> None:
        self.attempts = list(attempts)
        self.usage = usage
        super().__init__(message)

    @property
    def errors(self) -> list[list[dict[str, Any]]]:
        """The validation errors of each attempt."""
        return [a.errors for a in self.attempts]


class BudgetExceededError(FieldwiseError):
    """A batch item was not started: the batch's ``max_cost`` would have been exceeded
    (or the cost of the items so far is unknown, so the budget cannot be kept)."""


class Attempt:
    """One attempt's raw output and the errors that made it fail."""

    __slots__ = ("errors", "raw")

    def __init__(self, raw: str, errors: list[dict[str, Any]]) -> None:
        self.raw = raw
        self.errors = errors

    def __repr__(self) -> str:
        return f"Attempt(raw={self.raw[:80]!r}, errors={len(self.errors)})"
