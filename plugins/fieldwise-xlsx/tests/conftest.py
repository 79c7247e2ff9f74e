"""A clean environment for every test, and ``stub``: the ``answering_extractor`` fixture of
``fieldwise.testing``. ``stub(answer)`` is a real ``Extractor`` on the ``fake_llm`` loopback
server that answers each row with ``answer(row text)`` (an exception instance: that row
fails) and records what the adapter gave ``run_many`` (``seen``, ``inputs_type``,
``options``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fieldwise.testing import RecordingExtractor


@pytest.fixture(autouse=True)
def _isolated(fieldwise_env: Path) -> None:
    """Own cache, no keys or model settings from the environment."""


@pytest.fixture
def stub(
    answering_extractor: Callable[..., RecordingExtractor],
) -> Callable[..., RecordingExtractor]:
    return answering_extractor
