"""Finding plugins: same-named entry points, ties between plugins, what is listed, the
environment variables, misspelt hooks, and failures reported whole on one line each."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from fieldwise import Backend, BackendEndpoint, Document, DocumentLoader, hookimpl
from fieldwise.exceptions import UnsupportedInputError
from fieldwise.plugins import (
    backends,
    list_plugins,
    pick_document_loader,
    pick_table_adapter,
    register_plugin,
    reset_plugins,
)

# the autouse fixture, imported under its own name so that pytest finds it here
from tests.test_plugins import fresh_plugins as fresh_plugins


def install(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    package: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
) -> None:
    """A fake installed package in a folder of its own, put first on ``sys.path`` (so the
    package installed last is found first). Module names must be unique to the test:
    ``sys.modules`` outlives it."""
    root = tmp_path / package
    root.mkdir()
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    dist = root / f"{package.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[fieldwise]\n{lines}")
    monkeypatch.syspath_prepend(str(root))


def loader_module(name: str, suffix: str, priority: int = 0) -> str:
    return (
        "from fieldwise import Document, DocumentLoader, hookimpl\n\n"
        "@hookimpl\n"
        "def register_document_loaders(register):\n"
        f"    register(DocumentLoader({name!r}, lambda data, name: Document({name!r}),\n"
        f"                            suffixes=({suffix!r},), priority={priority}))\n"
    )


def backend_module(plugin: str) -> str:
    return (
        "from fieldwise import Backend, BackendEndpoint, hookimpl\n\n"
        "@hookimpl\n"
        "def register_backends(register):\n"
        "    register(Backend('twinb', description=" + repr(plugin) + ",\n"
        "        resolve=lambda arg: BackendEndpoint('http://127.0.0.1:9/v1', model='m')))\n"
    )


def tie_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "fieldwise.plugins" and "both register" in r.getMessage()
    ]


def test_a_second_package_with_the_same_entry_point_name_is_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It used to be dropped without a word, along with everything it registers."""
    from fieldwise.cli import main

    install(
        tmp_path, monkeypatch, "pkg-b", {"twin": "twin_b"}, {"twin_b": loader_module("b", ".tb")}
    )
    install(
        tmp_path, monkeypatch, "pkg-a", {"twin": "twin_a"}, {"twin_a": loader_module("a", ".ta")}
    )
    expected = "entry point 'twin' of package pkg-b skipped: package pkg-a has one of the same name"
    with caplog.at_level(logging.WARNING, logger="fieldwise.plugins"):
        infos = {info.name: info for info in list_plugins()}
    assert infos["twin (pkg-b)"].error == expected
    assert infos["twin"].error is None  # the plugin kept works: it is not shown as failed
    assert [loader.name for loader in infos["twin"].document_loaders] == ["a"]
    assert expected in caplog.text
    assert main(["plugins", "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert listed["twin (pkg-b)"]["errors"] == [expected] and listed["twin"]["errors"] == []


def test_equal_priority_ties_go_by_plugin_name_and_in_process_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not the order in which the entry points happen to be found (zeta is found first
    here), and an application or test can override what is installed."""
    install(tmp_path, monkeypatch, "pkg-alpha", {"alpha": "tie_alpha"}, {
        "tie_alpha": loader_module("alpha", ".tie", priority=5)
    })  # fmt: skip
    install(tmp_path, monkeypatch, "pkg-zeta", {"zeta": "tie_zeta"}, {
        "tie_zeta": loader_module("zeta", ".tie", priority=5)
    })  # fmt: skip
    path = tmp_path / "a.tie"
    path.write_text("x")
    with caplog.at_level(logging.WARNING, logger="fieldwise.plugins"):
        assert Document.open(path).metadata["loader"] == "alpha"
        assert Document.open(path).metadata["loader"] == "alpha"
    (warning,) = tie_warnings(caplog)  # once, however often the loaders are collected
    assert "'alpha' and 'zeta'" in warning and "'.tie' at priority 5" in warning

    class Mine:
        @hookimpl
        def register_document_loaders(self, register: Any) -> None:
            register(DocumentLoader("mine", lambda data, name: Document("mine"),
                                    suffixes=(".TIE",), priority=5))  # fmt: skip

    unregister = register_plugin(Mine(), name="mine")
    try:
        assert Document.open(path).metadata["loader"] == "mine"
    finally:
        unregister()


def test_two_backends_of_one_name_go_by_plugin_name_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install(tmp_path, monkeypatch, "pkg-bz", {"bz": "twin_bz"}, {"twin_bz": backend_module("bz")})
    install(tmp_path, monkeypatch, "pkg-ba", {"ba": "twin_ba"}, {"twin_ba": backend_module("ba")})
    with caplog.at_level(logging.WARNING, logger="fieldwise.plugins"):
        assert backends()["twinb"].description == "ba"
    (warning,) = tie_warnings(caplog)
    assert "'ba' and 'bz'" in warning and "backend named 'twinb'" in warning


class Shows:
    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        register(DocumentLoader("shout", lambda data, name: Document("x"), suffixes=(".shout",),
                                media_types=("text/x-shout",), priority=7))  # fmt: skip

    @hookimpl
    def register_backends(self, register: Any) -> None:
        register(Backend("shoutb", resolve=lambda arg: BackendEndpoint("http://h/v1", "m")))


def test_fieldwise_plugins_shows_what_each_plugin_registered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fieldwise.cli import main

    unregister = register_plugin(Shows(), name="shows")
    try:
        assert main(["plugins", "--json"]) == 0
        listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
        assert main(["plugins"]) == 0
        text = capsys.readouterr().out
    finally:
        unregister()
    assert listed["shows"]["document_loaders"] == [
        {"name": "shout", "suffixes": [".shout"], "media_types": ["text/x-shout"], "priority": 7}
    ]
    assert listed["shows"]["table_adapters"] == [] and listed["shows"]["backends"] == ["shoutb"]
    assert {"name": "csv", "suffixes": [".csv", ".tsv"]}.items() <= (
        listed["csv"]["table_adapters"][0].items()
    )
    assert "document loaders: shout (.shout, priority 7)" in text
    assert "backends: shoutb" in text


class Misspelt:
    @hookimpl
    def register_document_loader(self, register: Any) -> None:  # no trailing s
        register(DocumentLoader("typo", lambda data, name: Document("x"), suffixes=(".typo",)))


def test_register_plugin_leaves_out_a_misspelt_hook_as_entry_points_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="fieldwise.plugins"):
        unregister = register_plugin(Misspelt(), name="typo")
    try:
        info = {info.name: info for info in list_plugins()}["typo"]
        assert "unknown hook(s) register_document_loader: misspelt" in (info.error or "")
        assert info.hooks == ()  # not registered
        assert "unknown hook(s) register_document_loader" in caplog.text
    finally:
        unregister()
    assert "typo" not in {info.name for info in list_plugins()}


def test_unknown_names_in_the_environment_variables_are_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """They did nothing, unseen: most often a package name given for a plugin's."""
    monkeypatch.setenv("FIELDWISE_LOAD_PLUGINS", "documents,csv,nosuch")
    monkeypatch.setenv("FIELDWISE_DISABLE_PLUGINS", "fieldwise-csv")
    with caplog.at_level(logging.WARNING, logger="fieldwise.plugins"):
        assert {info.name for info in list_plugins()} == {"documents", "csv"}
    assert "FIELDWISE_LOAD_PLUGINS names 'nosuch', which no installed plugin has" in caplog.text
    assert "as `fieldwise plugins` shows them: csv, documents, local, xlsx" in caplog.text
    assert "'fieldwise-csv' is a package; its plugins are csv" in caplog.text


def test_a_file_nothing_loaded_reads_names_the_plugins_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIELDWISE_DISABLE_PLUGINS", "csv")
    with pytest.raises(UnsupportedInputError) as caught:
        pick_table_adapter(".csv")
    assert "'csv' (FIELDWISE_DISABLE_PLUGINS disables it)" in str(caught.value)
    monkeypatch.delenv("FIELDWISE_DISABLE_PLUGINS")
    monkeypatch.setenv("FIELDWISE_LOAD_PLUGINS", "documents")
    reset_plugins()
    with pytest.raises(UnsupportedInputError, match=r"'xlsx' \(FIELDWISE_LOAD_PLUGINS does "
                       r"not name it\)"):  # fmt: skip
        pick_table_adapter(".xlsx")


def test_a_disabled_plugin_is_never_imported_even_on_the_way_to_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin is often disabled because importing it breaks (here: it exits)."""
    install(tmp_path, monkeypatch, "pkg-exiter", {"exiter": "exiter_at_import"}, {
        "exiter_at_import": "raise SystemExit(3)\n"
    })  # fmt: skip
    monkeypatch.setenv("FIELDWISE_DISABLE_PLUGINS", "exiter")
    reset_plugins()
    with pytest.raises(UnsupportedInputError, match=r"'exiter' \(FIELDWISE_DISABLE_PLUGINS"):
        pick_document_loader(".nothing-reads-this")


class TwoFailures:
    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        raise RuntimeError("loader hook broken")

    @hookimpl
    def register_table_adapters(self, register: Any) -> None:
        raise RuntimeError("adapter hook broken\n{'a dump': 'on more lines'}")


def test_every_failure_of_a_plugin_is_kept_one_line_each() -> None:
    unregister = register_plugin(TwoFailures(), name="two")
    try:
        info = {info.name: info for info in list_plugins()}["two"]
    finally:
        unregister()
    assert info.errors == (
        "register_document_loaders: RuntimeError: loader hook broken",
        "register_table_adapters: RuntimeError: adapter hook broken",
    )
    assert info.error == "; ".join(info.errors)


def test_a_module_given_as_two_entry_points_is_one_line_naming_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pluggy's own error appends a dump of every plugin, over many lines."""
    from fieldwise.cli import main

    install(tmp_path, monkeypatch, "pkg-double", {"first": "double_mod", "second": "double_mod"}, {
        "double_mod": loader_module("double", ".double")
    })  # fmt: skip
    infos = {info.name: info for info in list_plugins()}
    assert infos["second"].error == (
        "double_mod is plugin 'first' already: one module can be one plugin only, so one of "
        "the two entry points must go"
    )
    assert main(["plugins"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "second" in line]
    assert "FAILED: double_mod is plugin 'first' already" in line


def test_fill_help_names_no_fixed_list_of_table_types(capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwise.cli import main

    with pytest.raises(SystemExit):
        main(["fill", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "a table file a plugin reads (`fieldwise plugins` lists them)" in out
    assert ".xlsm" not in out
