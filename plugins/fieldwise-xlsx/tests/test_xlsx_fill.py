"""The XLSX adapter on its own, with a real extractor whose fake server answers per row;
workbooks are built by the tests and compared cell by cell after the fill."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fieldwise_xlsx import fill
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableStyleInfo
from pydantic import BaseModel

from fieldwise.exceptions import ProviderError
from fieldwise.tables import TableError


class Lead(BaseModel):
    company: str | None = None
    size: int | None = None
    since: date | None = None
    active: bool | None = None
    note: str | None = None


def answer(text: str) -> Any:
    if "BOOM" in text:
        return ProviderError("upstream failed", status_code=502)
    return {
        "company": text.split()[0].upper(),
        "size": len(text),
        "since": "2024-01-02",
        "active": True,
        "note": "=1+1" if "formula" in text else "#N/A" if "error" in text else None,
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(path: Path) -> Path:
    """A workbook with most of what users keep in one."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Leads"
    ws["A1"] = "Lead list, Q3"  # a title above the table: not the header
    ws.merge_cells("A1:D1")
    header = ["id", "notes", "company", "total", "when"]
    for column, name in enumerate(header, start=1):
        cell = ws.cell(2, column, name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="4472C4")
    ws.column_dimensions["E"].width = 21
    data = [
        (1, "acme wants 20 seats", None, datetime(2024, 5, 1, 9, 30)),
        (2, "globex renewal", "PRESET", datetime(2024, 5, 2)),
        (3, "BOOM fails here", None, None),
        (4, None, None, None),
        (5, "initech formula trap", None, None),
        (6, "umbrella error value", None, None),
    ]
    for row, (ident, notes, company, when) in enumerate(data, start=3):
        ws.cell(row, 1, ident)
        ws.cell(row, 2, notes)
        ws.cell(row, 3, company)
        ws.cell(row, 4, f"=A{row}*2")
        cell = ws.cell(row, 5, when)
        cell.number_format = "yyyy-mm-dd hh:mm"
    ws["A3"].number_format = "0.00"
    table = Table(displayName="Leads", ref="A2:E8")
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium9", showRowStripes=True)
    ws.add_table(table)
    validation = DataValidation(type="list", formula1='"1,2,3,4,5,6"', allow_blank=True)
    validation.add("A3:A8")
    ws.add_data_validation(validation)
    red = PatternFill("solid", fgColor="FFC7CE")
    ws.conditional_formatting.add(
        "A3:A8", CellIsRule(operator="greaterThan", formula=["4"], fill=red)
    )
    hidden = book.create_sheet("Secret")
    hidden["A1"] = "do not touch"
    hidden["B2"] = "=Leads!A3"
    hidden.sheet_state = "hidden"
    book.active = 0
    book.save(path)
    return path


def cells(ws: Any) -> dict[str, Any]:
    return {
        cell.coordinate: (
            cell.value,
            cell.data_type,
            cell.number_format,
            cell.font.b,
            cell.fill.fgColor.rgb,
        )
        for row in ws.iter_rows()
        for cell in row
    }


def test_fill_changes_only_target_cells(stub: Any, tmp_path: Path) -> None:
    source = build(tmp_path / "book.xlsx")
    before_hash = sha(source)
    warnings: list[str] = []
    report = fill(
        source, target=Lead, sources=["notes"], extractor=stub(answer), warn=warnings.append
    )
    assert sha(source) == before_hash
    out = tmp_path / "book.filled.xlsx"
    assert report["output"] == str(out)
    assert report["created_columns"] == ["size", "since", "active", "note"]
    old_book, new_book = openpyxl.load_workbook(source), openpyxl.load_workbook(out)
    old, new = old_book["Leads"], new_book["Leads"]

    # every original cell is unchanged: value, type, number format, font, fill...
    before, after = cells(old), cells(new)
    changed = {coord for coord in before if before[coord] != after[coord]}
    assert changed == {"C3", "C7", "C8"}  # ...but the blank company cells that were filled
    assert new["C3"].value == "ACME" and new["C4"].value == "PRESET"  # only_empty
    assert new["C5"].value is None  # failed row: as it was
    assert new["D3"].value == "=A3*2" and new["D3"].data_type == "f"  # formulas kept

    # new columns: after the last used one, header styled like its neighbour, typed values
    assert [new.cell(2, c).value for c in range(6, 10)] == ["size", "since", "active", "note"]
    assert new["F2"].font.b and new["F2"].fill.fgColor.rgb == old["E2"].fill.fgColor.rgb
    assert new.column_dimensions["F"].width == 21
    assert new["F3"].value == 19 and new["F3"].data_type == "n"
    assert new["G3"].value == datetime(2024, 1, 2) and new["G3"].is_date
    assert new["H3"].value is True and new["H3"].data_type == "b"
    assert new["F6"].value is None  # blank notes: no call
    # text that looks like a formula or an error stays text
    assert new["I7"].value == "=1+1" and new["I7"].data_type == "s" and new["I7"].quotePrefix
    assert new["I8"].value == "#N/A" and new["I8"].data_type == "s"

    # table grown over the new columns; validation and conditional formats kept
    assert new.tables["Leads"].ref == "A2:I8"
    assert [c.name for c in new.tables["Leads"].tableColumns][-4:] == [
        "size",
        "since",
        "active",
        "note",
    ]
    assert [str(v.sqref) for v in new.data_validations.dataValidation] == ["A3:A8"]
    assert [str(r.sqref) for r in new.conditional_formatting] == ["A3:A8"]
    assert "A1:D1" in {str(r) for r in new.merged_cells.ranges}

    # the hidden sheet is untouched
    assert new_book["Secret"].sheet_state == "hidden"
    assert cells(new_book["Secret"]) == cells(old_book["Secret"])
    assert report["done"] == 4 and report["failed"] == 1 and report["no_input"] == 1
    assert report["tokens"] > 0 and report["cost"] > 0  # the fake's usage, summed


def test_overwrite_and_status_columns(stub: Any, tmp_path: Path) -> None:
    source = build(tmp_path / "book.xlsx")
    fill(
        source,
        target=Lead,
        sources=["notes"],
        extractor=stub(answer),
        only_empty=False,
        status_columns=True,
    )
    ws = openpyxl.load_workbook(tmp_path / "book.filled.xlsx")["Leads"]
    assert ws["C4"].value == "GLOBEX"  # overwritten
    status = [ws.cell(2, c).value for c in range(1, 12)].index("_status") + 1
    assert [ws.cell(r, status).value for r in range(3, 9)] == [
        "ok",
        "ok",
        "error",
        None,
        "ok",
        "ok",
    ]
    assert ws.cell(5, status + 1).value.startswith("ProviderError")


def test_formula_targets_are_never_overwritten(stub: Any, tmp_path: Path) -> None:
    class Total(BaseModel):
        total: int | None = None

    source = build(tmp_path / "book.xlsx")
    extractor = stub(lambda t: {"total": 1})
    report = fill(source, target=Total, sources=["notes"], extractor=extractor, only_empty=False)
    assert extractor.seen == [] and report["planned"] == 0


def test_merged_target_cells_are_skipped_with_a_warning(stub: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "company"])
    ws.append(["alpha", None])
    ws.append(["beta", None])
    ws.append(["gamma", None])
    ws.merge_cells("B2:B3")
    ws.merge_cells("A4:A5")  # a merged source: row 5 reads the anchor's text
    source = tmp_path / "m.xlsx"
    book.save(source)
    warnings: list[str] = []
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor, warn=warnings.append)
    new = openpyxl.load_workbook(tmp_path / "m.filled.xlsx").active
    assert new is not None
    assert new["B2"].value == "ALPHA" and new["B4"].value == "GAMMA"
    assert new["B5"].value == "GAMMA" and extractor.seen == ["alpha", "beta", "gamma", "gamma"]
    assert any("merged" in w for w in warnings)


def test_a_protected_sheet_is_filled_with_a_warning_before_any_call(
    stub: Any, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "company"])
    ws.append(["alpha", None])
    ws.protection.sheet = True
    source = tmp_path / "p.xlsx"
    book.save(source)
    said: list[tuple[str, int]] = []
    extractor = stub(answer)

    def warn(text: str) -> None:
        said.append((text, len(extractor.seen)))

    report = fill(source, target=Lead, sources=["notes"], extractor=extractor, warn=warn)
    protected = [(text, calls) for text, calls in said if "protected" in text]
    assert protected and protected[0][1] == 0  # said before the first call
    assert any("protected" in w for w in report["warnings"])
    new = openpyxl.load_workbook(tmp_path / "p.filled.xlsx").active
    assert new is not None
    assert new["B2"].value == "ALPHA" and new.protection.sheet

    ws.protection.sheet = False  # an unprotected sheet: no such warning
    book.save(source)
    said.clear()
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer), warn=warn)
    assert not [text for text, _ in said if "protected" in text]


def test_header_found_by_name_not_position(stub: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Report", None, None])
    ws.append([None, None, None])
    ws.append(["size", "company", "notes"])
    ws.append([None, None, "hooli deal"])
    source = tmp_path / "h.xlsx"
    book.save(source)
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer))
    new = openpyxl.load_workbook(tmp_path / "h.filled.xlsx").active
    assert new is not None
    assert [new.cell(4, c).value for c in range(1, 4)] == [10, "HOOLI", "hooli deal"]
    assert new["D3"].value == "since"


def test_xlsm_keeps_its_macros(stub: Any, tmp_path: Path) -> None:
    source = tmp_path / "m.xlsm"
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes"])
    ws.append(["alpha"])
    book.save(source)
    with zipfile.ZipFile(source, "a") as archive:  # a stand-in VBA part
        archive.writestr("xl/vbaProject.bin", b"\x00fake vba")
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer), in_place=True)
    with zipfile.ZipFile(source) as archive:
        assert archive.read("xl/vbaProject.bin") == b"\x00fake vba"
    assert (tmp_path / "m.xlsm.bak").exists()


def test_in_place_keeps_a_backup(stub: Any, tmp_path: Path) -> None:
    source = build(tmp_path / "book.xlsx")
    original = source.read_bytes()
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer), in_place=True)
    assert (tmp_path / "book.xlsx.bak").read_bytes() == original
    assert openpyxl.load_workbook(source)["Leads"]["C3"].value == "ACME"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx", "book.xlsx.bak"]


@pytest.mark.parametrize(
    ("setup", "options", "message"),
    [
        ("lock", {"in_place": True}, "open in Excel"),
        ("corrupt", {}, "not a readable"),
        (None, {"sources": ["nope"]}, "no column 'nope'"),
        (None, {"sheet": "Nope"}, "no sheet 'Nope'"),
        ("doctype", {}, "document type"),
        (None, {"output": "x.csv"}, "suffix"),
    ],
)
def test_bad_inputs_fail_before_any_call(
    stub: Any, tmp_path: Path, setup: str | None, options: dict[str, Any], message: str
) -> None:
    source = build(tmp_path / "book.xlsx")
    if setup == "lock":
        (tmp_path / "~$book.xlsx").write_bytes(b"owner")
    elif setup == "corrupt":
        source.write_bytes(source.read_bytes()[:500])
    elif setup == "doctype":  # how entity expansion attacks begin; no Office file has one
        replace_part(source, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(
            "<worksheet", '<!DOCTYPE x [<!ENTITY a "aaaaaaaa">]><worksheet', 1))  # fmt: skip
    files = {p.name: sha(p) for p in tmp_path.iterdir()}
    extractor = stub(answer)
    arguments: dict[str, Any] = {"sources": ["notes"], **options}
    if "output" in arguments:
        arguments["output"] = tmp_path / arguments["output"]
    with pytest.raises(TableError, match=message):
        fill(source, target=Lead, extractor=extractor, **arguments)
    assert extractor.inputs_type is None
    assert {p.name: sha(p) for p in tmp_path.iterdir()} == files


def test_every_other_part_is_kept_byte_for_byte(stub: Any, tmp_path: Path) -> None:
    """Charts, drawings, images and anything else fill does not edit come out as they
    went in, so filling in place needs no --force."""
    source = build(tmp_path / "book.xlsx")
    with zipfile.ZipFile(source, "a") as archive:
        archive.writestr("xl/charts/chart1.xml", "<c:chartSpace/>")
        archive.writestr("xl/media/image1.png", b"\x89PNG not really")
    with zipfile.ZipFile(source) as archive:
        before = {name: archive.read(name) for name in archive.namelist()}
    warnings: list[str] = []
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor, in_place=True,
         warn=warnings.append)  # fmt: skip
    with zipfile.ZipFile(source) as archive:
        after = {name: archive.read(name) for name in archive.namelist()}
    assert list(after) == list(before)
    # (openpyxl's workbook part already asks for recalculation on opening)
    edited = {"xl/worksheets/sheet1.xml", "xl/styles.xml", "xl/tables/table1.xml"}
    assert {name for name in before if before[name] != after[name]} == edited
    assert warnings == []
    # in the edited sheet, the rows no cell was written to are the same bytes
    old_sheet = before["xl/worksheets/sheet1.xml"].decode()
    new_sheet = after["xl/worksheets/sheet1.xml"].decode()
    untouched_row = old_sheet[old_sheet.index('<row r="6"') : old_sheet.index('<row r="7"')]
    assert untouched_row in new_sheet
    assert 'fullCalcOnLoad="1"' in after["xl/workbook.xml"].decode()


def test_dry_run_and_limit(stub: Any, tmp_path: Path) -> None:
    source = build(tmp_path / "book.xlsx")
    report = fill(source, target=Lead, sources=["notes"], dry_run=True)
    assert report["planned"] == 5 and report["first_input"] == "acme wants 20 seats"
    assert not (tmp_path / "book.filled.xlsx").exists()
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes", "id"], extractor=extractor, limit=2)
    assert extractor.seen == ["notes: acme wants 20 seats\nid: 1", "notes: globex renewal\nid: 2"]


def test_rich_text_cells_survive(stub: Any, tmp_path: Path) -> None:
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "memo"])
    ws.append(["alpha", None])
    ws["B2"] = CellRichText(["plain ", TextBlock(InlineFont(b=True), "bold")])
    source = tmp_path / "r.xlsx"
    book.save(source)
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer))
    new = openpyxl.load_workbook(tmp_path / "r.filled.xlsx", rich_text=True).active
    assert new is not None
    assert isinstance(new["B2"].value, CellRichText) and str(new["B2"].value) == "plain bold"
    assert new["C2"].value == "ALPHA"


def test_huge_unpacked_size_needs_force(
    stub: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldwise_xlsx import _book

    monkeypatch.setattr(_book, "MAX_UNPACKED_BYTES", 100)
    source = build(tmp_path / "book.xlsx")
    with pytest.raises(TableError, match="--force"):
        fill(source, target=Lead, sources=["notes"], extractor=stub(answer))
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer), force=True)


def replace_part(path: Path, part: str, edit: Callable[[str], str]) -> None:
    """Rewrite one part of a workbook's zip with ``edit``."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts[part] = edit(parts[part].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


def with_cached_results(path: Path, results: dict[str, str]) -> Path:
    """Store a cached result for formula cells, as Excel does on save (openpyxl writes
    formulas with an empty ``<v>``): ``{"B2": "text"}``."""

    def edit(xml: str) -> str:
        for ref, value in results.items():
            start = xml.index(f'<c r="{ref}"')
            end = xml.index("</c>", start)
            cell = xml[start:end].replace("<v></v>", f"<v>{value}</v>")
            xml = xml[:start] + cell.replace(">", ' t="str">', 1) + xml[end:]
        return xml

    replace_part(path, "xl/worksheets/sheet1.xml", edit)
    return path


def test_formula_sources_are_read_as_their_cached_results(stub: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["id", '="no"&"tes"', "company"])  # a header made by a formula
    ws.append([1, '=LOWER("ACME WANTS SEATS")', None])
    ws.append([2, "globex plain text", None])
    source = tmp_path / "f.xlsx"
    book.save(source)
    with_cached_results(source, {"B1": "notes", "B2": "acme wants seats"})
    before = sha(source)
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["acme wants seats", "globex plain text"]
    assert sha(source) == before
    new = openpyxl.load_workbook(tmp_path / "f.filled.xlsx").active
    assert new is not None
    assert new["B2"].value == '=LOWER("ACME WANTS SEATS")'  # the formula is kept
    assert [new["C2"].value, new["C3"].value] == ["ACME", "GLOBEX"]


def test_formulas_outside_the_sources_leave_the_source_text_as_stored(
    stub: Any, tmp_path: Path
) -> None:
    """A formula column beside the sources changes nothing that is sent; rich text and
    dates in a source are sent as plain text, as the cached-result pass gives them."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "double", "company"])
    ws.append([CellRichText(["acme ", TextBlock(InlineFont(b=True), "bold")]), "=1*2", None])
    ws.append([datetime(2024, 5, 1, 9, 30), "=2*2", None])
    ws.append([None, "=3*2", None])  # no input: not sent
    source = tmp_path / "g.xlsx"
    book.save(source)
    extractor = stub(answer)
    report = fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["acme bold", "2024-05-01T09:30:00"]
    assert report["planned"] == 2


def test_a_new_cell_takes_its_rows_or_columns_format(stub: Any, tmp_path: Path) -> None:
    """A cell that was not stored gets the format Excel gives what is typed there: its
    row's when the row has one, else its column's; a date keeps that format's other
    attributes, and its number format when it already shows dates."""

    class Row(BaseModel):
        company: str | None = None
        since: date | None = None
        until: date | None = None
        amount: float | None = None

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "company", "since", "until", "amount"])
    ws.append(["acme deal"])
    ws.append(["globex deal"])
    ws.column_dimensions["B"].fill = PatternFill("solid", fgColor="FFFF00")
    ws.column_dimensions["C"].fill = PatternFill("solid", fgColor="00FF00")
    ws.column_dimensions["D"].number_format = "dd/mm/yyyy"
    ws.column_dimensions["E"].number_format = '"$"#,##0.00'
    ws.row_dimensions[3].font = Font(italic=True)
    source = tmp_path / "f.xlsx"
    book.save(source)
    answers = {"since": "2024-01-02", "until": "2024-03-04", "amount": 3.5}
    fill(source, target=Row, sources=["notes"],
         extractor=stub(lambda text: {"company": text.split()[0].upper(), **answers}))  # fmt: skip
    new = openpyxl.load_workbook(tmp_path / "f.filled.xlsx").active
    assert new is not None
    b2, c2, d2, e2 = (new[ref] for ref in ("B2", "C2", "D2", "E2"))
    assert b2.value == "ACME" and b2.fill.fgColor.rgb == "00FFFF00"
    assert c2.value == datetime(2024, 1, 2) and c2.number_format == "yyyy-mm-dd"
    assert c2.fill.fgColor.rgb == "0000FF00"  # the column's fill kept with a date format
    assert d2.value == datetime(2024, 3, 4) and d2.number_format == "dd/mm/yyyy"
    assert e2.value == 3.5 and e2.number_format == '"$"#,##0.00'
    row3 = [new.cell(3, c) for c in range(2, 6)]  # the row's format wins over the columns'
    assert [c.font.i for c in row3] == [True] * 4
    assert [c.number_format for c in row3] == ["General", "yyyy-mm-dd", "yyyy-mm-dd", "General"]
    assert row3[1].value == datetime(2024, 1, 2) and row3[3].value == 3.5


def test_only_totals_rows_of_tables_over_the_filled_columns_are_skipped(
    stub: Any, tmp_path: Path
) -> None:
    """Another table's totals row beside the data shares a row number with a data row,
    which is filled; the totals row of a table the fill grows over its new column is
    not data, as that of a table over a source or target column is not."""

    class Pair(BaseModel):
        company: str | None = None
        size: int | None = None

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "company", None, "k", "v", None, "x", "y"])
    for row in range(2, 8):
        ws.cell(row, 1, f"row{row} text")
    for ref, value in {"D3": "k", "E3": "v", "D4": "a", "E4": 1, "D5": "Total"}.items():
        ws[ref] = value
    ws["E5"] = "=SUBTOTAL(109,E4:E4)"
    ws.add_table(Table(displayName="Side", ref="D3:E5", totalsRowCount=1))
    ws["G2"], ws["H2"], ws["G6"] = 1, 2, "Total"
    ws.add_table(Table(displayName="Beside", ref="G1:H6", totalsRowCount=1))
    source = tmp_path / "t.xlsx"
    book.save(source)
    extractor = stub(lambda text: {"company": text.upper(), "size": 1})
    report = fill(source, target=Pair, sources=["notes"], extractor=extractor)
    assert extractor.seen == [f"row{r} text" for r in (2, 3, 4, 5, 7)]  # 6: Beside's totals
    assert report["rows"] == 5
    new = openpyxl.load_workbook(tmp_path / "t.filled.xlsx").active
    assert new is not None
    assert new["B5"].value == "ROW5 TEXT" and new["B6"].value is None
    assert new["I1"].value == "size" and new.tables["Beside"].ref == "G1:I6"
    assert [new.cell(r, 9).value for r in range(2, 8)] == [1, 1, 1, 1, None, 1]
