"""The CSV adapter's rows around the header (Excel's ``sep=`` line, a named header row),
``limit`` batches, links, and ``fieldwise fill`` stopped by a signal."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fieldwise_csv import fill
from pydantic import BaseModel

from fieldwise.tables import TableError
from fieldwise.testing import FakeLLM

SCHEMA = """
from pydantic import BaseModel

class Company(BaseModel):
    company: str | None = None
"""


class Company(BaseModel):
    company: str | None = None


class CompanySize(BaseModel):
    company: str | None = None
    employees: int | None = None


def upper(text: str) -> Any:
    return {"company": text.split()[0].strip(",").upper()}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_excel_sep_line_names_the_separator_and_is_kept(stub: Any, tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_bytes(b"sep=;\r\nid;notes;company\r\n1;hello, world;\r\n2;globex;KEEP\r\n")
    ex = stub(upper)
    fill(source, target=Company, sources=["notes"], extractor=ex)
    assert ex.seen == ["hello, world"]
    assert (tmp_path / "t.filled.csv").read_bytes() == (
        b"sep=;\r\nid;notes;company\r\n1;hello, world;HELLO\r\n2;globex;KEEP\r\n"
    )
    fill(source, target=CompanySize, sources=["notes"], extractor=ex, output=tmp_path / "n.csv")
    assert (tmp_path / "n.csv").read_bytes().startswith(b"sep=;\r\nid;notes;company;employees\r\n")


def test_header_row_names_the_header(stub: Any, tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    text = "sep=;\nExport of May; 2024\n\nnotes;company\nacme corp;\n"
    source.write_text(text)
    before = sha(source)
    ex = stub(upper)
    report = fill(source, target=Company, sources=["notes"], extractor=ex, header_row=3)
    assert ex.seen == ["acme corp"] and report["rows"] == 1
    assert (tmp_path / "t.filled.csv").read_text() == text.replace("corp;\n", "corp;ACME\n")
    with pytest.raises(TableError, match="header row 2: no column 'notes'"):
        fill(source, target=Company, sources=["notes"], dry_run=True, header_row=2)
    with pytest.raises(TableError, match="no such row"):
        fill(source, target=Company, sources=["notes"], dry_run=True, header_row=9)
    assert sha(source) == before


@pytest.mark.parametrize("sep_line", ["", "sep=;\n"])
def test_a_row_is_named_by_its_number_as_excel_shows_it(
    stub: Any, tmp_path: Path, sep_line: str
) -> None:
    """Under a title and a named header row (and Excel's sep= line, which Excel does not
    show as a row), a bad row is called by the number Excel gives it."""
    path = tmp_path / "t.csv"
    path.write_text(f"{sep_line}Export of May;\n;\nnotes;company\nacme;\nglobex;;EXTRA\n")
    with pytest.raises(TableError, match="row 5 has 3 fields"):
        fill(path, target=CompanySize, sources=["notes"], extractor=stub(upper), header_row=3)


def test_limit_batches_move_on_past_rows_the_cache_answers(
    stub: Any, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    source = tmp_path / "t.csv"
    source.write_text("notes,company,employees\n" + "".join(f"lead{i},,\n" for i in range(7)))
    ex = stub(upper, cache=True)  # employees stays null: those rows keep a blank cell
    plans = []
    for _ in range(3):
        report = fill(
            source, target=CompanySize, sources=["notes"], extractor=ex, in_place=True, limit=3
        )
        plans.append(
            (report["planned"], report["cached"], report["past_limit"], report["cells_written"])
        )
    assert plans == [(3, 0, 4, 3), (6, 3, 1, 3), (7, 6, 0, 1)]
    assert len(fake_llm.requests) == 7 and report["rows_written"] == 1
    assert source.read_text().splitlines()[1:] == [f"lead{i},LEAD{i}," for i in range(7)]


def test_in_place_through_a_link_fills_the_file_it_points_to(stub: Any, tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    real = tmp_path / "shared" / "real.csv"
    real.write_text("notes,company\nacme,\n")
    linked = tmp_path / "t.csv"
    try:
        linked.symlink_to(Path("shared") / "real.csv")
    except OSError:  # Windows without the privilege
        pytest.skip("symbolic links are not available")
    fill(linked, target=Company, sources=["notes"], extractor=stub(upper), in_place=True)
    assert linked.is_symlink() and real.read_text() == "notes,company\nacme,ACME\n"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("kind", ["SIGTERM", "SIGHUP"])
def test_a_signal_during_a_fill_leaves_no_temporary_file(kind: str, tmp_path: Path) -> None:
    number = getattr(signal, kind)
    (tmp_path / "schema.py").write_text(SCHEMA)
    source = tmp_path / "t.csv"
    source.write_text("notes,company\n" + "".join(f"row {i},\n" for i in range(40)))
    before = sha(source)
    with FakeLLM(latency=0.5) as fake:
        args = ["fill", "t.csv", "--schema", "schema.py:Company", "--from", "notes"]
        args += ["--in-place", "--concurrency", "2", "--no-progress", "--base-url", fake.base_url]
        env = {**os.environ, "FIELDWISE_CACHE_DIR": str(tmp_path / "cache")}
        process = subprocess.Popen(
            [sys.executable, "-m", "fieldwise", *args], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60  # a guard against hanging, not a timing check
        while not list(tmp_path.glob(".t.csv.*.tmp")) and process.poll() is None:
            assert time.monotonic() < deadline, "the fill never started writing"
            time.sleep(0.05)
        process.send_signal(number)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + number, err
    assert f"stopped by {kind}" in err
    assert not list(tmp_path.glob(".t.csv.*")) and sha(source) == before
