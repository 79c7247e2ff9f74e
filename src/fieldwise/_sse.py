"""Chat-completion streams: server-sent-event framing and chunk parsing, free of I/O.

Why hand-written: chat-completion streams use only ``data:`` fields and ``:`` comments
(OpenRouter's ``: OPENROUTER PROCESSING`` keep-alives), and a line-at-a-time state machine is
all the transport needs on top of the HTTP libraries' byte streams; no extra dependency. The
sync and async stream loops share ``LineSplitter`` and ``ChunkReader`` so they cannot disagree
about a line or an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._answer_size import MAX_ANSWER_BYTES, AnswerTooLarge
from ._retry import (
    Failure,
    failure_from_body_error,
    failure_from_shape,
    failure_from_unfinished_stream,
    failure_in_payload,
)

__all__ = [
    "ChatChunk",
    "ChunkReader",
    "LineSplitter",
    "SSEDecoder",
    "first_call_arguments",
    "first_call_id",
    "message_text",
    "parse_chunk",
]


class LineSplitter:
    """Bytes as they arrive → decoded lines without their endings (``\n``, ``\r\n`` or ``\r``).

    Lines may be any length (one SSE event can carry a whole JSON answer), and a ``\r\n``
    split across two reads is one line ending, not two. A stream longer than
    ``MAX_ANSWER_BYTES`` in all raises ``AnswerTooLarge``.
    """

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # the unfinished line, as it arrived (joined once)
        self._size = 0

    def feed(self, data: bytes) -> list[str]:
        self._size += len(data)
        if self._size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge
        if b"\n" not in data and b"\r" not in data:
            self._parts.append(data)
            return []
        if self._parts:
            self._parts.append(data)
            data = b"".join(self._parts)
        # Keep a trailing \r back: the \n that may complete it is in the next read.
        cut = len(data) - 1 if data[-1:] == b"\r" else len(data)
        lines = data[:cut].splitlines(keepends=True)
        self._parts = [data[cut:]] if cut < len(data) else []
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._parts.insert(0, lines.pop())
        return [line.rstrip(b"\r\n").decode("utf-8", "replace") for line in lines]

    def end(self) -> list[str]:
        """The last line, when the stream did not end with a line ending, then an empty
        line: it ends an event the stream left open (a server that closes right after its
        last ``data:`` line, without the blank line SSE puts after an event)."""
        rest, self._parts = b"".join(self._parts), []
        return [*(line.decode("utf-8", "replace") for line in rest.splitlines()), ""]


class SSEDecoder:
    """Feed it lines (without line endings); it returns an event's data when one completes."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Returns the event's joined ``data`` lines at the blank line that ends it, else None.

        Comments (``:`` lines) and the ``event``/``id``/``retry`` fields are ignored.
        """
        if not line:
            return self.flush()
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value[:1] == " " else value)
        return None

    def flush(self) -> str | None:
        """The pending event's data, if any (for a stream that ends without a blank line)."""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        return data


@dataclass(slots=True)
class ChatChunk:
    """One streamed event: deltas (None when absent), ``finish_reason`` and final ``usage``."""

    content: str | None = None
    reasoning: str | None = None
    tool_arguments: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    provider: str | None = None
    refusal: str | None = None
    id: str | None = None
    tool_call_id: str | None = None  # the first tool call's id, on the chunk that names it


def message_text(value: Any) -> str | None:
    """Message text as a string: some servers send content as a list of text parts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in value
        )
    return str(value)


def first_call_arguments(calls: Any) -> str | None:
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict) and call.get("index", 0) == 0:
                function = call.get("function")
                if isinstance(function, dict):
                    args = function.get("arguments")
                    return args if isinstance(args, str) or args is None else json.dumps(args)
    return None


def first_call_id(calls: Any) -> str | None:
    """The first tool call's ``id``, when this delta carries it (the first piece of the call)."""
    if isinstance(calls, list):
        for call in calls:
            if isinstance(call, dict) and call.get("index", 0) == 0:
                call_id = call.get("id")
                return call_id if isinstance(call_id, str) and call_id else None
    return None


def parse_chunk(data: str, *, url: str, model: str | None) -> ChatChunk | Failure:
    """One SSE ``data`` payload → ``ChatChunk``, or the ``Failure`` a mid-stream error reports."""
    try:
        payload = json.loads(data)
    except ValueError:
        return failure_from_shape(url, data)
    failure = failure_in_payload(payload, url=url, model=model)
    if failure is not None:
        return failure
    provider = payload.get("provider")
    chunk = ChatChunk(
        usage=payload.get("usage"),
        model=payload.get("model"),
        provider=provider,
        id=payload.get("id"),
    )
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        chunk.finish_reason = choice.get("finish_reason")
        if chunk.finish_reason == "error":
            error = choice.get("error") or {
                "message": "the stream ended with finish_reason 'error'"
            }
            return failure_from_body_error(
                error, url=url, model=model, provider=provider, payload=payload
            )
        delta = choice.get("delta") or {}
        chunk.content = message_text(delta.get("content"))
        chunk.reasoning = message_text(delta.get("reasoning") or delta.get("reasoning_content"))
        chunk.refusal = message_text(delta.get("refusal"))
        calls = delta.get("tool_calls")
        chunk.tool_arguments = first_call_arguments(calls)
        chunk.tool_call_id = first_call_id(calls)
    return chunk


class ChunkReader:
    """Lines of one stream in; a ``ChatChunk`` or ``Failure`` out when an event completes.

    ``done`` turns true at ``data: [DONE]``; ``unfinished()`` says, once the bytes end,
    whether the stream was cut short.
    """

    __slots__ = ("_decoder", "_finished", "_model", "_url", "done")

    def __init__(self, url: str, model: str | None) -> None:
        self._decoder = SSEDecoder()
        self._url = url
        self._model = model
        self._finished = False
        self.done = False

    def feed(self, line: str) -> ChatChunk | Failure | None:
        """None while an event is incomplete, and for everything after ``[DONE]``."""
        data = self._decoder.feed(line)
        if data is None or self.done:
            return None
        if data == "[DONE]":
            self.done = True
            return None
        chunk = parse_chunk(data, url=self._url, model=self._model)
        if isinstance(chunk, ChatChunk) and chunk.finish_reason:
            self._finished = True
        return chunk

    def unfinished(self) -> Failure | None:
        """After the last byte: a ``Failure`` when the stream ended with neither
        ``data: [DONE]`` nor a ``finish_reason``, which is a connection cut mid-answer (a
        proxy or gateway closing it cleanly), not the model's whole answer."""
        if self.done or self._finished:
            return None
        return failure_from_unfinished_stream(self._url)
