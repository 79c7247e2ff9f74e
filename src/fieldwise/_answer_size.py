"""How much of an answer the transports read: a cap, free of I/O.

Why a cap: a chat completion is kilobytes; an endpoint that sends megabytes without end is
broken or hostile, and reading it whole would fill memory. Both transports (httpx and
aiohttp, plain answers and streams) count the bytes they read with these, after
decompression, and stop at the cap; ``_retry`` turns ``AnswerTooLarge`` into a typed error.
"""

from __future__ import annotations

__all__ = ["MAX_ANSWER_BYTES", "AnswerBuffer", "AnswerTooLarge"]

#: Counted after decompression, so that a small compressed body cannot expand past it.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


class AnswerTooLarge(Exception):
    """Raised by the transports' readers once an answer passes ``MAX_ANSWER_BYTES``."""

    def __init__(self) -> None:
        super().__init__(f"the answer passed {MAX_ANSWER_BYTES} bytes")


class AnswerBuffer:
    """An answer's body, gathered chunk by chunk; ``add`` raises ``AnswerTooLarge`` past
    the cap, before the chunk that passes it is kept."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge
        self._parts.append(chunk)

    def content(self) -> bytes:
        return self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
