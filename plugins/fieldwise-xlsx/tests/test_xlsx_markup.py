"""The in-place sheet editor on markup openpyxl never writes (prefixes, rows and cells
without ``r``, comments, CDATA, phonetic guides, 1904 dates, missing rows), and a
property: for any sheet openpyxl writes and any answers, only the target cells change,
to exactly the typed values the model gave."""

from __future__ import annotations

import struct
import tempfile
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fieldwise_xlsx import fill
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel

from fieldwise.tables import TableError

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
STYLES = (
    f'<styleSheet xmlns="{MAIN}"><fonts count="1"><font/></fonts><fills count="1">'
    '<fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/>'
    '</cellStyleXfs><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


class Company(BaseModel):
    company: str | None = None


class Dated(BaseModel):
    company: str | None = None
    since: date | None = None


def write_package(
    path: Path,
    sheet: str | bytes,
    *,
    strings: str | None = None,
    styles: str | None = STYLES,
    workbook_properties: str = "",
) -> Path:
    """A workbook zip written by hand, part by part, as Excel and other writers may."""
    overrides = {"/xl/workbook.xml": "sheet.main", "/xl/worksheets/sheet1.xml": "worksheet"}
    if styles is not None:
        overrides["/xl/styles.xml"] = "styles"
    if strings is not None:
        overrides["/xl/sharedStrings.xml"] = "sharedStrings"
    types = "".join(
        f'<Override PartName="{name}" ContentType="application/vnd.openxmlformats-'
        f'officedocument.spreadsheetml.{kind}+xml"/>'
        for name, kind in overrides.items()
    )
    rels = [("rId1", "worksheet", "worksheets/sheet1.xml")]
    if styles is not None:
        rels.append(("rId2", "styles", "styles.xml"))
    if strings is not None:
        rels.append(("rId3", "sharedStrings", "sharedStrings.xml"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f"{types}</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{PACKAGE_RELS}"><Relationship Id="rId1" Type="{RELS}/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{RELS}">{workbook_properties}<sheets>'
            '<sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PACKAGE_RELS}">'
            + "".join(
                f'<Relationship Id="{i}" Type="{RELS}/{kind}" Target="{target}"/>'
                for i, kind, target in rels
            )
            + "</Relationships>",
        )
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        if styles is not None:
            archive.writestr("xl/styles.xml", styles)
        if strings is not None:
            archive.writestr("xl/sharedStrings.xml", strings)
    return path


def sheet_xml(rows: str, prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    declaration = f'xmlns:{prefix}="{MAIN}"' if prefix else f'xmlns="{MAIN}"'
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<{p}worksheet {declaration}><{p}dimension ref="A1:B3"/><{p}sheetData>{rows}'
        f"</{p}sheetData></{p}worksheet>"
    )


def part(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name).decode()


def well_formed(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith((".xml", ".rels")):
                etree.fromstring(archive.read(name))


def upper(text: str) -> dict[str, Any]:
    return {"company": text.split()[0].upper(), "since": "2024-01-02"}


def test_prefixed_markup_with_rows_and_cells_without_r(stub: Any, tmp_path: Path) -> None:
    rows = (
        '<x:row><x:c t="inlineStr"><x:is><x:t>notes</x:t></x:is></x:c>'
        '<x:c t="inlineStr"><x:is><x:t>company</x:t></x:is></x:c></x:row>'
        '<x:row spans="1:2"><x:c t="inlineStr"><x:is><x:t>acme deal</x:t></x:is></x:c></x:row>'
        '<x:row r="3" spans="1:1"><x:c r="A3" t="inlineStr"><x:is><x:t>initech</x:t></x:is>'
        "</x:c></x:row>"
    )
    source = write_package(tmp_path / "p.xlsx", sheet_xml(rows, prefix="x"))
    extractor = stub(upper)
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    out = tmp_path / "p.filled.xlsx"
    well_formed(out)
    ws = openpyxl.load_workbook(out).active
    assert ws is not None
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        ["notes", "company"],
        ["acme deal", "ACME"],
        ["initech", "INITECH"],
    ]
    xml = part(out, "xl/worksheets/sheet1.xml")
    assert '<x:row r="2">' in xml and "spans" not in xml  # numbered; stale hint dropped
    assert '<x:c r="A2" t="inlineStr">' in xml  # a changed row's cells say where they are
    assert '<x:dimension ref="A1:B3"/>' in xml


def test_shared_strings_phonetic_guides_comments_and_cdata(stub: Any, tmp_path: Path) -> None:
    strings = (
        f'<sst xmlns="{MAIN}" count="3" uniqueCount="3"><si><t>notes</t></si>'
        '<si><r><rPr><b/></rPr><t xml:space="preserve">acme </t></r><r><t>bold</t></r>'
        "<rPh sb='0' eb='1'><t>PHONETIC</t></rPh></si>"
        "<si><t>company</t></si></sst>"
    )
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>2</v></c></row>'
        "<!-- a note some tool left -->"
        '<row r="2"><c r="A2" t="s"><v>1</v></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><t><![CDATA[globex <&> co]]></t></is></c></row>'
    )
    source = write_package(tmp_path / "s.xlsx", sheet_xml(rows), strings=strings)
    extractor = stub(lambda text: {"company": f" {text.upper()}\n"})
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["acme bold", "globex <&> co"]
    out = tmp_path / "s.filled.xlsx"
    well_formed(out)
    ws = openpyxl.load_workbook(out).active
    assert ws is not None  # markup characters and edge whitespace come back as written
    assert [ws["B2"].value, ws["B3"].value] == [" ACME BOLD\n", " GLOBEX <&> CO\n"]


def test_line_ends_read_as_a_parser_reads_them(stub: Any, tmp_path: Path) -> None:
    """A literal CR in markup is a line end (XML normalizes it); only ``&#13;`` is a CR.
    A CR from the model is written so that it comes back as one."""
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>one\r\ntwo\rthree&#13;four</t></is></c>'
        "</row>"
    )
    source = write_package(tmp_path / "n.xlsx", sheet_xml(rows))
    extractor = stub(lambda text: {"company": "a\rb\r\nc"})
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["one\ntwo\nthree\rfour"]
    ws = openpyxl.load_workbook(tmp_path / "n.filled.xlsx").active
    assert ws is not None
    assert ws["B2"].value == "a\rb\r\nc"


def test_1904_dates_are_read_and_written_in_the_workbook_epoch(stub: Any, tmp_path: Path) -> None:
    # 43586 days after 1904-01-01 is 2023-05-02; without styles, no date format exists
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c></row>'
        '<row r="2"><c r="A2" s="1"><v>43586</v></c></row>'
    )
    source = write_package(
        tmp_path / "d.xlsx", sheet_xml(rows), workbook_properties='<workbookPr date1904="1"/>'
    )
    extractor = stub(lambda text: {"company": "ACME", "since": "2024-01-02"})
    fill(source, target=Dated, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["2023-05-02"]
    out = tmp_path / "d.filled.xlsx"
    ws = openpyxl.load_workbook(out).active
    assert ws is not None
    assert ws["C2"].value == datetime(2024, 1, 2) and ws["C2"].is_date
    assert ws["C2"].number_format == "yyyy-mm-dd"
    styles = part(out, "xl/styles.xml")
    assert styles.index("<numFmts") < styles.index("<fonts")  # first, as the schema says
    workbook = part(out, "xl/workbook.xml")
    assert workbook.index('<calcPr fullCalcOnLoad="1"/>') < workbook.index("</workbook>")
    well_formed(out)


@pytest.mark.parametrize("date1904", [False, True])
def test_dates_before_the_epoch_are_written_as_text(
    stub: Any, tmp_path: Path, date1904: bool
) -> None:
    """Excel shows a negative date serial as ####: the date goes in as text instead."""
    rows = '<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c></row>' + "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>row {r}</t></is></c></row>' for r in (2, 3)
    )
    properties = '<workbookPr date1904="1"/>' if date1904 else ""
    source = write_package(tmp_path / "e.xlsx", sheet_xml(rows), workbook_properties=properties)
    since = {"row 2": "1850-03-04", "row 3": "1904-01-02" if date1904 else "1900-01-01"}
    fill(source, target=Dated, sources=["notes"], extractor=stub(lambda t: {"since": since[t]}))
    ws = openpyxl.load_workbook(tmp_path / "e.filled.xlsx").active
    assert ws is not None
    assert ws["C2"].value == "1850-03-04" and ws["C2"].data_type == "s"
    serial_one = datetime(1904, 1, 2) if date1904 else datetime(1900, 1, 1)
    assert ws["C3"].value == serial_one and ws["C3"].is_date  # serial 1: a date
    well_formed(tmp_path / "e.filled.xlsx")


def test_a_missing_row_is_created_in_its_place(stub: Any, tmp_path: Path) -> None:
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>company</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>acme</t></is></c></row>'
        '<row r="4"><c r="A4" t="inlineStr"><is><t>globex</t></is></c></row>'
    )
    sheet = sheet_xml(rows).replace(
        "</sheetData>", '</sheetData><mergeCells count="1"><mergeCell ref="A2:A3"/></mergeCells>'
    )
    source = write_package(tmp_path / "m.xlsx", sheet)
    extractor = stub(upper)
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["acme", "acme", "globex"]  # row 3 reads the merged anchor
    xml = part(tmp_path / "m.filled.xlsx", "xl/worksheets/sheet1.xml")
    assert xml.index('<row r="2"') < xml.index('<row r="3">') < xml.index('<row r="4"')
    ws = openpyxl.load_workbook(tmp_path / "m.filled.xlsx").active
    assert ws is not None
    assert [ws[f"B{r}"].value for r in (2, 3, 4)] == ["ACME", "ACME", "GLOBEX"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('<c r="a2" t="inlineStr"><is><t>lower-case ref</t></is></c>', None),
        ('<c r="A2" t="s"><v>7</v></c>', "damaged"),  # no shared string 7
        ('<c r="A2" t="b"><v>yes</v></c>', "damaged"),
    ],
)
def test_odd_cells_are_read_or_refused_clearly(
    stub: Any, tmp_path: Path, cell: str, expected: str | None
) -> None:
    rows = (
        f'<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c></row><row r="2">{cell}</row>'
    )
    source = write_package(tmp_path / "o.xlsx", sheet_xml(rows))
    extractor = stub(upper)
    if expected is None:
        fill(source, target=Company, sources=["notes"], extractor=extractor)
        assert extractor.seen == ["lower-case ref"]
        return
    with pytest.raises(TableError, match=expected):
        fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert not (tmp_path / "o.filled.xlsx").exists()


def test_strict_open_xml_is_refused_with_advice(stub: Any, tmp_path: Path) -> None:
    strict = sheet_xml("").replace(MAIN, "http://purl.oclc.org/ooxml/spreadsheetml/main")
    source = write_package(tmp_path / "x.xlsx", strict)
    before = source.read_bytes()
    with pytest.raises(TableError, match="Strict Open XML"):
        fill(source, target=Company, sources=["notes"], extractor=stub(upper))
    assert source.read_bytes() == before


def header_and(row: str) -> str:
    return (
        f'<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c></row><row r="2">{row}</row>'
    )


def test_a_part_declared_in_another_encoding_is_read_and_written_in_utf8(
    stub: Any, tmp_path: Path
) -> None:
    sheet = sheet_xml(header_and('<c r="A2" t="inlineStr"><is><t>Café deal</t></is></c>'))
    data = sheet.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    source = write_package(tmp_path / "l.xlsx", data)
    extractor = stub(lambda text: {"company": "Müller \uffff\ufffe"})  # no XML char either
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["Café deal"]
    out = tmp_path / "l.filled.xlsx"
    well_formed(out)
    ws = openpyxl.load_workbook(out).active
    assert ws is not None and ws["B2"].value == "Müller "


def test_text_beyond_excels_limits_and_escapes(stub: Any, tmp_path: Path) -> None:
    """An answer longer than a cell holds is cut, with a warning; text that looks like
    Excel's character escape (``_x000D_``) is escaped so that Excel shows it as written."""
    rows = header_and('<c r="A2" t="inlineStr"><is><t>long</t></is></c>') + (
        '<row r="3"><c r="A3" t="inlineStr"><is><t>escape</t></is></c></row>'
    )
    rows += '<row r="4"><c r="A4" t="inlineStr"><is><t>wide</t></is></c></row>'
    source = write_package(tmp_path / "x.xlsx", sheet_xml(rows))
    answers = {"long": "y" * 40_000, "escape": "a_x000D_b_x0041_x0042_", "wide": "😀" * 20_000}
    warnings: list[str] = []
    extractor = stub(lambda text: {"company": answers[text]})
    fill(source, target=Company, sources=["notes"], extractor=extractor, warn=warnings.append)
    assert any("32,767" in w for w in warnings)
    xml = part(tmp_path / "x.filled.xlsx", "xl/worksheets/sheet1.xml")
    assert ">" + "y" * 32_767 + "<" in xml
    assert ">a_x005F_x000D_b_x005F_x0041_x005F_x0042_<" in xml
    assert ">" + "😀" * 16_383 + "<" in xml  # 32,766 UTF-16 units: a pair is not split


@pytest.mark.filterwarnings("ignore:Unknown extension:UserWarning")  # openpyxl reading it
def test_a_cells_own_extension_list_is_not_the_rows(stub: Any, tmp_path: Path) -> None:
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>notes</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>other</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>acme</t></is></c>'
        '<c r="B2"><v>5</v><extLst><ext uri="{C}"/></extLst></c>'
        '<c r="C2" t="inlineStr"><is><t>kept</t></is></c></row>'
    )
    source = write_package(tmp_path / "c.xlsx", sheet_xml(rows))
    fill(source, target=Company, sources=["notes"], extractor=stub(upper))
    out = tmp_path / "c.filled.xlsx"
    well_formed(out)
    ws = openpyxl.load_workbook(out).active
    assert ws is not None  # C holds data: the new column goes to D
    assert [c.value for c in ws[1]] == ["notes", "other", None, "company"]
    assert [c.value for c in ws[2]] == ["acme", 5, "kept", "ACME"]


def test_an_unclosed_cell_is_damage(stub: Any, tmp_path: Path) -> None:
    rows = header_and('<c r="A2" t="inlineStr"><is><t>acme</t></is></c><c r="C2"><v>5</v>')
    source = write_package(tmp_path / "u.xlsx", sheet_xml(rows))
    with pytest.raises(TableError, match="not closed"):
        fill(source, target=Company, sources=["notes"], extractor=stub(upper))


def test_status_columns_and_later_new_headers(stub: Any, tmp_path: Path) -> None:
    """Status cells are never written over a formula or a merged range's inner cell; every
    new header takes the format of the header left of the first new column."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["notes", "_status", "_error"])
    ws.append(["acme", "=1+1", None])
    ws.append(["globex", None, None])
    ws.merge_cells("C2:C3")
    ws["C1"].font = openpyxl.styles.Font(bold=True)
    source = tmp_path / "s.xlsx"
    book.save(source)
    fill(source, target=Dated, sources=["notes"], extractor=stub(upper), status_columns=True)
    new = openpyxl.load_workbook(tmp_path / "s.filled.xlsx").active
    assert new is not None
    assert [new["B2"].value, new["B3"].value] == ["=1+1", "ok"]
    assert "C3" not in {c.coordinate for row in new.iter_rows() for c in row if c.value}
    assert [new["D1"].value, new["E1"].value] == ["company", "since"]
    assert new["D1"].font.b and new["E1"].font.b


def test_an_integer_no_cell_number_holds_is_written_as_text(stub: Any, tmp_path: Path) -> None:
    class Size(BaseModel):
        size: int | None = None

    source = write_package(tmp_path / "i.xlsx", sheet_xml(header_and(
        '<c r="A2" t="inlineStr"><is><t>acme</t></is></c>')))  # fmt: skip
    fill(source, target=Size, sources=["notes"], extractor=stub(lambda text: {"size": 10**400}))
    ws = openpyxl.load_workbook(tmp_path / "i.filled.xlsx").active
    assert ws is not None and ws["B2"].value == str(10**400) and ws["B2"].data_type == "s"


def test_no_new_column_past_xfd(stub: Any, tmp_path: Path) -> None:
    rows = header_and('<c r="A2" t="inlineStr"><is><t>acme</t></is></c>')
    sheet = sheet_xml(rows).replace(  # a merged range reaching Excel's last column
        "</sheetData>", '</sheetData><mergeCells count="1"><mergeCell ref="B2:XFD2"/></mergeCells>'
    )
    source = write_package(tmp_path / "w.xlsx", sheet)
    with pytest.raises(TableError, match="XFD"):
        fill(source, target=Company, sources=["notes"], extractor=stub(upper))


def test_a_copied_entry_loses_only_its_zip64_record() -> None:
    """Another writer may leave a zip64 record in an entry's extra field; zipfile writes
    its own when one is needed, so the input's (with the input's sizes) is dropped and
    any other extra field kept."""
    from fieldwise_xlsx._package import _without_zip64

    zip64 = b"\x01\x00\x10\x00" + bytes(16)
    timestamp = b"UT\x05\x00\x01" + bytes(4)
    assert _without_zip64(zip64 + timestamp) == timestamp
    assert _without_zip64(timestamp + zip64) == timestamp
    assert _without_zip64(b"") == b""


def test_a_row_extension_list_stays_after_its_cells(stub: Any, tmp_path: Path) -> None:
    row = '<c r="A2" t="inlineStr"><is><t>acme</t></is></c><extLst><ext uri="{X}"/></extLst>'
    source = write_package(tmp_path / "e.xlsx", sheet_xml(header_and(row)))
    fill(source, target=Company, sources=["notes"], extractor=stub(upper))
    xml = part(tmp_path / "e.filled.xlsx", "xl/worksheets/sheet1.xml")
    assert '<c r="B2" t="inlineStr"><is><t xml:space="preserve">ACME</t></is></c><extLst>' in xml


def test_a_cell_without_s_has_format_record_0(stub: Any, tmp_path: Path) -> None:
    styles = STYLES.replace('<xf numFmtId="0"/><xf numFmtId="14"/>', '<xf numFmtId="14"/>')
    sheet = sheet_xml(header_and('<c r="A2"><v>45000</v></c><c r="B2" s="0"><v>1</v></c>'))
    source = write_package(tmp_path / "z.xlsx", sheet, styles=styles)
    extractor = stub(upper)
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["2023-03-15"]  # a date, as openpyxl and Excel read it
    bare = write_package(tmp_path / "b.xlsx", sheet, styles=None)  # no styles part at all
    extractor = stub(upper)
    fill(bare, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["45000"]


@pytest.mark.parametrize(
    "damage",
    [
        ("xl/worksheets/sheet1.xml", "</sheetData>",
         '</sheetData><mergeCells count="1"><mergeCell ref="A1:"/></mergeCells>'),
        ("xl/styles.xml", '<xf numFmtId="14"/>', '<xf numFmtId="x"/>'),
        ("xl/worksheets/sheet1.xml", "<t>acme</t>", "<t>&#1114112;</t>"),
    ],
)  # fmt: skip
def test_damaged_markup_is_a_table_error(
    stub: Any, tmp_path: Path, damage: tuple[str, str, str]
) -> None:
    name, old, new = damage
    sheet = sheet_xml(header_and('<c r="A2" t="inlineStr"><is><t>acme</t></is></c>'))
    if name == "xl/styles.xml":
        source = write_package(tmp_path / "d.xlsx", sheet, styles=STYLES.replace(old, new))
    else:
        source = write_package(tmp_path / "d.xlsx", sheet.replace(old, new))
    extractor = stub(upper)
    with pytest.raises(TableError, match="damaged"):
        fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == []


def test_tables_totals_rows_case_and_hidden_columns(stub: Any, tmp_path: Path) -> None:
    """A totals row is not data; a table is not grown over a column whose name it has in
    another case; a new column the sheet hides is warned about."""
    from openpyxl.worksheet.table import Table

    class Notes(BaseModel):
        Notes: str | None = None

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    for row in (["id", "notes"], [1, "acme deal"], [2, "initech"], ["Total", None]):
        ws.append(row)
    table = Table(displayName="T1", ref="A1:B4", totalsRowCount=1)
    ws.add_table(table)
    ws.column_dimensions.group("C", "H", hidden=True)
    source = tmp_path / "t.xlsx"
    book.save(source)
    warnings: list[str] = []
    extractor = stub(lambda text: {"Notes": "x"})
    report = fill(source, target=Notes, sources=["id"], extractor=extractor, warn=warnings.append)
    assert extractor.seen == ["1", "2"]
    assert any("not extended" in w for w in report["warnings"])
    assert any("hidden" in w for w in warnings)
    new = openpyxl.load_workbook(tmp_path / "t.filled.xlsx").active
    assert new is not None
    assert [c.name for c in new.tables["T1"].tableColumns] == ["id", "notes"]
    assert [new.cell(r, 3).value for r in range(1, 5)] == ["Notes", "x", "x", None]


def test_calc_on_load_goes_after_sheets_not_into_an_earlier_extension(
    stub: Any, tmp_path: Path
) -> None:
    views = '<bookViews><workbookView><extLst><ext uri="{V}"/></extLst></workbookView></bookViews>'
    sheet = sheet_xml(header_and('<c r="A2" t="inlineStr"><is><t>acme</t></is></c>'))
    source = write_package(tmp_path / "w.xlsx", sheet, workbook_properties=views)
    fill(source, target=Company, sources=["notes"], extractor=stub(upper))
    workbook = part(tmp_path / "w.filled.xlsx", "xl/workbook.xml")
    assert workbook.index("</sheets>") < workbook.index("<calcPr") < workbook.index("</workbook>")
    well_formed(tmp_path / "w.filled.xlsx")


def test_a_workbook_libreoffice_wrote(stub: Any, tmp_path: Path) -> None:
    """``data/libreoffice-7.4.xlsx``: LibreOffice Calc 7.4's own writer (shared strings,
    ``cols`` with ``true``/``false`` flags, x14 namespaces, a date column), converted from
    a three-row CSV. Its output was also opened by LibreOffice when this test was written
    (``soffice --convert-to csv``) and read back as below."""
    import shutil

    source = tmp_path / "leads.xlsx"
    shutil.copy(Path(__file__).parent / "data" / "libreoffice-7.4.xlsx", source)
    extractor = stub(lambda text: {"company": text.split()[0].upper(), "since": "2024-01-02"})
    report = fill(source, target=Dated, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["acme wants 20 seats", "globex renewal", "multi\nline note"]
    assert report["warnings"] == []
    out = tmp_path / "leads.filled.xlsx"
    well_formed(out)
    ws = openpyxl.load_workbook(out).active
    assert ws is not None
    assert [tuple(row) for row in ws.iter_rows(values_only=True)] == [
        ("id", "notes", "company", "when", "since"),
        (1, "acme wants 20 seats", "ACME", datetime(2024, 5, 1), datetime(2024, 1, 2)),
        (2, "globex renewal", "PRESET", datetime(2024, 5, 2), datetime(2024, 1, 2)),
        (3, "multi\nline note", "MULTI", None, datetime(2024, 1, 2)),
    ]


# -- property: only target cells change, to the model's typed values ---------------------

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12
).filter(lambda t: "_x" not in t)
#: what the test writes with openpyxl, which would store ``=...`` as a formula
CELL_TEXT = TEXT.filter(lambda t: not t.startswith("="))
NOTES = CELL_TEXT.filter(lambda t: t.strip() != "")
OTHER = st.none() | st.integers(-(10**12), 10**12) | CELL_TEXT | st.booleans()


class Typed(BaseModel):
    company: str | None = None
    size: int | None = None
    score: float | None = None
    when: date | None = None
    flag: bool | None = None
    at: time | None = None


ANSWER = st.fixed_dictionaries(
    {
        "company": st.none() | TEXT,
        "size": st.none() | st.integers(-(10**12), 10**12),
        "score": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "when": st.none() | st.dates(min_value=date(1900, 3, 1)),
        "flag": st.none() | st.booleans(),
        "at": st.none() | st.times().map(lambda t: t.replace(microsecond=0)),
    }
)


def as_stored(value: Any) -> Any:
    """What openpyxl stores for a value the test wrote with it (it drops empty text)."""
    return None if value == "" else value


def expected_cell(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    return value


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(NOTES, st.none() | CELL_TEXT, OTHER), min_size=1, max_size=6),
    answers=st.lists(ANSWER, min_size=6, max_size=6),
)
def test_only_target_cells_change_to_the_typed_answers(
    stub: Any, rows: list[tuple[str, str | None, Any]], answers: list[dict[str, Any]]
) -> None:
    by_text: dict[str, dict[str, Any]] = {}
    for (notes, _, _), answer in zip(rows, answers, strict=False):
        by_text.setdefault(notes, answer)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "p.xlsx"
        book = openpyxl.Workbook()
        ws = book.active
        assert ws is not None
        ws.append(["notes", "company", "other"])
        for row in rows:
            ws.append(list(row))
        ws["B1"].font = openpyxl.styles.Font(bold=True)
        book.save(source)
        fill(source, target=Typed, sources=["notes"], extractor=stub(by_text.__getitem__))
        out = openpyxl.load_workbook(Path(folder) / "p.filled.xlsx").active
        old = openpyxl.load_workbook(source).active
        assert out is not None and old is not None
        assert [c.value for c in out[1]] == ["notes", "company", "other", "size", "score",
                                             "when", "flag", "at"]  # fmt: skip
        assert out["B1"].font.b
        for r, (notes, company_written, other_written) in enumerate(rows, start=2):
            answer = by_text[notes]
            company, other = as_stored(company_written), as_stored(other_written)
            assert out.cell(r, 1).value == old.cell(r, 1).value
            assert out.cell(r, 3).value == old.cell(r, 3).value == other
            if company is not None and company.strip():
                expected = company  # --only-empty: a filled cell is kept
            elif answer["company"] is not None:
                expected = answer["company"]
            else:
                expected = company  # nothing to write over a blank
            assert out.cell(r, 2).value == expected
            got = [out.cell(r, c).value for c in range(4, 9)]
            keys = ("size", "score", "when", "flag", "at")
            assert got == [expected_cell(answer[k]) for k in keys]


# -- cells a fill must not lose, values it must not round, damage it must see -----------


def inline(ref: str, words: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{words}</t></is></c>'


@pytest.mark.parametrize("kind", ["array", "dataTable"])
@pytest.mark.parametrize("only_empty", [True, False])
def test_cells_of_an_array_or_data_table_formula_are_never_written(
    stub: Any, tmp_path: Path, kind: str, only_empty: bool
) -> None:
    """Only the top-left cell of an array (or data-table) formula's range holds its
    ``<f>``; the others hold its results alone (one of them ""), and are the formula's
    all the same: not written, not even a status column, not even with ``--overwrite``."""
    formula = (
        '<f t="array" ref="B2:C4">UPPER(A2:A4)</f>'
        if kind == "array"
        else '<f t="dataTable" ref="B2:C4" dt2D="0" dtr="0" r1="A1"/>'
    )
    rows = (
        f'<row r="1">{inline("A1", "notes")}{inline("B1", "company")}{inline("C1", "_status")}'
        f'</row><row r="2">{inline("A2", "acme")}<c r="B2" t="str">{formula}<v>ACME</v></c>'
        '<c r="C2" t="str"><v>ok</v></c></row>'
        f'<row r="3">{inline("A3", "globex")}<c r="B3" t="str"><v>GLOBEX</v></c>'
        '<c r="C3" t="str"><v></v></c></row>'
        f'<row r="4">{inline("A4", "initech")}<c r="B4" t="str"><v></v></c></row>'
        f'<row r="5">{inline("A5", "umbrella")}</row>'
    )
    source = write_package(tmp_path / "a.xlsx", sheet_xml(rows))
    extractor = stub(upper)
    report = fill(
        source, target=Company, sources=["notes"], extractor=extractor,
        only_empty=only_empty, status_columns=True,
    )  # fmt: skip
    assert extractor.seen == ["umbrella"]
    assert report["cells_written"] == 1 and report["unchanged"] == 3
    xml = part(tmp_path / "a.filled.xlsx", "xl/worksheets/sheet1.xml")
    assert rows[rows.index('<row r="2">') : rows.index('<row r="5">')] in xml  # as they were
    ws = openpyxl.load_workbook(tmp_path / "a.filled.xlsx").active
    assert ws is not None and [ws["B5"].value, ws["C5"].value] == ["UMBRELLA", "ok"]


def test_a_negative_shared_string_index_is_damage(stub: Any, tmp_path: Path) -> None:
    strings = f'<sst xmlns="{MAIN}"><si><t>notes</t></si><si><t>last</t></si></sst>'
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>-1</v>'
    rows += "</c></row>"
    source = write_package(tmp_path / "s.xlsx", sheet_xml(rows), strings=strings)
    extractor = stub(upper)
    with pytest.raises(TableError, match="damaged"):
        fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == []


def test_numbers_a_cell_cannot_hold_exactly_are_written_as_text(stub: Any, tmp_path: Path) -> None:
    """A cell's number is a double: an integer beyond 2**53, or a decimal whose double
    reads back as another number, would lose digits, so it is written as text; what fits
    is a number, and a float is always one."""

    class Exact(BaseModel):
        big: int | None = None
        edge: int | None = None
        low: int | None = None
        long: Decimal | None = None
        short: Decimal | None = None
        tiny: float | None = None

    answer = {
        "big": 2**53 + 1, "edge": 2**53, "low": -(2**53) - 1,
        "long": "0.1234567890123456789", "short": "2.50", "tiny": 1e-320,
    }  # fmt: skip
    source = write_package(tmp_path / "n.xlsx", sheet_xml(header_and(inline("A2", "acme"))))
    fill(source, target=Exact, sources=["notes"], extractor=stub(lambda text: answer))
    ws = openpyxl.load_workbook(tmp_path / "n.filled.xlsx").active
    assert ws is not None
    assert [ws.cell(2, c).value for c in range(2, 8)] == [
        "9007199254740993", 2**53, "-9007199254740993", "0.1234567890123456789", 2.5, 1e-320,
    ]  # fmt: skip
    assert [ws.cell(2, c).data_type for c in range(2, 8)] == ["s", "n", "s", "s", "n", "n"]


def test_merged_source_cells_read_their_anchor_whatever_its_column(
    stub: Any, tmp_path: Path
) -> None:
    """A source cell inside a merged range shows the range's top-left value, which may
    lie in a column that is not a source; and merged source rows below the last stored
    row are rows too."""
    rows = (
        f'<row r="1">{inline("A1", "id")}{inline("B1", "notes")}{inline("C1", "company")}'
        f'</row><row r="2">{inline("A2", "across A:B")}</row>'
        f'<row r="3"><c r="A3"><v>3</v></c>{inline("B3", "initech")}</row>'
        f'<row r="4"><c r="A4"><v>4</v></c>{inline("B4", "down to row 6")}</row>'
    )
    merges = '<mergeCells count="2"><mergeCell ref="A2:B2"/><mergeCell ref="B4:B6"/></mergeCells>'
    sheet = sheet_xml(rows).replace("</sheetData>", "</sheetData>" + merges)
    source = write_package(tmp_path / "m.xlsx", sheet)
    extractor = stub(upper)
    report = fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["across A:B", "initech", "down to row 6", "down to row 6",
                              "down to row 6"]  # fmt: skip
    assert report["rows"] == 5 and report["no_input"] == 0
    ws = openpyxl.load_workbook(tmp_path / "m.filled.xlsx").active
    assert ws is not None
    assert [ws.cell(r, 3).value for r in range(2, 7)] == ["ACROSS", "INITECH"] + ["DOWN"] * 3
    well_formed(tmp_path / "m.filled.xlsx")


def _damage(path: Path, name: str) -> None:
    """Spoil one zip entry's data where it lies: a deflated entry's first block gets a
    block type that does not exist; a stored entry gets a wrong byte (its CRC fails)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
    at = info.header_offset + 30 + name_length + extra_length
    if info.compress_type == zipfile.ZIP_DEFLATED:
        raw[at] = 0xFF
    else:
        raw[at + 10] ^= 0x20
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("name", "compression"),
    [
        ("xl/worksheets/sheet1.xml", zipfile.ZIP_DEFLATED),  # a part the fill reads
        ("customXml/item1.xml", zipfile.ZIP_DEFLATED),  # a part it only copies
        ("customXml/item1.xml", zipfile.ZIP_STORED),  # ... whose CRC fails
    ],
)
def test_a_damaged_zip_entry_fails_before_any_call(
    stub: Any, tmp_path: Path, name: str, compression: int
) -> None:
    source = write_package(tmp_path / "z.xlsx", sheet_xml(header_and(inline("A2", "acme"))))
    with zipfile.ZipFile(source, "a") as archive:
        archive.writestr("customXml/item1.xml", "<r>" + "data " * 100 + "</r>", compression)
    _damage(source, name)
    before = source.read_bytes()
    extractor = stub(upper)
    with pytest.raises(TableError, match=f"{name} cannot be read.*damaged"):
        fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == []
    assert source.read_bytes() == before
    assert not (tmp_path / "z.filled.xlsx").exists()
