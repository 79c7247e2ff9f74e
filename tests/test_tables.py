"""The rules every table adapter shares (``fieldwise.tables``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import pytest
from pydantic import BaseModel, Field

from fieldwise.batch import BatchItem, BatchSummary
from fieldwise.tables import (
    Column,
    FillReport,
    RowPlanner,
    TableError,
    cell_value,
    cells_to_write,
    check_columns,
    default_output,
    error_text,
    extract_rows,
    input_file,
    input_text,
    model_columns,
    needs_work,
    ready_to_extract,
    temp_beside,
    value_cells,
)


class Color(Enum):
    RED = "red"


class Geo(BaseModel):
    lat: float
    lon: float


class Address(BaseModel):
    city: str | None = None
    geo: Optional[Geo] = None  # noqa: UP045 - the old spelling must work too


class Node(BaseModel):
    name: str
    parent: Node | None = None


class Company(BaseModel):
    name: str = Field(alias="Company name")
    address: Address | None = None
    tags: list[str] = []
    color: Color | None = None
    node: Node | None = None


def test_columns_flatten_nested_models() -> None:
    assert [c.header for c in model_columns(Company)] == [
        "Company name",
        "address.city",
        "address.geo.lat",
        "address.geo.lon",
        "tags",
        "color",
        "node.name",
        "node.parent",
    ]
    assert model_columns(Company)[2].path == ("address", "geo", "lat")


class Flat(BaseModel):
    address: Address
    city: str = Field(alias="address.city")


def test_two_fields_filling_one_column_are_refused() -> None:
    with pytest.raises(TableError, match=r"'address.city' \(address.city and city\)"):
        model_columns(Flat)


@pytest.mark.parametrize("target", [int, list[Company], "Company"])
def test_columns_need_a_model(target: Any) -> None:
    with pytest.raises(TableError, match="pydantic model"):
        model_columns(target)


def test_value_cells_typed_and_text() -> None:
    value = Company.model_validate(
        {
            "Company name": "Acme",
            "address": {"city": "Oslo", "geo": None},
            "tags": ["a", "é"],
            "color": "red",
            "node": {"name": "n", "parent": {"name": "p"}},
        }
    )
    cells = value_cells(value, model_columns(Company), typed=True)
    assert cells == {
        "Company name": "Acme",
        "address.city": "Oslo",
        "address.geo.lat": None,
        "address.geo.lon": None,
        "tags": '["a","é"]',
        "color": "red",
        "node.name": "n",
        "node.parent": '{"name":"p","parent":null}',
    }


@pytest.mark.parametrize(
    ("value", "typed", "text"),
    [
        (None, None, None),
        (True, True, "true"),
        (3, 3, "3"),
        (2.5, 2.5, "2.5"),
        (float("nan"), "nan", "nan"),
        (Decimal("1.10"), Decimal("1.10"), "1.10"),
        (date(2024, 1, 2), date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4), datetime(2024, 1, 2, 3, 4), "2024-01-02T03:04:00"),
        (
            datetime(2024, 1, 2, tzinfo=UTC),
            "2024-01-02T00:00:00+00:00",
            "2024-01-02T00:00:00+00:00",
        ),
        (time(9, 30), time(9, 30), "09:30:00"),
        ({"a": [1]}, '{"a":[1]}', '{"a":[1]}'),
        (Color.RED, "red", "red"),
        (Path("x/y"), "x/y", "x/y"),
    ],
)
def test_cell_value(value: Any, typed: Any, text: Any) -> None:
    assert cell_value(value, typed=True) == typed
    assert cell_value(value, typed=False) == text


def test_input_text() -> None:
    row = {"notes": "called\nback", "subject": "Hi", "when": date(2024, 5, 1), "blank": "  "}
    assert input_text(row, ["notes"]) == "called\nback"
    assert input_text(row, ["subject", "when"]) == "subject: Hi\nwhen: 2024-05-01"
    assert input_text(row, ["blank"]) is None
    assert input_text(row, ["blank", "missing"]) is None
    assert input_text(row, ["blank", "subject"]) == "blank:   \nsubject: Hi"
    # a date-formatted spreadsheet cell reads as a datetime at midnight: sent as the date
    assert input_text({"d": datetime(2024, 1, 2)}, ["d"]) == "2024-01-02"
    assert input_text({"d": datetime(2024, 1, 2, 9, 30)}, ["d"]) == "2024-01-02T09:30:00"


def test_only_empty_rules() -> None:
    columns = [Column("a", ("a",)), Column("b", ("b",))]
    assert needs_work({"a": "x", "b": " "}, columns, only_empty=True)
    assert not needs_work({"a": "x", "b": 0}, columns, only_empty=True)
    assert needs_work({"a": "x", "b": 0}, columns, only_empty=False)
    new = {"a": "new", "b": None}
    assert cells_to_write({"a": "x", "b": None}, new, only_empty=True) == {}
    assert cells_to_write({"a": "", "b": None}, new, only_empty=True) == {"a": "new"}
    assert cells_to_write({"a": "x", "b": "y"}, new, only_empty=False) == {"a": "new", "b": None}


def test_check_columns() -> None:
    columns = [Column("company", ("company",))]
    check_columns(["notes", "company"], ["notes"], columns, "f")
    with pytest.raises(TableError, match=r"no column 'x'.*'notes', 'company'"):
        check_columns(["notes", "company"], ["x"], columns, "f")
    with pytest.raises(TableError, match="both a source"):
        check_columns(["company"], ["company"], columns, "f")
    with pytest.raises(TableError, match="--from"):
        check_columns(["company"], [], columns, "f")


def test_default_output(tmp_path: Path) -> None:
    source = tmp_path / "book.xlsx"
    source.write_bytes(b"")
    assert default_output(source, None, False) == tmp_path / "book.filled.xlsx"
    assert default_output(source, None, True) == source
    assert default_output(source, tmp_path / "o.xlsx", False) == tmp_path / "o.xlsx"
    with pytest.raises(TableError, match="--in-place"):
        default_output(source, source, False)
    with pytest.raises(TableError, match="does not exist"):
        default_output(source, tmp_path / "nowhere" / "o.xlsx", False)
    with pytest.raises(TableError, match="not both"):
        default_output(source, tmp_path / "o.xlsx", True)
    (tmp_path / "out").mkdir()
    with pytest.raises(TableError, match="is a folder"):  # before any row is paid for
        default_output(source, tmp_path / "out", False)


def test_dry_run_says_which_rows_lie_past_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldwise.cli import main

    data = tmp_path / "t.csv"
    data.write_text("notes,name\n" + "".join(f"row {i},\n" for i in range(10)))
    schema = tmp_path / "m.py"
    schema.write_text("from pydantic import BaseModel\nclass P(BaseModel):\n    name: str\n")
    args = ["fill", str(data), "--schema", f"{schema}:P", "--from", "notes", "--dry-run"]
    assert main([*args, "--limit", "3", "--base-url", "http://127.0.0.1:9/v1"]) == 0
    err = capsys.readouterr().err
    assert "3 row(s) to fill of 10 (0 already filled, 0 with empty input, 7 past --limit)" in err


def test_row_planner_counts_every_row_once() -> None:
    columns = [Column("name", ("name",))]
    planner, report = RowPlanner(only_empty=True, limit=2), FillReport()
    plans = [
        planner.decide({"name": name}, columns, {"notes": notes}, ["notes"], report)
        for name, notes in [("KEEP", "a"), (None, " "), (None, "b"), ("", "c"), (None, "d")]
    ]
    assert plans == [None, None, "b", "c", None] and planner.planned == 2
    assert (report.unchanged, report.past_limit, report.no_input) == (1, 1, 1)
    assert (report.input_chars, report.first_input) == (2, "b")
    again = RowPlanner(only_empty=False, limit=None)  # a later pass: nothing counted
    assert again.decide({"name": "KEEP"}, columns, {"notes": "a"}, ["notes"], None) == "a"


def test_row_planner_limit_zero_plans_nothing() -> None:
    columns = [Column("name", ("name",))]
    planner, report = RowPlanner(only_empty=True, limit=0), FillReport()
    plans = [planner.decide({"name": None}, columns, {"notes": t}, ["notes"], report, k)
             for k, t in enumerate("abc")]  # fmt: skip
    planner.finish(report)
    assert plans == [None, None, None] and planner.planned == 0 and report.past_limit == 3


def test_row_planner_limit_does_not_count_rows_the_cache_answers() -> None:
    columns = [Column("name", ("name",))]
    asked: list[list[str]] = []

    def answered(texts: Any) -> list[bool]:
        asked.append(list(texts))
        return [text.startswith("cached") for text in texts]

    texts = ["cached 1", "new 1", "cached 2", "new 2", "cached 3", "new 3"]
    planner, report = RowPlanner(True, 2, answered=answered), FillReport()
    for key, text in enumerate(texts, start=2):
        planner.decide({"name": None}, columns, {"notes": text}, ["notes"], report, key)
    planner.finish(report)
    assert asked == [texts]  # one lookup for them all
    assert (planner.cutoff, planner.planned, report.past_limit) == (5, 4, 2)
    assert report.input_chars == sum(map(len, texts[:4])) and report.first_input == "cached 1"
    later = RowPlanner(True, None, cutoff=planner.cutoff)  # the same rows, without lookups
    plans = [
        later.decide({"name": None}, columns, {"notes": text}, ["notes"], None, key)
        for key, text in enumerate(texts, start=2)
    ]
    assert plans == [*texts[:4], None, None]


def test_row_planner_looks_up_by_batches_and_stops_at_the_limit() -> None:
    columns = [Column("name", ("name",))]
    asked: list[int] = []

    def answered(texts: Any) -> list[bool]:
        asked.append(len(texts))
        return [False] * len(texts)

    planner, report = RowPlanner(True, 10, answered=answered), FillReport()
    for key in range(100):
        planner.decide({"name": None}, columns, {"notes": f"row {key}"}, ["notes"], report, key)
    planner.finish(report)
    assert asked == [64] and planner.cutoff == 9  # no lookup once the limit is placed
    assert (planner.planned, report.past_limit) == (10, 90)


def test_outputs_follow_links_and_the_folder_is_tried_first(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    source = tmp_path / "real" / "book.xlsx"
    source.write_bytes(b"")
    linked, out = tmp_path / "book.xlsx", tmp_path / "o.xlsx"
    try:
        linked.symlink_to(source)
        out.symlink_to(tmp_path / "real" / "o.xlsx")
    except OSError:  # Windows without the privilege
        pytest.skip("symbolic links are not available")
    assert default_output(linked, None, True) == source.resolve()
    assert default_output(linked, out, False) == (tmp_path / "real" / "o.xlsx").resolve()
    with pytest.raises(TableError, match="--in-place"):  # a link to the input is the input
        default_output(source, linked, False)
    handle, temp = temp_beside(source)
    os.close(handle)
    assert temp.parent == source.parent and temp.name.startswith(".book.xlsx.")
    temp.unlink()
    missing = tmp_path / "gone" / "o.xlsx"
    with pytest.raises(TableError, match="cannot create a file in"):
        temp_beside(missing)


def test_ready_to_extract_and_input_file(tmp_path: Path) -> None:
    totals: list[int] = []
    report = FillReport(planned=3)
    assert not ready_to_extract(report, dry_run=True, extractor=None, on_total=totals.append)
    with pytest.raises(TableError, match="needs an extractor"):
        ready_to_extract(report, dry_run=False, extractor=None, on_total=totals.append)
    assert totals == []
    assert ready_to_extract(report, dry_run=False, extractor=object(), on_total=totals.append)
    assert totals == [3]
    with pytest.raises(TableError, match="no such file"):
        input_file(tmp_path / "missing.csv")
    (tmp_path / "t.csv").write_text("x\n")
    assert input_file(str(tmp_path / "t.csv")) == tmp_path / "t.csv"


def test_error_text_is_one_short_line() -> None:
    text = error_text(ValueError("a\nb " + "x" * 1000))
    assert text.startswith("ValueError: a b x") and len(text) == 300 and "\n" not in text
    assert error_text(None) == ""


class _Batch:
    def __init__(self, inputs: Any) -> None:
        self.inputs = inputs
        self.summary = BatchSummary()

    def __iter__(self) -> Iterator[BatchItem[Any]]:
        for index, text in enumerate(self.inputs):
            self.summary.done += 1
            yield BatchItem(index, text)


class _Extractor:
    def run_many(self, inputs: Any, target: Any, **options: Any) -> _Batch:
        return _Batch(inputs)


def test_extract_rows_pairs_keys_in_order() -> None:
    report = FillReport()
    pulled: list[int] = []

    def rows() -> Iterator[tuple[int, str]]:
        for key in (3, 5, 9):
            pulled.append(key)
            yield key, f"row {key}"

    pairs = extract_rows(
        _Extractor(), Company, rows(), concurrency=2, max_cost=None, on_progress=None, report=report
    )
    first = next(pairs)
    assert first[0] == 3 and first[1].input == "row 3" and pulled == [3]  # lazy
    assert [(k, i.input) for k, i in pairs] == [(5, "row 5"), (9, "row 9")]
    assert report.done == 3


def test_fill_command_imports_nothing_heavy() -> None:
    code = (
        "import sys, fieldwise.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('rich', 'openpyxl', 'fieldwise.tables', 'pydantic') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
