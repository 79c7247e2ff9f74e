"""Shared fixtures: every test gets its own cache directory and a clean environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_environment(fieldwise_env: Path) -> Iterator[None]:
    """Every test: no keys or model settings from the shell, its own cache directory."""
    yield
