"""What fieldwise hands plugins, and what it does when a plugin breaks its side of the
contract: a loader's or adapter's wrong answer or stray exception, a command without a
function, and the size check on bytes already in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fieldwise import (
    Document,
    DocumentLoader,
    PluginError,
    TableAdapter,
    UnsupportedInputError,
    hookimpl,
)
from fieldwise.plugins import register_plugin

ROOT = Path(__file__).resolve().parent.parent


# the autouse fixture, imported under its own name so that pytest finds it here
from tests.test_plugins import fresh_plugins as fresh_plugins  # noqa: E402


@pytest.fixture
def schema(tmp_path: Path) -> str:
    path = tmp_path / "m.py"
    path.write_text("from pydantic import BaseModel\nclass P(BaseModel):\n    name: str\n")
    return f"{path}:P"


def fill_args(table: Path, schema: str, base_url: str, *more: str) -> list[str]:
    return ["fill", str(table), "--schema", schema, "--from", "x", "--base-url", base_url,
            "--no-progress", *more]  # fmt: skip


class PathAdapter:
    """Hands the ``output`` keyword on to ``default_output`` as it came, as an adapter
    written from the docs does."""

    def __init__(self) -> None:
        self.outputs: list[object] = []

    @hookimpl
    def register_table_adapters(self, register: Any) -> None:
        register(TableAdapter("pathy", self.fill, suffixes=(".pathy",)))

    def fill(self, path: Path, *, output: Any, in_place: bool, **options: Any) -> Any:
        from fieldwise.tables import FillReport, default_output, input_file

        self.outputs.append(output)
        destination = default_output(input_file(path), output, in_place)
        destination.write_text("filled")
        return FillReport(output=str(destination)).to_dict()


def test_the_output_keyword_is_a_path_and_default_output_takes_strings(
    fake_llm: Any, tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o`` reached adapters as a str, which default_output could not take."""
    from fieldwise.cli import main
    from fieldwise.tables import default_output

    table, out = tmp_path / "t.pathy", tmp_path / "out.pathy"
    table.write_text("x\n")
    assert default_output(str(table), str(out), False) == out
    assert default_output(str(table), None, False) == tmp_path / "t.filled.pathy"
    adapter = PathAdapter()
    unregister = register_plugin(adapter, name="pathy")
    try:
        code = main(fill_args(table, schema, fake_llm.base_url, "-o", str(out)))
    finally:
        unregister()
    assert code == 0, capsys.readouterr().err
    assert adapter.outputs == [out] and isinstance(adapter.outputs[0], Path)
    assert out.read_text() == "filled"


class OneLoader:
    def __init__(self, load: Callable[[bytes, str], Any], **options: Any) -> None:
        self.loader = DocumentLoader("brk", load, suffixes=(".brk",), **options)

    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        register(self.loader)


def _raise_value_error(data: bytes, name: str) -> Document:
    raise ValueError("boom in the loader")


@pytest.mark.parametrize(
    "load, problem",
    [
        (lambda data, name: data.decode(), "load() returned str, not a fieldwise Document"),
        (_raise_value_error, "load() raised ValueError: boom in the loader"),
    ],
)
def test_a_loader_that_breaks_its_contract_is_a_plugin_error_naming_it(
    fake_llm: Any,
    tmp_path: Path,
    schema: str,
    capsys: pytest.CaptureFixture[str],
    load: Callable[[bytes, str], Any],
    problem: str,
) -> None:
    from fieldwise.cli import main

    path = tmp_path / "a.brk"
    path.write_text("text")
    unregister = register_plugin(OneLoader(load), name="brkplug")
    try:
        with pytest.raises(PluginError) as caught:
            Document.from_bytes(b"text", name="a.brk")
        code = main(["extract", str(path), "--schema", schema, "--base-url", fake_llm.base_url])
    finally:
        unregister()
    assert caught.value.plugin == "brkplug"
    message = str(caught.value)
    assert f"plugin 'brkplug' broke its contract: its document loader 'brk' {problem}" in message
    if "raised" in problem:
        assert isinstance(caught.value.__cause__, ValueError)
    assert code == 1  # printed as an error, not a traceback
    assert f"error: plugin 'brkplug' broke its contract: its document loader 'brk' {problem}" in (
        capsys.readouterr().err
    )


def test_a_loaders_own_fieldwise_error_goes_through_as_it_is() -> None:
    def refuse(data: bytes, name: str) -> Document:
        raise UnsupportedInputError(f"{name}: encrypted")

    unregister = register_plugin(OneLoader(refuse), name="brkplug")
    try:
        with pytest.raises(UnsupportedInputError, match="encrypted") as caught:
            Document.from_bytes(b"x", name="a.brk")
    finally:
        unregister()
    assert not isinstance(caught.value, PluginError)


def test_from_bytes_asks_check_size_before_load_as_open_does() -> None:
    """The service's uploads and stdin come through from_bytes: the cap held only for
    Document.open."""
    loaded: list[int] = []

    def load(data: bytes, name: str) -> Document:
        loaded.append(len(data))
        return Document(data.decode())

    def check_size(size: int, name: str) -> None:
        if size > 10:
            raise UnsupportedInputError(f"{name}: {size} bytes is over the 10 byte limit.")

    unregister = register_plugin(OneLoader(load, check_size=check_size), name="capped")
    try:
        with pytest.raises(UnsupportedInputError, match="11 bytes is over the 10 byte limit"):
            Document.from_bytes(b"x" * 11, name="big.brk")
        assert loaded == []  # refused before the loader read it
        assert Document.from_bytes(b"x" * 10, name="ok.brk").text == "x" * 10
    finally:
        unregister()


class OneAdapter:
    def __init__(self, fill: Callable[..., Any]) -> None:
        self.adapter = TableAdapter("bad", fill, suffixes=(".bad",))

    @hookimpl
    def register_table_adapters(self, register: Any) -> None:
        register(self.adapter)


def _adapter_blows_up(path: Path, **options: Any) -> Any:
    raise ValueError("adapter blew up")


@pytest.mark.parametrize(
    "fill, problem",
    [
        (lambda path, **options: None, "fill() returned NoneType, not a report dict"),
        (lambda path, **options: {"output": "x"}, "fill() returned a report without 'planned'"),
        (_adapter_blows_up, "fill() raised ValueError: adapter blew up"),
    ],
)
def test_an_adapter_that_breaks_its_contract_is_an_error_not_a_traceback(
    fake_llm: Any,
    tmp_path: Path,
    schema: str,
    capsys: pytest.CaptureFixture[str],
    fill: Callable[..., Any],
    problem: str,
) -> None:
    from fieldwise.cli import main

    table = tmp_path / "t.bad"
    table.write_text("x\n")
    unregister = register_plugin(OneAdapter(fill), name="badplug")
    try:
        code = main(fill_args(table, schema, fake_llm.base_url))
    finally:
        unregister()
    assert code == 1
    assert f"error: plugin 'badplug' broke its contract: its table adapter 'bad' {problem}" in (
        capsys.readouterr().err
    )


class Commands:
    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        subparsers.add_parser("nofunc", help="forgets set_defaults(func=...)")
        outer = subparsers.add_parser("outer", help="a command with sub-commands")
        inner = outer.add_subparsers(dest="outer_action").add_parser("inner")
        inner.set_defaults(func=lambda args: print("inner ran") or 0)


def test_a_plugin_command_without_func_names_the_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It printed the top-level help, as if the command did not exist."""
    from fieldwise.cli import main

    unregister = register_plugin(Commands(), name="cmdplug")
    try:
        assert main(["nofunc"]) == 1
        err = capsys.readouterr().err
        assert main(["outer", "inner"]) == 0  # a nested sub-command's own func still runs
        assert capsys.readouterr().out == "inner ran\n"
    finally:
        unregister()
    assert "error: plugin 'cmdplug' broke its contract: its command 'nofunc' sets no " in err
    assert "set_defaults(func=f)" in err


def test_the_plugin_docs_state_each_contract() -> None:
    docs = (ROOT / "docs/plugins.md").read_text()
    assert "set_defaults(func=_info)" in docs  # the commands example
    assert "must not call the model with it" in docs  # the extractor in a dry run
    assert "send each to `warn`" in docs  # report["warnings"] is not printed
    assert "| `output` | `pathlib.Path` or `None` |" in docs
    assert "`Document.from_bytes`" in docs and "within the cap" in docs
    assert "not package\n  names (`fieldwise-csv`)" in docs
    assert "| `PluginError` |" in (ROOT / "docs/errors.md").read_text()
