"""Test helpers: ``FakeLLM``, a loopback OpenAI/OpenRouter chat-completions server.

Shipped with the package so users can test their own extraction code without a network or a
key::

    from fieldwise.testing import FakeLLM, reply

    with FakeLLM() as fake:
        fake.script(reply.http_error(429, retry_after=0), reply.json({"name": "Ada"}))
        ex = Extractor(model="fake/model", base_url=fake.base_url, api_key="test")
        ...

With pytest, the ``fake_llm`` fixture (registered by the ``fieldwise`` pytest plugin) yields
a started ``FakeLLM``. ``python -m fieldwise.testing`` runs one as a separate process.
"""

from __future__ import annotations

from . import _replies as reply
from ._replies import Reply
from ._sample import sample
from ._server import FakeLLM, RecordedRequest

__all__ = ["FakeLLM", "RecordedRequest", "Reply", "reply", "sample"]
