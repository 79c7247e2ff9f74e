"""The CSV adapter end to end: the real ``Extractor`` against the loopback fake server,
alone and through ``fieldwise fill`` (in-process and as a subprocess)."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fieldwise_csv import fill

from fieldwise.cli import main
from fieldwise.extractor import Extractor
from fieldwise.testing import FakeLLM, RecordedRequest, reply

SCHEMA = """
from pydantic import BaseModel

class Contact(BaseModel):
    company: str | None = None
    seats: int | None = None
"""


def by_row(request: RecordedRequest) -> Any:
    """Answer from the row's text, so concurrency cannot shuffle the answers."""
    text = request.body["messages"][-1]["content"]
    if "BOOM" in text:
        return reply.http_error(400, "bad row")
    return reply.json({"company": text.split()[0].upper(), "seats": len(text)})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "schema.py").write_text(SCHEMA)
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream, delimiter=";"))


def make(folder: Path, body: str) -> Path:
    path = folder / "in.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("notes;company;other\r\n" + body).encode())
    return path


def cli(folder: Path, fake: FakeLLM, *args: str) -> int:
    schema = str(folder / "schema.py") + ":Contact"
    return main(["fill", *args, "--schema", schema, "--base-url", fake.base_url, "--no-progress"])


def test_adapter_with_the_real_extractor(fake_llm: FakeLLM, work: Path, tmp_path: Path) -> None:
    fake_llm.handler = by_row
    source = make(work, '"acme\r\nwants ten";;x\r\nBOOM;;y\r\ninitech;KEEP;z\r\n')
    from pydantic import BaseModel

    class Contact(BaseModel):
        company: str | None = None
        seats: int | None = None

    extractor = Extractor(
        base_url=fake_llm.base_url, api_key="test", cache_dir=str(tmp_path / "c"), backoff_base=0.01
    )
    with extractor:
        report = fill(
            source,
            target=Contact,
            sources=["notes"],
            extractor=extractor,
            status_columns=True,
            concurrency=4,
        )
    rows = read(work / "in.filled.csv")
    assert rows[0] == ["notes", "company", "other", "seats", "_status", "_error"]
    assert rows[1] == ["acme\r\nwants ten", "ACME", "x", "15", "ok", ""]
    assert rows[2][:4] == ["BOOM", "", "y", ""] and rows[2][4] == "error"
    assert "bad row" in rows[2][5]
    assert rows[3] == ["initech", "KEEP", "z", "7", "ok", ""]
    assert report["done"] == 2 and report["failed"] == 1 and report["cost"] is not None


def test_cli_exit_codes_and_untouched_input(fake_llm: FakeLLM, work: Path) -> None:
    fake_llm.handler = by_row
    source = make(work, "acme;;1\r\nglobex;;2\r\n")
    before = sha(source)
    assert cli(work, fake_llm, str(source), "--from", "notes") == 0
    assert sha(source) == before
    assert [r[1] for r in read(work / "in.filled.csv")[1:]] == ["ACME", "GLOBEX"]

    partial = make(work, "acme;;1\r\nBOOM;;2\r\n")
    assert cli(work, fake_llm, str(partial), "--from", "notes", "-o", str(work / "p.csv")) == 3
    total = make(work, "BOOM;;1\r\nBOOM too;;2\r\n")
    assert cli(work, fake_llm, str(total), "--from", "notes", "-o", str(work / "t.csv")) == 1
    # a re-run only retries the row that failed: the rest is filled already
    requests = len(fake_llm.requests)
    fake_llm.handler = None
    assert cli(work, fake_llm, str(work / "p.csv"), "--from", "notes", "--in-place") == 0
    assert len(fake_llm.requests) == requests + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "nope"], "no column 'nope'"),
        (["--from", "notes", "--schema", "nowhere_at_all:Thing"], "importing 'nowhere_at_all'"),
        (["--from", "notes", "--limit", "0"], "--limit"),
    ],
)
def test_cli_usage_errors(
    fake_llm: FakeLLM,
    work: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    source = make(work, "acme;;1\r\n")
    before = sorted((p.name, sha(p)) for p in work.iterdir())
    schema = ["--schema", str(work / "schema.py") + ":Contact"]
    code = main(["fill", str(source), *schema, *args, "--base-url", fake_llm.base_url])
    assert code == 2
    assert message in capsys.readouterr().err
    assert sorted((p.name, sha(p)) for p in work.iterdir()) == before
    assert fake_llm.requests == []


def test_cli_dry_run_calls_nothing(
    fake_llm: FakeLLM, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make(work, "acme;;1\r\nglobex;;2\r\n")
    assert cli(work, fake_llm, str(source), "--from", "notes", "--dry-run") == 0
    out, err = capsys.readouterr()
    assert '"content": "acme"' in out and '"response_format"' in out
    assert "2 row(s) to fill" in err and "cost" in err
    assert fake_llm.requests == [] and not (work / "in.filled.csv").exists()


def test_subprocess(work: Path) -> None:
    source = make(work, "acme;;1\r\n")
    with FakeLLM() as fake:
        env = {**os.environ, "FIELDWISE_CACHE_DIR": str(work / "cache")}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fieldwise",
                "fill",
                str(source),
                "--from",
                "notes",
                "--schema",
                "schema.py:Contact",
                "--base-url",
                fake.base_url,
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "filled 1 row(s)" in done.stderr
    assert read(work / "in.filled.csv")[1][:2] == ["acme", "example"]


def test_cli_max_cost_skips_the_rest(fake_llm: FakeLLM, work: Path) -> None:
    source = make(work, "".join(f"row {i};;\r\n" for i in range(6)))
    code = cli(
        work,
        fake_llm,
        str(source),
        "--from",
        "notes",
        "--concurrency",
        "1",
        "--max-cost",
        "0.0000001",
        "--status-columns",
    )
    assert code == 3
    statuses = [r[-2] for r in read(work / "in.filled.csv")[1:]]
    assert statuses[0] == "ok" and set(statuses[1:]) == {"skipped"}
    assert len(fake_llm.requests) == 1
