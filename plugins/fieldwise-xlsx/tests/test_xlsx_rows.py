"""Which rows of a sheet are the header and which are data, which rows a ``limit`` takes,
and where the output is written: the XLSX adapter and ``fieldwise fill`` on workbooks
built by the tests."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fieldwise_xlsx import fill
from openpyxl.worksheet.table import Table
from pydantic import BaseModel

from fieldwise.cli import main
from fieldwise.tables import TableError
from fieldwise.testing import FakeLLM

SCHEMA = """
from pydantic import BaseModel

class Company(BaseModel):
    company: str | None = None
    employees: int | None = None
"""


class Company(BaseModel):
    company: str | None = None


class CompanySize(BaseModel):
    company: str | None = None
    employees: int | None = None


def upper(text: str) -> Any:
    return {"company": text.split()[0].upper()}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def book(path: Path, rows: list[list[Any]], tables: dict[str, str] | None = None) -> Path:
    workbook = openpyxl.Workbook()
    ws = workbook.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    for name, ref in (tables or {}).items():
        ws.add_table(Table(displayName=name, ref=ref))
    workbook.save(path)
    return path


def values(path: Path) -> list[tuple[Any, ...]]:
    ws = openpyxl.load_workbook(path).active
    assert ws is not None
    return [tuple(row) for row in ws.iter_rows(values_only=True)]


def test_a_stacked_tables_header_row_is_not_data(stub: Any, tmp_path: Path) -> None:
    rows = [["notes", "company"], ["north one", None], ["north two", None], []]
    rows += [["notes", "company"], ["south one", None], ["south two", None]]
    source = book(tmp_path / "b.xlsx", rows, {"North": "A1:B3", "South": "A5:B7"})
    ex = stub(upper)
    report = fill(source, target=Company, sources=["notes"], extractor=ex, only_empty=False)
    assert ex.seen == ["north one", "north two", "south one", "south two"]  # not "notes"
    assert report["rows"] == 4 and report["cells_written"] == 4
    out = openpyxl.load_workbook(tmp_path / "b.filled.xlsx").active
    assert out is not None
    assert out["B5"].value == "company"  # the South table's header is kept, not replaced
    assert [c.name for c in out.tables["South"].tableColumns] == ["notes", "company"]
    assert [out[f"B{r}"].value for r in (2, 3, 6, 7)] == ["NORTH", "NORTH", "SOUTH", "SOUTH"]


def test_a_new_column_skips_a_stacked_tables_header_row(stub: Any, tmp_path: Path) -> None:
    rows = [["notes"], ["north one"], [], ["notes"], ["south one"]]
    source = book(tmp_path / "b.xlsx", rows, {"North": "A1:A2", "South": "A4:A5"})
    ex = stub(upper)
    fill(source, target=Company, sources=["notes"], extractor=ex)
    assert ex.seen == ["north one", "south one"]
    assert [r[1] for r in values(tmp_path / "b.filled.xlsx")] == [
        "company",
        "NORTH",
        None,
        None,  # the South table's header row gets no value in the new column
        "SOUTH",
    ]


def test_a_legend_above_the_table_is_not_the_header(stub: Any, tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["Field", "Meaning"],
        ["notes", "free text pasted from the CRM"],
        ["company", "legal name of the customer"],
        [],
        ["id", "notes", "company"],
        [101, "acme met at the fair", None],
    ]
    source = book(tmp_path / "b.xlsx", rows)
    before = values(source)
    ex = stub(upper)
    warnings: list[str] = []
    report = fill(source, target=Company, sources=["notes"], extractor=ex, warn=warnings.append)
    assert ex.seen == ["acme met at the fair"] and report["created_columns"] == []
    assert values(tmp_path / "b.filled.xlsx") == [
        *before[:5],
        (101, "acme met at the fair", "ACME"),
    ]
    assert any("row 5 is taken as the header" in w and "row(s) 2" in w for w in warnings)


def test_a_legend_that_ties_with_the_header_is_refused_before_any_call(
    stub: Any, tmp_path: Path
) -> None:
    """The usual first fill: the schema's column is still to be made, so the legend and the
    header both name the source column and no schema column; no guess, no call."""
    rows: list[list[Any]] = [
        ["Legend:", "notes", "free text from the CRM"],
        [],
        ["id", "notes", "owner"],
        [1, "acme corp", "bob"],
    ]
    source = book(tmp_path / "b.xlsx", rows)
    before = source.read_bytes()
    ex = stub(upper)
    with pytest.raises(TableError, match=r"rows 1, 3 .*--header-row"):
        fill(source, target=Company, sources=["notes"], extractor=ex)
    assert ex.seen == [] and source.read_bytes() == before
    fill(source, target=Company, sources=["notes"], extractor=ex, header_row=3)
    assert values(tmp_path / "b.filled.xlsx")[3] == (1, "acme corp", "bob", "ACME")


def test_a_data_row_holding_a_column_name_does_not_tie_with_the_header(
    stub: Any, tmp_path: Path
) -> None:
    """A data row whose cell says the source column's name is less header-like (a number
    among its cells) than the header: the header is taken, not refused."""
    rows: list[list[Any]] = [["ID", "Status", "notes"], [2, "notes", "notes"], [3, "ok", "acme"]]
    source = book(tmp_path / "b.xlsx", rows)
    fill(source, target=Company, sources=["notes"], extractor=stub(upper))
    assert values(tmp_path / "b.filled.xlsx")[2] == (3, "ok", "acme", "ACME")


def test_a_header_with_year_columns_under_a_title_is_found(stub: Any, tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["Revenue by year (USD k)"],
        ["notes", 2021, 2022, 2023, "company"],
        ["acme in Oslo", 10, 20, 30, None],
    ]
    source = book(tmp_path / "b.xlsx", rows)
    fill(source, target=Company, sources=["notes"], extractor=stub(upper))
    assert values(tmp_path / "b.filled.xlsx")[2] == ("acme in Oslo", 10, 20, 30, "ACME")


def test_a_missing_column_lists_the_most_header_like_row(tmp_path: Path) -> None:
    rows: list[list[Any]] = [["Lead list, Q3"], ["id", "text", "company"], [1, "acme", None]]
    source = book(tmp_path / "b.xlsx", rows)
    with pytest.raises(TableError, match=r"header row 2.*'id', 'text', 'company'"):
        fill(source, target=Company, sources=["notes"], dry_run=True)


def test_header_row_names_the_header(stub: Any, tmp_path: Path) -> None:
    rows: list[list[Any]] = [["notes", "company"], ["not the header", None]]
    rows += [[f"filler {i}"] for i in range(10)]
    rows += [["notes", "company"], ["acme corp", None]]
    source = book(tmp_path / "b.xlsx", rows)
    before = sha(source)
    ex = stub(upper)
    fill(source, target=Company, sources=["notes"], extractor=ex, header_row=13)
    assert ex.seen == ["acme corp"]  # rows above the named header are not data
    assert values(tmp_path / "b.filled.xlsx")[13] == ("acme corp", "ACME")
    with pytest.raises(TableError, match="header row 3: no column 'notes'"):
        fill(source, target=Company, sources=["notes"], dry_run=True, header_row=3)
    with pytest.raises(TableError, match="has 14 row"):
        fill(source, target=Company, sources=["notes"], dry_run=True, header_row=15)
    assert sha(source) == before


def cli(folder: Path, fake: FakeLLM, *args: str) -> int:
    schema = str(folder / "schema.py") + ":Company"
    return main(["fill", *args, "--schema", schema, "--base-url", fake.base_url, "--no-progress"])


def test_cli_header_row_is_checked(fake_llm: FakeLLM, tmp_path: Path) -> None:
    (tmp_path / "schema.py").write_text(SCHEMA)
    source = book(tmp_path / "b.xlsx", [["title"], ["notes", "company"], ["acme", None]])
    before = sha(source)
    for bad in ("0", "1", "3", "9"):  # not a row; the title; a data row; past the sheet
        assert cli(tmp_path, fake_llm, str(source), "--from", "notes", "--header-row", bad) == 2
    assert fake_llm.requests == []
    assert cli(tmp_path, fake_llm, str(source), "--from", "notes", "--header-row", "2") == 0
    assert sha(source) == before and fake_llm.requests != []
    assert values(tmp_path / "b.filled.xlsx")[2][:2] == ("acme", "example")


def leads(path: Path, count: int) -> Path:
    return book(
        path, [["notes", "company", "employees"]] + [[f"lead{i}", None, None] for i in range(count)]
    )


def test_limit_batches_move_on_past_rows_the_cache_answers(
    stub: Any, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    source = leads(tmp_path / "b.xlsx", 7)
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
    assert report["rows_written"] == 1
    assert len(fake_llm.requests) == 7  # each row paid once
    assert [r[1] for r in values(source)[1:]] == [f"LEAD{i}" for i in range(7)]


def test_limit_without_the_cache_plans_the_same_rows(stub: Any, tmp_path: Path) -> None:
    source = leads(tmp_path / "b.xlsx", 5)
    ex = stub(upper)  # cache=False: which rows were answered cannot be known
    for _ in range(2):
        fill(source, target=CompanySize, sources=["notes"], extractor=ex, in_place=True, limit=2)
    assert ex.seen == ["lead0", "lead1", "lead0", "lead1"]


def test_cli_summary_counts_rows_that_got_a_cell(
    fake_llm: FakeLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldwise.testing._answering import answer_with

    (tmp_path / "schema.py").write_text(SCHEMA)
    source = leads(tmp_path / "b.xlsx", 2)
    answer_with(fake_llm, lambda text: {"company": None, "employees": None})
    assert cli(tmp_path, fake_llm, str(source), "--from", "notes") == 0
    assert "filled 0 row(s) of 2 answered" in capsys.readouterr().err


def link(tmp_path: Path, name: str, target: Path) -> Path:
    path = tmp_path / name
    try:
        path.symlink_to(target)
    except OSError:  # Windows without the privilege
        pytest.skip("symbolic links are not available")
    return path


def test_in_place_through_a_link_fills_the_file_it_points_to(stub: Any, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    real = book(shared / "real.xlsx", [["notes", "company"], ["acme corp", None]])
    before = real.read_bytes()
    linked = link(tmp_path, "b.xlsx", Path("shared") / "real.xlsx")
    for lock in (tmp_path / "~$b.xlsx", shared / "~$real.xlsx"):  # Excel has either open
        lock.write_bytes(b"owner")
        with pytest.raises(TableError, match="open in Excel"):
            fill(linked, target=Company, sources=["notes"], extractor=stub(upper), in_place=True)
        lock.unlink()
    assert real.read_bytes() == before
    report = fill(linked, target=Company, sources=["notes"], extractor=stub(upper), in_place=True)
    assert linked.is_symlink() and Path(report["output"]) == real.resolve()
    assert values(real)[1] == ("acme corp", "ACME")
    assert (shared / "real.xlsx.bak").read_bytes() == before
    assert not (tmp_path / "b.xlsx.bak").exists()


def test_output_through_a_link_writes_the_file_it_points_to(stub: Any, tmp_path: Path) -> None:
    source = book(tmp_path / "b.xlsx", [["notes", "company"], ["acme corp", None]])
    (tmp_path / "out").mkdir()
    output = link(tmp_path, "o.xlsx", tmp_path / "out" / "real.xlsx")  # dangling until written
    fill(source, target=Company, sources=["notes"], extractor=stub(upper), output=output)
    assert output.is_symlink() and values(tmp_path / "out" / "real.xlsx")[1][1] == "ACME"


def unwritable(tmp_path: Path) -> Path:
    """A folder where no file can be created, even by root (which ignores permissions)."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if not sys.platform.startswith("linux"):
        pytest.skip("needs a folder that refuses files")
    return Path("/proc")


def test_an_unwritable_output_folder_is_found_before_any_call(
    stub: Any, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    source = leads(tmp_path / "b.xlsx", 3)
    before = sha(source)
    with pytest.raises(TableError, match="cannot create a file in"):
        fill(
            source,
            target=Company,
            sources=["notes"],
            extractor=stub(upper),
            output=unwritable(tmp_path) / "out.xlsx",
        )
    assert fake_llm.requests == [] and sha(source) == before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_a_fill_leaves_no_temporary_file(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    (tmp_path / "schema.py").write_text(SCHEMA)
    source = leads(tmp_path / "b.xlsx", 40)
    before = sha(source)
    with FakeLLM(latency=0.5) as fake:
        args = ["fill", "b.xlsx", "--schema", "schema.py:Company", "--from", "notes"]
        args += ["--in-place", "--concurrency", "2", "--no-progress", "--base-url", fake.base_url]
        env = {**os.environ, "FIELDWISE_CACHE_DIR": str(tmp_path / "cache")}
        process = subprocess.Popen(
            [sys.executable, "-m", "fieldwise", *args], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60  # a guard against hanging, not a timing check
        while not list(tmp_path.glob(".b.xlsx.*.tmp")) and process.poll() is None:
            assert time.monotonic() < deadline, "the fill never started writing"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert not list(tmp_path.glob(".b.xlsx.*")) and sha(source) == before
