"""``RecordingExtractor``: the real ``Extractor``, noting what its batches were given.

Why: code that drives ``run_many`` (a table adapter, a plugin) promises things the endpoint
cannot see: which inputs it feeds and in what order (identical inputs are sent once), that it
feeds them lazily rather than as a list, which options it passes. Recording at the batch's
door checks those promises while every call still goes through the real engine.

Kept apart from ``_answering`` so that importing ``fieldwise.testing`` (and running the fake
as a process) does not import the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any, TypeVar

from ..batch import AsyncBatch
from ..extractor import Extractor
from ..prompt import Input

__all__ = ["RecordingExtractor"]

T = TypeVar("T")


class RecordingExtractor(Extractor):
    """An ``Extractor`` that records what ``run_many``/``arun_many`` were given.

    ``seen``: every input the batches pulled, in the order pulled (over all batches);
    ``inputs_type``: the type of the last batch's ``inputs`` argument (``None`` before any
    batch); ``options``: the last batch's keyword options (``concurrency``, ``max_cost``,
    ``on_progress``...). Nothing else changes: the calls are the real ones.
    """

    inputs_type: type | None = None

    @cached_property
    def seen(self) -> list[Input]:
        return []

    @cached_property
    def options(self) -> dict[str, Any]:
        return {}

    def arun_many(self, inputs: Iterable[Input], target: type[T], **options: Any) -> AsyncBatch[T]:
        # ``run_many`` hands its arguments to ``arun_many``: one place records both.
        self.inputs_type = type(inputs)
        self.options = dict(options)
        return super().arun_many(self._record(inputs), target, **options)

    def _record(self, inputs: Iterable[Input]) -> Iterator[Input]:
        for data in inputs:
            self.seen.append(data)
            yield data
