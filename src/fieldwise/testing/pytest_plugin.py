"""The ``fieldwise`` pytest plugin (entry point ``pytest11``): the ``fake_llm`` fixture.

Imports the server lazily, so merely having fieldwise installed costs every pytest run nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._server import FakeLLM


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A started ``FakeLLM`` (no latency), stopped after the test."""
    from ._server import FakeLLM

    with FakeLLM() as fake:
        yield fake
