"""Test helpers: ``FakeLLM``, a loopback OpenAI/OpenRouter chat-completions server.

Shipped with the package so users can test their own extraction code without a network or a
key::

    from fieldwise.testing import FakeLLM, reply

    with FakeLLM() as fake:
        fake.script(reply.http_error(429, retry_after=0), reply.json({"name": "Ada"}))
        ex = Extractor(model="fake/model", base_url=fake.base_url, api_key="test")
        ...

``answer_with(fake, answer)`` answers each request from ``answer(input_text)`` instead (a
value, or an exception instance to make that input fail), so concurrent batches get the
right answer per input. ``RecordingExtractor`` is the real ``Extractor`` noting what its
batches were given (``seen``, ``inputs_type``, ``options``).

With pytest (the ``fieldwise`` plugin, registered on install): ``fake_llm`` yields a started
``FakeLLM``; ``answering_extractor(answer, **options)`` makes a ``RecordingExtractor`` on it
that answers with ``answer``. ``python -m fieldwise.testing`` runs a fake as a separate
process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _replies as reply
from ._answering import Answer, answer_with
from ._replies import Reply
from ._sample import sample
from ._server import FakeLLM, RecordedRequest

if TYPE_CHECKING:
    from ._recording import RecordingExtractor

__all__ = [
    "Answer",
    "FakeLLM",
    "RecordedRequest",
    "RecordingExtractor",
    "Reply",
    "answer_with",
    "reply",
    "sample",
]


def __getattr__(name: str) -> Any:
    # Lazy: the client is only imported by those who use it (not by the fake's process).
    if name == "RecordingExtractor":
        from ._recording import RecordingExtractor

        return RecordingExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
