"""A stand-in extractor for adapter tests: answers from a function of the input text.

The adapter only needs ``run_many``; with this stub each row's answer (or failure) is
chosen by the test, with no server. The end-to-end tests use the real ``Extractor``
against the ``fake_llm`` loopback server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldwise.batch import BatchItem, BatchSummary
from fieldwise.result import Result, Usage


class StubBatch:
    def __init__(self, inputs: Iterable[Any], target: Any, answer: Callable[[str], Any]):
        self.inputs = inputs
        self.target = target
        self.answer = answer
        self.summary = BatchSummary()

    def __iter__(self) -> Iterator[BatchItem[Any]]:
        for index, text in enumerate(self.inputs):
            item: BatchItem[Any] = BatchItem(index, text)
            try:
                data = self.answer(text)
                if isinstance(data, BaseException):
                    raise data
                value = self.target.model_validate(data)
                usage = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, requests=1)
                item.result = Result(value, usage, 0.001, 1, False, "stub")
                self.summary.done += 1
                self.summary.usage = self.summary.usage + usage
            except Exception as exc:
                item.error = exc
                self.summary.failed += 1
            yield item


class StubExtractor:
    """``run_many`` only; records what it was given."""

    def __init__(self, answer: Callable[[str], Any]):
        self.answer = answer
        self.seen: list[str] = []
        self.inputs_type: type | None = None

    def run_many(self, inputs: Iterable[Any], target: Any, **options: Any) -> StubBatch:
        self.inputs_type = type(inputs)
        self.options = options

        def record() -> Iterator[Any]:
            for text in inputs:
                self.seen.append(text)
                yield text

        return StubBatch(record(), target, self.answer)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own cache, no keys or model settings from the environment."""
    for name in (
        "OPENROUTER_API_KEY",
        "OPENAI_API_KEY",
        "FIELDWISE_MODEL",
        "FIELDWISE_BASE_URL",
        "FIELDWISE_LOAD_PLUGINS",
        "FIELDWISE_DISABLE_PLUGINS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FIELDWISE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def stub() -> Callable[[Callable[[str], Any]], StubExtractor]:
    return StubExtractor
