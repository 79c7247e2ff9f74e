"""End to end on a real language model: SmolLM2-135M served by the fieldwise-local plugin.

The model is small: exact values are asserted only on simple inputs it reliably gets
right; everywhere else the assertions are schema validity, reproducibility at
temperature 0 with a fixed seed, and cache behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from fieldwise import Document, Extractor
from fieldwise.cli import main

fieldwise_local = pytest.importorskip("fieldwise_local")

FORM = "Name: John Smith\nAge: 28\nCity: Boston"


class SimpleForm(BaseModel):
    name: str
    age: int
    city: str


class Attendees(BaseModel):
    attendees: list[str]


@pytest.fixture(scope="module")
def model_ready() -> None:
    if not fieldwise_local.is_installed():
        fieldwise_local.pull()


@pytest.fixture
def local(model_ready: None, tmp_path: Path) -> Iterator[Extractor]:
    extractor = Extractor(model="local", cache_dir=str(tmp_path / "cache"))
    yield extractor
    extractor.close()


def test_extract_simple_form_exactly(local: Extractor) -> None:
    result = local.run(FORM, SimpleForm)
    assert result.value == SimpleForm(name="John Smith", age=28, city="Boston")
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.cost == 0.0  # a model on this machine costs nothing per token (its price)
    again = local.run(FORM, SimpleForm)
    assert again.cached and again.value == result.value and again.usage.requests == 0


def test_temperature_zero_with_seed_is_reproducible(model_ready: None) -> None:
    text = "Registration form\nFull name: Tom Baker\nAge (years): 66\nHome city: Leeds"
    first = Extractor(model="local", cache=False).run(text, SimpleForm)
    second = Extractor(model="local", cache=False).run(text, SimpleForm)
    assert first.raw == second.raw


@pytest.mark.anyio
async def test_async_extract(local: Extractor) -> None:
    value = await local.aextract(FORM, SimpleForm)
    assert value == SimpleForm(name="John Smith", age=28, city="Boston")


def test_run_many_keeps_order_and_validates(local: Extractor) -> None:
    texts = [FORM, "Name: Peter Novak\nAge: 52\nCity: Prague", "Lars Berg, 61, Oslo"]
    batch = local.run_many(texts, SimpleForm, concurrency=2)
    items = list(batch)
    assert [i.index for i in items] == [0, 1, 2] and all(i.ok for i in items)
    assert items[0].value.name == "John Smith"
    assert batch.summary.done == 3 and batch.summary.usage.total_tokens > 0


def test_stream_ends_with_the_validated_value(local: Extractor) -> None:
    items = list(local.stream("Attendees: Ada, Bob and Cy.", Attendees))
    assert isinstance(items[-1], Attendees)
    assert len(items) >= 2  # at least one partial before the final value


def test_document_input(local: Extractor, tmp_path: Path) -> None:
    pytest.importorskip("fieldwise_documents")
    page = tmp_path / "form.html"
    page.write_text(
        "<html><head><style>p{}</style></head><body><h1>Form</h1>"
        "<p>Name: John Smith</p><p>Age: 28</p><p>City: Boston</p></body></html>"
    )
    value = local.extract(Document.open(page), SimpleForm)
    assert value == SimpleForm(name="John Smith", age=28, city="Boston")


def test_cli_extract(model_ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "forms.py"
    schema.write_text(
        "from pydantic import BaseModel\n"
        "class SimpleForm(BaseModel):\n    name: str\n    age: int\n    city: str\n"
    )
    note = tmp_path / "form.txt"
    note.write_text(FORM)
    assert main(["extract", str(note), "--schema", f"{schema}:SimpleForm", "--model", "local"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "name": "John Smith",
        "age": 28,
        "city": "Boston",
    }


SCHEMA_FILE = (
    "from pydantic import BaseModel\n"
    "class SimpleForm(BaseModel):\n    name: str\n    age: int\n    city: str\n"
)


def test_cli_fill_csv_and_xlsx(model_ready: None, tmp_path: Path) -> None:
    pytest.importorskip("fieldwise_csv")
    openpyxl = pytest.importorskip("openpyxl")
    schema = tmp_path / "forms.py"
    schema.write_text(SCHEMA_FILE)
    rows = [("1", FORM), ("2", "Name: Peter Novak\nAge: 52\nCity: Prague")]
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        "id,notes\n" + "".join(f'{i},"{text}"\n' for i, text in rows), encoding="utf-8"
    )
    out = tmp_path / "people.filled.csv"
    spec = f"{schema}:SimpleForm"
    assert (
        main(
            [
                "fill",
                str(csv_path),
                "--schema",
                spec,
                "--from",
                "notes",
                "--model",
                "local",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    import csv

    filled = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in filled] == ["1", "2"]
    assert filled[0]["name"] == "John Smith" and filled[0]["age"] == "28"
    assert all(r["city"] for r in filled)

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "notes", "name"])
    for i, text in rows:
        sheet.append([int(i), text, None])
    sheet["E1"] = "=1+1"
    xlsx_path = tmp_path / "people.xlsx"
    book.save(xlsx_path)
    assert (
        main(["fill", str(xlsx_path), "--schema", spec, "--from", "notes", "--model", "local"]) == 0
    )
    result = openpyxl.load_workbook(tmp_path / "people.filled.xlsx").active
    header = [c.value for c in result[1]]
    assert header[:3] == ["id", "notes", "name"] and "age" in header and "city" in header
    assert result["C2"].value == "John Smith"
    assert result.cell(2, header.index("age") + 1).value == 28  # a typed number cell
    assert result["E1"].value == "=1+1"  # the formula is kept


@pytest.mark.anyio
async def test_service_endpoint(model_ready: None, tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx")
    from fieldwise.service import create_app

    extractor = Extractor(model="local", cache_dir=str(tmp_path / "cache"))
    app = create_app(schemas=[SimpleForm], extractor=extractor)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/v1/extract/SimpleForm", json={"text": FORM})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] == {"name": "John Smith", "age": 28, "city": "Boston"}
        assert body["usage"]["total_tokens"] > 0 and body["cached"] is False
        again = await client.post("/v1/extract/SimpleForm", json={"text": FORM})
        assert again.json()["cached"] is True
