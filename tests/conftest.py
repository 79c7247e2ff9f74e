"""Shared fixtures: every test gets its own cache directory and a clean environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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
    yield
