"""The ``fieldwise`` command, in-process and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fieldwise.cli import main
from fieldwise.testing import FakeLLM, reply

MODELS = """
from pydantic import BaseModel

class Person(BaseModel):
    name: str
    age: int
"""


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def test_extract_prints_validated_json(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_llm.script(reply.json({"name": "Ada", "age": 36}))
    text = tmp_path / "note.txt"
    text.write_text("Ada is 36.")
    code = main(
        [
            "extract",
            str(text),
            "--schema",
            f"{schema_file}:Person",
            "--base-url",
            fake_llm.base_url,
            "--usage",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == {"name": "Ada", "age": 36}
    assert "tokens=" in err and "cost=" in err
    assert fake_llm.requests[0].body["messages"][-1]["content"] == "Ada is 36."


def test_max_tokens_is_sent_and_checked(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The truncation error says to raise max_tokens: the command line can."""
    text = tmp_path / "note.txt"
    text.write_text("Ada is 36.")
    args = ["extract", str(text), "--schema", f"{schema_file}:Person"]
    args += ["--base-url", fake_llm.base_url, "--no-cache"]
    fake_llm.script(reply.truncated(), reply.json({"name": "Ada", "age": 36}))
    assert main(args) == 1
    assert "max_tokens" in capsys.readouterr().err
    assert main([*args, "--max-tokens", "900"]) == 0
    assert fake_llm.requests[-1].body["max_tokens"] == 900
    with pytest.raises(SystemExit) as usage:
        main([*args, "--max-tokens", "0"])
    assert usage.value.code == 2 and ">= 1" in capsys.readouterr().err


def test_schema_command_shows_schema_and_lowerings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "from pydantic import BaseModel, Field\n"
        "class Tags(BaseModel):\n"
        "    tags: str = Field(min_length=2)\n"
        "    extra: dict[str, int]\n"
    )
    assert main(["schema", f"{path}:Tags", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["response_format"]["json_schema"]["strict"] is True
    assert {entry["path"] for entry in out["report"]} >= {"tags", "extra"}


def test_bad_schema_spec_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "no_such_module_xyz:Model"]) == 2  # a usage error, as in fill
    assert "importing 'no_such_module_xyz' failed" in capsys.readouterr().err
    assert main(["schema", "justaname"]) == 2
    assert "MODULE:CLASS" in capsys.readouterr().err


def test_a_misspelt_class_lists_the_models_the_file_defines(
    schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", f"{schema_file}:Persn"]) == 2
    err = capsys.readouterr().err
    assert "has no attribute 'Persn'" in err and "It defines: Person" in err


def test_missing_key_for_openrouter_says_what_to_do(
    schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "note.txt"
    text.write_text("Ada is 36.")
    code = main(
        [
            "extract",
            str(text),
            "--schema",
            f"{schema_file}:Person",
            "--base-url",
            "https://openrouter.ai/api/v1",
        ]
    )
    assert code == 2 and "OPENROUTER_API_KEY" in capsys.readouterr().err


def test_plugins_command_lists_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert isinstance(listed, list)
    for plugin in listed:
        assert {"name", "version", "hooks"} <= set(plugin)


def test_cache_stats_and_clear(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "note.txt"
    text.write_text("Ada is 36.")
    args = [
        "extract",
        str(text),
        "--schema",
        f"{schema_file}:Person",
        "--base-url",
        fake_llm.base_url,
    ]
    assert main(args) == 0 and main(args) == 0
    assert len(fake_llm.requests) == 1  # the second run came from the cache
    capsys.readouterr()
    assert main(["cache", "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 1 and stats["entries_with_unknown_cost"] == 0
    assert stats["cost_saved_per_rerun"] > 0  # the fake reports a cost
    assert main(["cache", "clear"]) == 0
    assert main(args) == 0 and len(fake_llm.requests) == 2


def test_eval_compares_configurations(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"input": "Ada is 36", "expected": {"name": "Ada", "age": 36}})
        + "\n"
        + json.dumps({"input": "Bob is 40", "expected": {"name": "Bob", "age": 40}})
        + "\n"
    )

    def answer(request: object) -> object:
        text = request.body["messages"][-1]["content"]  # type: ignore[attr-defined]
        if not isinstance(text, str) or " is " not in text:
            return reply.json({"name": "x", "age": 1})
        name, age = text.split(" is ")
        return reply.json({"name": name, "age": int(age) if name == "Ada" else 41})

    fake_llm.handler = answer
    code = main(
        [
            "eval",
            str(gold),
            "--schema",
            f"{schema_file}:Person",
            "--base-url",
            fake_llm.base_url,
            "--json",
            "--no-cache",
            "--compare",
            "max_retries=0",
            "max_retries=1",
        ]
    )
    assert code == 0
    configs = json.loads(capsys.readouterr().out)["configs"]
    for report in configs.values():
        assert report["n"] == 2 and report["schema_valid"] == 1.0
        assert report["exact_object"] == 0.5
        assert report["fields"] == {"age": 0.5, "name": 1.0}
        assert report["tokens"] > 0 and report["cost"] > 0


def test_module_entry_point_runs_as_a_process(schema_file: Path) -> None:
    with FakeLLM() as fake:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fieldwise",
                "extract",
                "-",
                "--schema",
                f"{schema_file}:Person",
                "--base-url",
                fake.base_url,
                "--no-cache",
            ],
            input="Ada is 36.",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == {"name", "age"}


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "extract" in capsys.readouterr().out


def test_extract_from_a_pdf_through_the_documents_plugin(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="Ada Lovelace is 36 years old.")
    path = tmp_path / "note.pdf"
    pdf.output(str(path))
    fake_llm.script(reply.json({"name": "Ada Lovelace", "age": 36}))
    assert (
        main(
            [
                "extract",
                str(path),
                "--schema",
                f"{schema_file}:Person",
                "--base-url",
                fake_llm.base_url,
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"name": "Ada Lovelace", "age": 36}
    sent = fake_llm.requests[0].body["messages"][-1]["content"]
    assert "Ada Lovelace is 36 years old." in sent


def test_eval_reads_input_files_relative_to_the_gold_file(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ada.txt").write_text("Ada is 36")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"input_file": "docs/ada.txt", "expected": {"name": "Ada", "age": 36}}) + "\n"
    )
    fake_llm.script(reply.json({"name": "ada ", "age": 36.0}))
    assert (
        main(
            [
                "eval",
                str(gold),
                "--schema",
                f"{schema_file}:Person",
                "--base-url",
                fake_llm.base_url,
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["exact_object"] == 1.0  # case and whitespace normalised
    assert fake_llm.requests[0].body["messages"][-1]["content"] == "Ada is 36"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"expected": {}}\n')
    assert main(["eval", str(bad), "--schema", f"{schema_file}:Person"]) == 2
    assert "needs 'input' or 'input_file'" in capsys.readouterr().err


class _Stdin:
    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)


def test_extract_reads_stdin_as_bytes_through_the_loaders(
    fake_llm: FakeLLM,
    schema_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Text in any encoding, a PDF by its magic bytes, and empty input refused."""
    args = ["extract", "-", "--schema", f"{schema_file}:Person"]
    args += ["--base-url", fake_llm.base_url, "--no-cache"]
    fake_llm.script(reply.json({"name": "José", "age": 3}))
    monkeypatch.setattr(sys, "stdin", _Stdin("Café owner José, 3".encode("cp1252")))
    assert main(args) == 0
    assert fake_llm.requests[-1].body["messages"][-1]["content"] == "Café owner José, 3"
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="Ada Lovelace is 36 years old.")
    monkeypatch.setattr(sys, "stdin", _Stdin(bytes(pdf.output())))
    assert main(args) == 0
    assert "Ada Lovelace is 36" in fake_llm.requests[-1].body["messages"][-1]["content"]
    sent = len(fake_llm.requests)
    monkeypatch.setattr(sys, "stdin", _Stdin(b" \n"))
    capsys.readouterr()
    assert main(args) == 1
    assert "stdin is empty" in capsys.readouterr().err and len(fake_llm.requests) == sent


def _pdf_bytes(*pages: str | None) -> bytes:
    """A PDF whose pages say the given texts; ``None``: a page with an image and no text."""
    fpdf = pytest.importorskip("fpdf")
    image = pytest.importorskip("PIL.Image")
    pdf = fpdf.FPDF()
    for text in pages:
        pdf.add_page()
        if text is None:
            pdf.image(image.new("RGB", (40, 20), "black"), x=10, y=10, w=40)
        else:
            pdf.set_font("Helvetica", size=12)
            pdf.cell(text=text)
    return bytes(pdf.output())


def test_input_without_a_suffix_is_recognised_by_its_first_bytes(
    fake_llm: FakeLLM,
    schema_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PDF named ``invoice`` and an HTML page on stdin are read as such, never sent to
    the model as raw bytes or markup."""
    args = ["--schema", f"{schema_file}:Person", "--base-url", fake_llm.base_url, "--no-cache"]
    path = tmp_path / "invoice"
    path.write_bytes(_pdf_bytes("Ada Lovelace is 36 years old."))
    fake_llm.script(reply.json({"name": "Ada Lovelace", "age": 36}))
    assert main(["extract", str(path), *args]) == 0
    sent = fake_llm.requests[-1].body["messages"][-1]["content"]
    assert "Ada Lovelace is 36" in sent and "%PDF" not in sent
    page = (
        b"<!DOCTYPE html>\n<html><head><script>var total = '999.99';</script></head>"
        b"<body><p>Grace Hopper is 85.</p></body></html>"
    )
    monkeypatch.setattr(sys, "stdin", _Stdin(page))
    fake_llm.script(reply.json({"name": "Grace Hopper", "age": 85}))
    assert main(["extract", "-", *args]) == 0
    sent = fake_llm.requests[-1].body["messages"][-1]["content"]
    assert "Grace Hopper is 85." in sent and "999.99" not in sent and "<p>" not in sent


def test_extract_chunks_grounds_and_says_which_pages_have_no_text(
    fake_llm: FakeLLM,
    schema_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--schema", f"{schema_file}:Person", "--base-url", fake_llm.base_url, "--no-cache"]
    path = tmp_path / "scan.pdf"
    path.write_bytes(_pdf_bytes("Ada Lovelace is 36 years old.", None, "The end."))
    fake_llm.script(
        reply.json({"name": "Grace", "age": 36}), reply.json({"name": "Ada Lovelace", "age": 36})
    )
    assert main(["extract", str(path), "--grounding", *args]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["name"] == "Ada Lovelace"
    assert "do not occur" in fake_llm.requests[-1].body["messages"][-1]["content"]
    assert "page(s) 2 of scan.pdf have no text layer" in captured.err
    long = tmp_path / "long.txt"
    long.write_text("Ada Lovelace is 36 years old. " * 10 + "\n\n" + "More text here. " * 20)
    before = len(fake_llm.requests)
    fake_llm.script(*[reply.json({"name": "Ada Lovelace", "age": 36})] * 5)
    assert main(["extract", str(long), "--max-chars", "400", *args]) == 0
    assert len(fake_llm.requests) - before >= 2  # one call per chunk
    assert main(["extract", str(long), "--max-chars", "5", *args]) == 2  # a usage error


def test_max_chars_splits_plain_text_without_the_documents_plugin(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path
) -> None:
    """Without a text loader the file is read as UTF-8 alone, and still split (a fresh
    process: plugins are loaded once per process)."""
    long = tmp_path / "long.text"
    long.write_text(("Ada Lovelace wrote notes. " * 20 + "\n\n") * 4)
    fake_llm.script(*[reply.json({"name": "Ada Lovelace", "age": 36})] * 8)
    args = ["--schema", f"{schema_file}:Person", "--base-url", fake_llm.base_url, "--no-cache"]
    done = subprocess.run(
        [sys.executable, "-m", "fieldwise", "extract", str(long), "--max-chars", "600", *args],
        env={**os.environ, "FIELDWISE_DISABLE_PLUGINS": "documents"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(fake_llm.requests) >= 2


def test_a_text_file_is_decoded_by_the_text_loader(
    fake_llm: FakeLLM, schema_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes("Café owner José, 3".encode("cp1252"))
    fake_llm.script(reply.json({"name": "José", "age": 3}))
    args = ["extract", str(path), "--schema", f"{schema_file}:Person"]
    assert main([*args, "--base-url", fake_llm.base_url, "--no-cache"]) == 0
    assert fake_llm.requests[-1].body["messages"][-1]["content"] == "Café owner José, 3"


def test_a_function_as_schema_is_refused_not_called(
    fake_llm: FakeLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "tasks.py"
    module.write_text(
        "CALLED = []\n\ndef delete_file(path: str) -> None:\n    CALLED.append(path)\n"
    )
    text = tmp_path / "in.txt"
    text.write_text("remove notes.txt")
    args = ["extract", str(text), "--schema", f"{module}:delete_file"]
    assert main([*args, "--base-url", fake_llm.base_url]) == 1
    assert "is a function, not a type" in capsys.readouterr().err
    assert fake_llm.requests == []


def test_a_schema_file_imports_its_sibling_modules(
    fake_llm: FakeLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "base_models_xyz.py").write_text(
        "from pydantic import BaseModel\n\nclass Named(BaseModel):\n    name: str\n"
    )
    (project / "schema.py").write_text(
        "from base_models_xyz import Named\n\nclass Person(Named):\n    age: int\n"
    )
    assert main(["schema", f"{project / 'schema.py'}:Person", "--json"]) == 0
    assert "age" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["extract", "x.txt", "--schema", "m:P", "--timeout", "0"],
        ["extract", "x.txt", "--schema", "m:P", "--timeout", "nan"],
        ["eval", "gold.jsonl", "--schema", "m:P", "--concurrency", "0"],
    ],
)
def test_out_of_range_shared_options_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(args)
    assert usage.value.code == 2 and "must be" in capsys.readouterr().err
