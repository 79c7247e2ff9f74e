"""The XLSX adapter end to end: the real ``Extractor`` against the loopback fake server,
alone and through ``fieldwise fill`` (in-process and as a subprocess)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fieldwise_xlsx import fill
from pydantic import BaseModel

from fieldwise.cli import main
from fieldwise.extractor import Extractor
from fieldwise.testing import FakeLLM, RecordedRequest, reply

SCHEMA = """
from datetime import date
from pydantic import BaseModel

class Deal(BaseModel):
    company: str | None = None
    amount: float | None = None
    closes: date | None = None
"""


class Deal(BaseModel):
    company: str | None = None
    amount: float | None = None
    closes: date | None = None


def by_row(request: RecordedRequest) -> Any:
    text = request.body["messages"][-1]["content"]
    if "BOOM" in text:
        return reply.http_error(400, "bad row")
    return reply.json({"company": text.split()[0].upper(), "amount": 12.5, "closes": "2025-03-31"})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "schema.py").write_text(SCHEMA)
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(folder: Path, notes: list[str]) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "company", "total"])
    for row, text in enumerate(notes, start=2):
        ws.append([text, None, f"=LEN(A{row})"])
    path = folder / "book.xlsx"
    book.save(path)
    return path


def test_adapter_with_the_real_extractor(fake_llm: FakeLLM, work: Path, tmp_path: Path) -> None:
    fake_llm.handler = by_row
    source = make(work, ["acme deal", "BOOM", "hooli"])
    extractor = Extractor(
        base_url=fake_llm.base_url, api_key="test", cache_dir=str(tmp_path / "c"), backoff_base=0.01
    )
    with extractor:
        report = fill(
            source,
            target=Deal,
            sources=["notes"],
            extractor=extractor,
            status_columns=True,
            concurrency=4,
        )
    ws = openpyxl.load_workbook(work / "book.filled.xlsx").active
    assert ws is not None
    assert [c.value for c in ws[1]] == [
        "notes",
        "company",
        "total",
        "amount",
        "closes",
        "_status",
        "_error",
    ]
    assert [c.value for c in ws[2]][:4] == ["acme deal", "ACME", "=LEN(A2)", 12.5]
    assert ws["E2"].is_date and ws["F2"].value == "ok"
    assert ws["B3"].value is None and ws["F3"].value == "error" and "bad row" in ws["G3"].value
    assert report["done"] == 2 and report["failed"] == 1


def test_cli_exit_codes(fake_llm: FakeLLM, work: Path) -> None:
    fake_llm.handler = by_row
    schema = ["--schema", str(work / "schema.py") + ":Deal", "--base-url", fake_llm.base_url]
    source = make(work, ["acme", "BOOM"])
    before = sha(source)
    assert main(["fill", str(source), "--from", "notes", *schema]) == 3
    assert sha(source) == before
    assert main(["fill", str(source), "--from", "notes", "--in-place", *schema]) == 3
    assert (work / "book.xlsx.bak").read_bytes() != source.read_bytes()
    (work / "~$book.xlsx").write_bytes(b"owner")
    locked = sha(source)
    assert main(["fill", str(source), "--from", "notes", "--in-place", *schema]) == 2
    assert sha(source) == locked


def test_cli_corrupt_workbook(
    fake_llm: FakeLLM, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = work / "book.xlsx"
    source.write_bytes(b"PK\x03\x04 definitely not a workbook")
    code = main(
        [
            "fill",
            str(source),
            "--from",
            "notes",
            "--schema",
            str(work / "schema.py") + ":Deal",
            "--base-url",
            fake_llm.base_url,
        ]
    )
    assert code == 2 and "not a readable" in capsys.readouterr().err
    assert sorted(p.name for p in work.iterdir()) == ["book.xlsx", "schema.py"]


def test_subprocess(work: Path) -> None:
    source = make(work, ["acme"])
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
                "schema.py:Deal",
                "--base-url",
                fake.base_url,
                "--sheet",
                "Sheet",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    ws = openpyxl.load_workbook(work / "book.filled.xlsx")["Sheet"]
    assert ws["B2"].value == "example"
