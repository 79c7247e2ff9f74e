"""The ``fieldwise`` pytest plugin (entry point ``pytest11``): ``fake_llm``,
``answering_extractor`` and ``fieldwise_env``.

Imports the server and the client lazily, so merely having fieldwise installed costs every
pytest run nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._answering import Answer
    from ._recording import RecordingExtractor
    from ._server import FakeLLM


#: settings a developer's shell may carry that would change what a test talks to
ENVIRONMENT = (
    "OPENROUTER_API_KEY",
    "OPENAI_API_KEY",
    "FIELDWISE_MODEL",
    "FIELDWISE_BASE_URL",
    "FIELDWISE_LOAD_PLUGINS",
    "FIELDWISE_DISABLE_PLUGINS",
    "FIELDWISE_LOCAL_MODEL",
)


@pytest.fixture
def fieldwise_env(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """No keys or model settings from the environment, and a cache directory of the
    test's own (``FIELDWISE_CACHE_DIR``); returns that directory. Use it with
    ``autouse`` in a conftest to isolate every test. It does not hide a pulled offline
    model: an ``Extractor()`` given no ``model=``/``base_url=`` still picks it where
    ``fieldwise local pull`` was run, so tests should name their endpoint."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("FIELDWISE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started ``FakeLLM`` (no latency), stopped after the test."""
    from ._server import FakeLLM

    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def answering_extractor(
    fake_llm: FakeLLM,
) -> Iterator[Callable[..., RecordingExtractor]]:
    """A factory: ``answering_extractor(answer=None, **options)`` makes a real
    ``RecordingExtractor`` on ``fake_llm`` and, when ``answer`` is given, makes the fake
    answer with it (``answer_with``: the latest call's ``answer`` is the one in force).

    Defaults, which ``options`` override: the fake's model, ``api_key="test"``,
    ``cache=False``, ``network_retries=0`` and ``backoff_base=0.01``, so a failure costs
    no waiting. Every extractor made is closed after the test.
    """
    from ._answering import answer_with
    from ._recording import RecordingExtractor

    made: list[RecordingExtractor] = []

    def make(answer: Answer | None = None, **options: Any) -> RecordingExtractor:
        if answer is not None:
            answer_with(fake_llm, answer)
        settings: dict[str, Any] = {
            "model": fake_llm.model,
            "base_url": fake_llm.base_url,
            "api_key": "test",
            "cache": False,
            "network_retries": 0,
            "backoff_base": 0.01,
            **options,
        }
        extractor = RecordingExtractor(**settings)
        made.append(extractor)
        return extractor

    yield make
    for extractor in made:
        extractor.close()
