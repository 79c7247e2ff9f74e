"""Fixtures: the real default model (pulled once into the data directory) and a clean
environment, so the tests run with the plugin's defaults whatever the shell says."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import fieldwise_local
import pytest
from fieldwise_local._settings import ENV_DATA_DIR, ENV_VARS

from fieldwise.plugins import backends, reset_plugins
from fieldwise.registry import Backend


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Defaults for every FIELDWISE_LOCAL_* setting; the data directory is left alone (it
    is where the pulled model lives)."""
    for variable in ENV_VARS:
        if variable != ENV_DATA_DIR:
            monkeypatch.delenv(variable, raising=False)
    for variable in ("FIELDWISE_LOAD_PLUGINS", "FIELDWISE_DISABLE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    fieldwise_local.configure(None)
    yield
    fieldwise_local.configure(None)


@pytest.fixture(scope="session")
def model_file() -> Path:
    """The default model, installed for real (a no-op when `fieldwise local pull` ran)."""
    return fieldwise_local.pull()


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with no model in it."""
    folder = tmp_path / "data"
    monkeypatch.setenv(ENV_DATA_DIR, str(folder))
    return folder


@pytest.fixture
def copied_model(model_file: Path, empty_data_dir: Path) -> Path:
    """A private copy of the installed model (with its stamp), safe to damage."""
    target = fieldwise_local.default_model_path()
    target.parent.mkdir(parents=True)
    shutil.copy2(model_file, target)
    assert fieldwise_local.verify(target)  # hashes the copy once and stamps it
    return target


@pytest.fixture
def local_backend() -> Backend:
    """The backend as the core sees it, through the real entry point and plugin manager."""
    if "local" not in backends():
        reset_plugins()  # another test may have filtered plugins; load them afresh
    return backends()["local"]


@pytest.fixture(scope="module")
def server(model_file: Path) -> Iterator[fieldwise_local.LocalServer]:
    """One running server for a module's tests; stopped afterwards."""
    started = fieldwise_local.start(settings=fieldwise_local.LocalSettings())
    yield started
    fieldwise_local.stop()
