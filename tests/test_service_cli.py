"""``fieldwise serve``'s option handling: loading schemas, and refusing an open public bind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fieldwise import ConfigurationError
from fieldwise.cli import EXIT_USAGE, build_parser, main
from fieldwise.cli.serve import is_loopback, load_schemas

FORMS = """
from pydantic import BaseModel
from datetime import date


class Contact(BaseModel):
    name: str
    email: str | None = None


class Visit(BaseModel):
    contact: Contact
    day: date


class _Private(BaseModel):
    x: int


NOT_A_MODEL = 3
"""


@pytest.fixture
def forms(tmp_path: Path) -> Path:
    path = tmp_path / "svc_forms.py"
    path.write_text(FORMS)
    return path


def test_a_file_registers_every_model_defined_in_it(forms: Path) -> None:
    assert [m.__name__ for m in load_schemas(str(forms))] == ["Contact", "Visit"]


def test_a_module_name_works_too(forms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(forms.parent))
    assert [m.__name__ for m in load_schemas("svc_forms")] == ["Contact", "Visit"]
    assert [m.__name__ for m in load_schemas("svc_forms:Visit")] == ["Visit"]


def test_one_class_by_name(forms: Path) -> None:
    (model,) = load_schemas(f"{forms}:Contact")
    assert model.__name__ == "Contact"


@pytest.mark.parametrize(
    "suffix", [":NOT_A_MODEL", ":Missing", "/../nope.py", "_missing_module_for_sure"]
)
def test_bad_schema_specs_are_configuration_errors(forms: Path, suffix: str) -> None:
    spec = f"{forms}{suffix}" if suffix.startswith((":", "/")) else suffix
    with pytest.raises(ConfigurationError):
        load_schemas(spec)


def test_a_module_without_models_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "nothing_here.py"
    empty.write_text("from pydantic import BaseModel\nX = 1\n")
    with pytest.raises(ConfigurationError, match="defines no pydantic model"):
        load_schemas(str(empty))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_refuses_a_public_host_without_a_token(
    forms: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FIELDWISE_SERVICE_TOKEN", raising=False)
    code = main(["serve", "--schemas", str(forms), "--host", "0.0.0.0", "--port", "1"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "FIELDWISE_SERVICE_TOKEN" in err and "--insecure" in err


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--max-concurrency", "0", ">= 1"),
        ("--max-concurrency", "many", "whole number"),
        ("--queue-timeout", "-1", ">= 0"),
        ("--queue-timeout", "inf", "finite"),
        ("--queue-timeout", "nan", "finite"),
        ("--request-timeout", "0", "> 0"),
        ("--max-body-bytes", "0", ">= 1"),
        ("--max-upload-bytes", "-5", ">= 1"),
        ("--port", "70000", "0 to 65535"),
    ],
)
def test_serve_limits_out_of_range_are_usage_errors(
    capsys: pytest.CaptureFixture[str], option: str, value: str, allowed: str
) -> None:
    # Parsing only: a value that slipped through would otherwise start a server.
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--schemas", "forms.py", option, value])
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert option in err and allowed in err and "Traceback" not in err


def test_serve_is_a_registered_command() -> None:
    args = build_parser().parse_args(
        ["serve", "--schemas", "a.py", "--schemas", "b:C", "--max-concurrency", "4"]
    )
    assert args.schemas == ["a.py", "b:C"] and args.max_concurrency == 4
    assert args.host == "127.0.0.1" and args.port == 8000 and not args.insecure
    assert callable(args.func)


def test_serve_refuses_a_token_no_client_can_send(forms: Path) -> None:
    """A usage error (exit 2) before anything starts; on a port already taken, a server
    that went on to start would exit 1 instead."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-unused", "FIELDWISE_SERVICE_TOKEN": "svc token"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            sys.executable, "-m", "fieldwise", "serve", "--schemas", str(forms),
            "--port", str(port), "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
        ]  # fmt: skip
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "FIELDWISE_SERVICE_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert "svc token" not in done.stderr
