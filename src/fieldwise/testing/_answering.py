"""``answer_with``: let ``FakeLLM`` answer each request from a function of the input text.

Why: scripted replies are consumed in arrival order, so with concurrent calls (``run_many``,
a table fill) they cannot say which input gets which answer. A function of the input text
can, and it also decides which inputs fail, while everything between the test and the fake
(the client, retries, validation, the batch) is the real thing.
"""

from __future__ import annotations

import hashlib
import json as _json
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    InsufficientCreditsError,
    ModerationError,
    ProviderError,
    RateLimitError,
)
from . import _replies as reply
from ._render import Rendered
from ._replies import Reply
from ._server import FakeLLM, RecordedRequest

__all__ = ["Answer", "answer_with"]

Answer = Callable[[str], Any]

# An API error without a status_code: the status the client turns back into its class.
_STATUS_OF: tuple[tuple[type[APIError], int], ...] = (
    (ContextLengthError, 413),
    (BadRequestError, 400),
    (AuthenticationError, 401),
    (InsufficientCreditsError, 402),
    (ModerationError, 403),
    (RateLimitError, 429),
    (ProviderError, 502),
)
# Any other exception: 422 (a BadRequestError). Every error reply says "do not retry".
_OTHER_STATUS = 422
_NO_RETRY = {"x-should-retry": "false"}


def answer_with(fake: FakeLLM, answer: Answer) -> None:
    """Make ``fake`` answer every chat request with ``answer(input_text)``.

    ``input_text`` is the request's input: the content of its last user message (text parts
    joined by newlines), and on a re-ask (the client asking again after an answer that did
    not validate) the text of the input that started the conversation, never the feedback,
    whether that answer was ``answer``'s or a scripted reply's.
    What ``answer`` returns becomes the reply:

    - a dict, list, pydantic model (dumped by alias) or other JSON-able value: that JSON,
      delivered the way the request expects (content or the forced tool's arguments);
    - a ``str``: that exact raw text (to test repairs and malformed output);
    - a ``Reply`` (``fieldwise.testing.reply.*``): sent as it is;
    - ``None``: the fake's default, a valid instance of the request's schema;
    - an exception *instance*: an HTTP error that makes this one input fail, with header
      ``x-should-retry: false`` so no ``network_retries`` setting retries it. A
      ``fieldwise.APIError`` (``ProviderError``, ``RateLimitError``...) keeps its message,
      ``code`` and ``status_code`` (else its class's usual status: 502 for
      ``ProviderError``, 429 for ``RateLimitError``...), so the client raises the same class
      again, its message wrapped in the client's (``"HTTP 502 from URL: message. advice"``);
      any other exception becomes a 422 whose message is ``"TypeName: text"`` (the client
      raises ``BadRequestError``). A 429 says ``Retry-After: 0`` unless the error has its own
      ``retry_after`` (the batch still pauses and retries rate-limited inputs).

    An exception *raised* by ``answer`` is a bug in the test: the fake answers 500 and logs
    the traceback (the ``FakeLLM.handler`` rule). Scripted replies (``fake.script``) still
    come first; this replaces ``fake.handler``. Answers for several inputs may be computed
    concurrently with other work, so ``answer`` should be a pure function of its text.

    Example::

        def by_row(text):
            if "BOOM" in text:
                return ProviderError("upstream failed")
            return {"company": text.split()[0].upper()}

        answer_with(fake_llm, by_row)
    """
    answering = _Answering(answer)
    fake.handler = answering
    fake._answered = answering.answered


class _Answering:
    """The handler: finds the input of each request and renders ``answer(input)``.

    A re-ask is recognised by its shape: a conversation the fake answered (scripted or
    not), then that very answer as the assistant's message, then a user or tool message
    (the feedback). Its input is the conversation's. A few-shot example is an assistant
    message too, but not (unless it is byte for byte the fake's earlier answer to the same
    conversation) one the fake sent.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        # conversation (digest of its messages) -> (its input text, digest of the answer sent)
        self._said: dict[bytes, tuple[str, bytes]] = {}
        # the request last read, its input text and its digest (read by both hooks)
        self._last: tuple[RecordedRequest, str, bytes] | None = None

    def __call__(self, request: RecordedRequest) -> Reply | None:
        found = self._read(request)
        return None if found is None else _as_reply(self.answer(found[0]))

    def answered(self, request: RecordedRequest, out: Rendered) -> None:
        """Told of every chat answer, scripted or not: remember what was said to whom."""
        if out.said is None:
            return
        found = self._read(request)
        if found is not None:
            self._said[found[1]] = (found[0], _digest(out.said))

    def _read(self, request: RecordedRequest) -> tuple[str, bytes] | None:
        """(input text, digest of the messages) of a chat request, None without messages."""
        last = self._last
        if last is not None and last[0] is request:
            return last[1], last[2]
        body = request.body
        messages = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(messages, list) or not messages:
            return None
        text = self._input(messages)
        digest = _digest(messages)
        self._last = (request, text, digest)
        return text, digest

    def _input(self, messages: list[Any]) -> str:
        """A re-ask's input is its conversation's; any other request's is its last message."""
        if (
            len(messages) > 2
            and _role(messages[-2]) == "assistant"
            and _role(messages[-1]) in ("user", "tool")
        ):
            earlier = self._said.get(_digest(messages[:-2]))
            if earlier is not None and earlier[1] == _digest(_said(messages[-2])):
                return earlier[0]
        return _text(messages[-1])


def _as_reply(value: Any) -> Reply | None:
    """What ``answer`` returned, as the reply ``answer_with`` sends (see there)."""
    if value is None or isinstance(value, Reply):
        return value
    if isinstance(value, BaseException):
        return _error(value)
    if isinstance(value, str):
        return reply.text(value)
    if hasattr(value, "model_dump"):
        return reply.json(value.model_dump(mode="json", by_alias=True))
    from pydantic_core import to_jsonable_python

    return reply.json(to_jsonable_python(value))


def _error(exc: BaseException) -> Reply:
    if not isinstance(exc, APIError):
        text = str(exc)
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return reply.http_error(_OTHER_STATUS, message, headers=_NO_RETRY)
    status = exc.status_code
    if status is None or status < 400:
        status = next((s for kind, s in _STATUS_OF if isinstance(exc, kind)), 500)
    retry_after = exc.retry_after
    if retry_after is None and status == 429:
        retry_after = 0
    return reply.http_error(
        status, exc.message, retry_after=retry_after, code=exc.code, headers=_NO_RETRY
    )


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, Mapping) else None


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        return "\n".join(str(p.get("text", "")) for p in parts)
    return ""


def _said(message: Any) -> Any:
    """What an assistant message says: its first tool call's arguments, else its content."""
    calls = message.get("tool_calls") if isinstance(message, Mapping) else None
    if isinstance(calls, list) and calls and isinstance(calls[0], Mapping):
        function = calls[0].get("function")
        return function.get("arguments") if isinstance(function, Mapping) else None
    return message.get("content") if isinstance(message, Mapping) else None


def _digest(value: Any) -> bytes:
    raw = _json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=16).digest()
