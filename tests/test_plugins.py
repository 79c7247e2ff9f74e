"""The plugin system: entry points, environment filters, failures, priorities, docs."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldwise import Document, DocumentLoader, UnsupportedInputError, hookimpl, hookspecs
from fieldwise.plugins import (
    document_loaders,
    list_plugins,
    pick_table_adapter,
    register_plugin,
    reset_plugins,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_plugins() -> Iterator[None]:
    reset_plugins()
    yield
    reset_plugins()


def names() -> set[str]:
    return {info.name for info in list_plugins() if info.error is None}


def test_installed_plugins_are_found_by_entry_point() -> None:
    found = {info.name: info for info in list_plugins()}
    assert {"documents", "csv", "xlsx", "local"} <= set(found)
    assert found["documents"].version and "register_document_loaders" in found["documents"].hooks
    assert "register_backends" in found["local"].hooks


def test_load_only_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDWISE_LOAD_PLUGINS", "documents")
    assert names() == {"documents"}


def test_disable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDWISE_DISABLE_PLUGINS", "csv")
    assert "csv" not in names() and "xlsx" in names()
    with pytest.raises(UnsupportedInputError) as caught:
        pick_table_adapter(".csv")
    assert "xlsx" in str(caught.value)  # says what is installed


def test_a_broken_plugin_is_named_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[fieldwise]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    infos = {info.name: info for info in list_plugins()}
    assert "no_such_module_xyz" in (infos["broken"].error or "")
    assert any(loader.name == "pdf" for loader in document_loaders())


class RaisingPlugin:
    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        raise RuntimeError("plugin bug")


def test_a_raising_hook_does_not_take_down_the_others() -> None:
    unregister = register_plugin(RaisingPlugin(), name="raiser")
    try:
        assert any(loader.name == "pdf" for loader in document_loaders())
        infos = {info.name: info for info in list_plugins()}
        assert "plugin bug" in (infos["raiser"].error or "")
    finally:
        unregister()


class ShoutingText:
    """A third party's loader for .txt, preferred over the built-in one by priority."""

    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        def load(data: bytes, name: str) -> Document:
            return Document(data.decode().upper())

        register(DocumentLoader("shout", load, suffixes=(".txt",), priority=100))


def test_priority_picks_the_loader_and_the_document_says_which(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("hello")
    assert Document.open(path).metadata["loader"] == "text"
    unregister = register_plugin(ShoutingText(), name="shout")
    try:
        document = Document.open(path)
        assert document.text == "HELLO" and document.metadata["loader"] == "shout"
    finally:
        unregister()


def test_unsupported_suffix_lists_what_is_installed(tmp_path: Path) -> None:
    path = tmp_path / "scan.tiff"
    path.write_bytes(b"II*\x00")
    with pytest.raises(UnsupportedInputError, match=r"Installed:.*pdf"):
        Document.open(path)


def test_every_hook_is_documented_and_tested() -> None:
    docs = (ROOT / "docs/plugins.md").read_text()
    tests = Path(__file__).read_text() + "".join(
        p.read_text() for p in ROOT.glob("plugins/*/tests/*.py")
    )
    hooks = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("register_")
    ]
    assert hooks
    for hook in hooks:
        assert hook in docs, f"{hook} is not documented in docs/plugins.md"
        assert hook in tests, f"{hook} has no test"


class HelloCommand:
    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        parser = subparsers.add_parser("hello", help="say hello")

        def run(args: Any) -> int:
            print("hello from a plugin")
            return 0

        parser.set_defaults(func=run)


def test_register_commands_adds_a_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwise.cli import main

    unregister = register_plugin(HelloCommand(), name="hello")
    try:
        assert main(["hello"]) == 0
        assert capsys.readouterr().out == "hello from a plugin\n"
        assert main(["local", "status", "--json"]) in (0, 1)  # fieldwise-local's command
        assert "installed" in capsys.readouterr().out
    finally:
        unregister()


def test_plugins_command_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwise.cli import main

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "documents" in out and "register_document_loaders" in out
    assert sys.modules.get("fieldwise_documents") is not None


class LinesAdapter:
    """A third party's table adapter: one input per line of a ``.lines`` file, results
    written as JSON lines — built only from fieldwise's public plugin API."""

    @hookimpl
    def register_table_adapters(self, register: Any) -> None:
        from fieldwise import TableAdapter

        register(TableAdapter("lines", self.fill, suffixes=(".lines",)))

    @staticmethod
    def fill(path: Path, *, target: Any, extractor: Any, output: Any, **options: Any) -> Any:
        from fieldwise.tables import FillReport

        report = FillReport(output=str(output or path.with_suffix(".jsonl")))
        lines = path.read_text().splitlines()
        report.rows = report.planned = len(lines)
        batch = extractor.run_many(lines, target, concurrency=options.get("concurrency", 4))
        with open(report.output, "w") as out:
            for item in batch:
                out.write((item.value.model_dump_json() if item.ok else "null") + "\n")
        report.absorb(batch.summary)
        return report.to_dict()


def test_register_table_adapters_serves_fieldwise_fill(
    fake_llm: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldwise.cli import main

    schema = tmp_path / "m.py"
    schema.write_text("from pydantic import BaseModel\nclass P(BaseModel):\n    name: str\n")
    data = tmp_path / "people.lines"
    data.write_text("Ada\nBob\n")
    unregister = register_plugin(LinesAdapter(), name="lines")
    try:
        code = main(
            [
                "fill",
                str(data),
                "--schema",
                f"{schema}:P",
                "--from",
                "x",
                "--base-url",
                fake_llm.base_url,
                "--no-progress",
            ]
        )
    finally:
        unregister()
    assert code == 0, capsys.readouterr().err
    assert len((tmp_path / "people.jsonl").read_text().splitlines()) == 2
    assert len(fake_llm.requests) == 2


class FakeBackend:
    """A third party's backend: serves the loopback fake under the name ``fakeb``; what
    answers is named by an environment variable, as a model file would be."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    @hookimpl
    def register_backends(self, register: Any) -> None:
        import os

        from fieldwise import Backend, BackendEndpoint

        register(
            Backend(
                "fakeb",
                resolve=lambda arg: BackendEndpoint(self.base_url, model="served-model"),
                identity=lambda arg: os.environ.get("FAKEB_MODEL", "a"),
            )
        )


def test_register_backends_and_the_cache_key_names_what_answers(
    fake_llm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldwise import Extractor
    from tests.models import Person

    unregister = register_plugin(FakeBackend(fake_llm.base_url), name="fakeb")
    try:
        assert Extractor(model="fakeb").run("Ada", Person).cached is False
        assert fake_llm.requests[0].body["model"] == "served-model"
        assert Extractor(model="fakeb").run("Ada", Person).cached is True
        monkeypatch.setenv("FAKEB_MODEL", "b")  # another model behind the same name
        assert Extractor(model="fakeb").run("Ada", Person).cached is False
        assert len(fake_llm.requests) == 2
    finally:
        unregister()


class PricedBackend:
    """A backend whose model runs on this machine, so it names its price (nothing): on
    the endpoint its ``resolve`` returns, or up front on the backend itself."""

    def __init__(
        self,
        base_url: str,
        name: str,
        *,
        endpoint_price: tuple[float, float] | None = None,
        backend_price: tuple[float, float] | None = None,
    ) -> None:
        self.base_url, self.name = base_url, name
        self.endpoint_price, self.backend_price = endpoint_price, backend_price

    @hookimpl
    def register_backends(self, register: Any) -> None:
        from fieldwise import Backend, BackendEndpoint

        register(
            Backend(
                self.name,
                resolve=lambda arg: BackendEndpoint(
                    self.base_url, model="on-this-machine", price=self.endpoint_price
                ),
                price=self.backend_price,
            )
        )


def test_a_backend_price_makes_costs_known_and_max_cost_usable(fake_llm: Any) -> None:
    """An endpoint that reports no cost, behind a backend that names its price: every cost
    is known (0 here), so a batch with max_cost= runs every item instead of stopping after
    the first with "no price is known"."""
    from fieldwise import Extractor
    from tests.models import Person

    fake_llm.send_cost = False
    backend = PricedBackend(fake_llm.base_url, "freeb", endpoint_price=(0.0, 0.0))
    unregister = register_plugin(backend, name="freeb")
    try:
        with Extractor(model="freeb", cache=False) as ex:
            assert ex.run("Ada", Person).cost == 0.0
            items = list(ex.run_many(["Bob", "Cid", "Dan"], Person, max_cost=1.0))
            assert [item.ok for item in items] == [True, True, True]
            batch = ex.run_many(["Eve"], Person)
            assert [item.ok for item in batch] == [True] and batch.summary.cost == 0.0
    finally:
        unregister()


def test_a_backends_own_price_is_known_before_it_starts(fake_llm: Any) -> None:
    """A dry run's estimate asks for the cost before any server starts."""
    from fieldwise import Extractor
    from tests.models import Person

    fake_llm.send_cost = False
    backend = PricedBackend(fake_llm.base_url, "staticb", backend_price=(0.0, 0.0))
    unregister = register_plugin(backend, name="staticb")
    try:
        with Extractor(model="staticb", cache=False) as ex:
            assert ex.estimate_cost(1000, 100) == 0.0
            assert not fake_llm.requests  # nothing was started or asked
            assert ex.run("Ada", Person).cost == 0.0
            assert ex.run("Bob", Person).cost == 0.0  # under the served model's name too
    finally:
        unregister()


def test_a_plugin_with_an_unknown_hook_is_named_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written for a newer fieldwise (or misspelt): pluggy's check_pending() would refuse
    every plugin, and with them every command and Extractor(model=...)."""
    (tmp_path / "future_plugin.py").write_text(
        "from fieldwise import hookimpl\n\n@hookimpl\ndef register_exporters(register):\n    pass\n"
    )
    dist = tmp_path / "future_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: future-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[fieldwise]\nfuture = future_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    infos = {info.name: info for info in list_plugins()}
    assert "unknown hook(s) register_exporters" in (infos["future"].error or "")
    assert any(loader.name == "pdf" for loader in document_loaders())
    from fieldwise import Extractor
    from fieldwise.cli import main

    Extractor(model="gpt-4o-mini", api_key="k", base_url="http://127.0.0.1:9/v1")
    assert main(["plugins"]) == 0
    assert "FAILED: unknown hook(s) register_exporters" in capsys.readouterr().out


class BrokenCommands:
    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        raise RuntimeError("command bug")


class TakenCommandName:
    @hookimpl
    def register_commands(self, subparsers: Any) -> None:
        subparsers.add_parser("fill")


def test_a_failing_register_commands_leaves_the_command_line_working(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fieldwise.cli import main

    unregister = [
        register_plugin(BrokenCommands(), name="brokencmd"),
        register_plugin(TakenCommandName(), name="takencmd"),
    ]
    try:
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        assert "brokencmd" in out and "command bug" in out
        assert "takencmd" in out and "conflicting subparser: fill" in out
    finally:
        for undo in unregister:
            undo()


def test_fieldwise_plugins_reports_a_hook_that_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fieldwise.cli import main

    unregister = register_plugin(RaisingPlugin(), name="raiser")
    try:
        assert main(["plugins"]) == 0  # nothing collected the hook before
        assert "FAILED: register_document_loaders: RuntimeError: plugin bug" in (
            capsys.readouterr().out
        )
    finally:
        unregister()


class UnsureBackend:
    @hookimpl
    def register_backends(self, register: Any) -> None:
        from fieldwise import Backend, BackendEndpoint

        def available() -> bool:
            raise RuntimeError("cannot tell")

        register(
            Backend(
                "unsure",
                resolve=lambda arg: BackendEndpoint("http://127.0.0.1:9/v1", model="m"),
                available=available,
            )
        )


def test_a_backend_that_cannot_say_if_it_is_available_is_not_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fieldwise import Extractor

    for name in ("OPENROUTER_API_KEY", "FIELDWISE_MODEL", "FIELDWISE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FIELDWISE_LOAD_PLUGINS", "csv")  # no local backend to pick first
    unregister = register_plugin(UnsureBackend(), name="unsure")
    try:
        assert Extractor().model != "unsure"
    finally:
        unregister()


class UpperCaseSuffix:
    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        register(DocumentLoader("upper", lambda data, name: Document("up"), suffixes=(".NOTE",)))


def test_suffixes_match_whatever_their_case(tmp_path: Path) -> None:
    path = tmp_path / "a.note"
    path.write_text("x")
    unregister = register_plugin(UpperCaseSuffix(), name="upper")
    try:
        assert Document.open(path).metadata["loader"] == "upper"
    finally:
        unregister()
    with pytest.raises(UnsupportedInputError, match=r"Installed: .*csv \(\.csv"):
        pick_table_adapter(".ods")


def test_an_unsupported_suffix_suggests_installing_only_what_is_missing() -> None:
    """Both table plugins are installed here: the advice is to convert the file, not to
    install what is already there (found walking through the README as a new user)."""
    with pytest.raises(UnsupportedInputError) as caught:
        pick_table_adapter(".txt")
    message = str(caught.value)
    assert "csv (" in message and "xlsx (" in message
    assert "pip install" not in message and "Convert the file" in message
