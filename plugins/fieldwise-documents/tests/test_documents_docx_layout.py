"""DOCX text as Word lays it out: hidden text, line and page breaks, list numbers.

Each document is written by python-docx, with a little WordprocessingML spliced in
where python-docx has no API (numbering definitions, character styles).
"""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_BREAK
from docx.oxml.ns import nsdecls
from docx.oxml.parser import parse_xml
from fieldwise_documents import CorruptDocumentError, load_docx

from fieldwise.document import Document

pytestmark = pytest.mark.usefixtures("plugin_loaded")

_W = nsdecls("w")


def _saved(document: docx.document.Document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _text(document: docx.document.Document) -> str:
    return Document.from_bytes(_saved(document), name="doc.docx").text


def test_hidden_text_is_not_read() -> None:
    document = docx.Document()
    paragraph = document.add_paragraph("Net price: 100.00 EUR.")
    paragraph.add_run(" Internal: our cost 61.20.").font.hidden = True
    shown = paragraph.add_run(" Valid 30 days.")
    shown.font.hidden = False  # w:vanish w:val="0": shown, whatever its style says
    styled = document.styles.add_style("Secret", WD_STYLE_TYPE.CHARACTER)
    styled.font.hidden = True
    based = document.styles.add_style("Secret note", WD_STYLE_TYPE.CHARACTER)
    based.base_style = styled
    paragraph = document.add_paragraph("Ship with ")
    paragraph.add_run("MARGIN 40%", style="Secret")
    paragraph.add_run("care.")
    paragraph.add_run(" DO NOT QUOTE", style="Secret note")  # hidden through its base style
    always = paragraph.add_run(" SPECVANISH")
    always._r.get_or_add_rPr().append(parse_xml(f"<w:specVanish {_W}/>"))
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Internal cost"
    table.cell(0, 1).paragraphs[0].add_run("7.50").font.hidden = True
    assert _text(document) == (
        "Net price: 100.00 EUR. Valid 30 days.\n\nShip with care.\n\nInternal cost | "
    )  # the hidden cell stays, empty, so the columns stay aligned


def test_line_break_in_a_cell_keeps_the_row_on_one_line() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    for cell, header in zip(table.rows[0].cells, ["Ship to", "Qty", "Total"], strict=True):
        cell.text = header
    address = table.cell(1, 0).paragraphs[0]
    address.add_run("Jane Doe")
    address.add_run().add_break()  # Shift+Enter
    address.add_run("42 Elm Road")
    address.add_run().add_break(WD_BREAK.LINE)
    table.cell(1, 1).text = "3"
    table.cell(1, 2).text = "99.00"
    paragraph = document.add_paragraph("Outside a table")
    paragraph.add_run().add_break()
    paragraph.add_run("a line break stays.")
    assert _text(document) == (
        "Ship to | Qty | Total\n"
        "Jane Doe / 42 Elm Road | 3 | 99.00\n\n"
        "Outside a table\na line break stays."
    )


def test_page_and_column_breaks_separate_words() -> None:
    document = docx.Document()
    paragraph = document.add_paragraph("Amount due 99.00")
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    paragraph.add_run("Terms and conditions")
    paragraph.add_run().add_break(WD_BREAK.COLUMN)
    paragraph.add_run("apply.")
    rendered = document.add_paragraph("Rendered")
    # Where Word last broke the page when it saved: layout, not a break in the text.
    rendered.runs[0]._r.append(parse_xml(f"<w:lastRenderedPageBreak {_W}/>"))
    rendered.add_run("break")
    assert _text(document) == "Amount due 99.00\nTerms and conditions\napply.\n\nRenderedbreak"


def _numbered(document: docx.document.Document, text: str, num_id: int, level: int = 0) -> None:
    paragraph = document.add_paragraph(text)
    paragraph._p.get_or_add_pPr().append(
        parse_xml(f'<w:numPr {_W}><w:ilvl w:val="{level}"/><w:numId w:val="{num_id}"/></w:numPr>')
    )


def _define_list(document: docx.document.Document, levels: str, *nums: str) -> None:
    """Add abstract list 90 (its ``w:lvl`` elements) and ``w:num`` instances of it."""
    numbering = document.part.numbering_part.element
    abstract = f'<w:abstractNum {_W} w:abstractNumId="90">{levels}</w:abstractNum>'
    numbering.insert(0, parse_xml(abstract))  # abstract definitions come before instances
    for num in nums:
        numbering.append(parse_xml(num.replace("<w:num ", f"<w:num {_W} ", 1)))


def _lvl(level: int, number_format: str, text: str, start: int = 1) -> str:
    return (
        f'<w:lvl w:ilvl="{level}"><w:start w:val="{start}"/><w:numFmt w:val="{number_format}"/>'
        f'<w:lvlText w:val="{text}"/></w:lvl>'
    )


def test_list_number_style_is_numbered() -> None:
    document = docx.Document()
    for item in ("Apples", "Pears", "Plums"):
        document.add_paragraph(item, style="List Number")
    document.add_paragraph("Then a bullet", style="List Bullet")
    assert _text(document) == "1. Apples\n2. Pears\n3. Plums\n- Then a bullet"


def test_clause_numbers_levels_formats_and_restarts() -> None:
    document = docx.Document()
    _define_list(
        document,
        _lvl(0, "decimal", "%1.")
        + _lvl(1, "decimal", "%1.%2")
        + _lvl(2, "lowerLetter", "(%3)")
        + _lvl(3, "upperRoman", "%4)", start=4),
        '<w:num w:numId="90"><w:abstractNumId w:val="90"/></w:num>',
        # A second instance restarting at 7: Word's "restart numbering" writes this.
        '<w:num w:numId="91"><w:abstractNumId w:val="90"/>'
        '<w:lvlOverride w:ilvl="0"><w:startOverride w:val="7"/></w:lvlOverride></w:num>',
    )
    _numbered(document, "Definitions", 90)
    _numbered(document, "Agreement means this contract.", 90, 1)
    _numbered(document, "first", 90, 2)
    document.add_paragraph("An unnumbered paragraph does not interrupt the list.")
    _numbered(document, "second", 90, 2)
    _numbered(document, "deep", 90, 3)
    _numbered(document, "Payment", 90)
    _numbered(document, "Within 30 days.", 90, 1)  # the level below restarts
    _numbered(document, "Restarted", 91)
    _numbered(document, "Continued", 91)
    assert _text(document) == (
        "1. Definitions\n\n"
        "1.1 Agreement means this contract.\n\n"
        "(a) first\n\n"
        "An unnumbered paragraph does not interrupt the list.\n\n"
        "(b) second\n\n"
        "IV) deep\n\n"
        "2. Payment\n\n"
        "2.1 Within 30 days.\n\n"
        "7. Restarted\n\n"
        "8. Continued"
    )


def test_numbered_headings_and_unrendered_formats() -> None:
    document = docx.Document()
    _define_list(
        document,
        # Heading 1 is linked to level 0 through the level's w:pStyle, as Word links
        # "1 Introduction"-style headings.
        '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
        '<w:pStyle w:val="Heading1"/><w:lvlText w:val="%1"/></w:lvl>'
        + _lvl(1, "chineseCounting", "%2."),
        '<w:num w:numId="90"><w:abstractNumId w:val="90"/></w:num>',
    )
    heading = document.styles["Heading 1"].element
    heading.get_or_add_pPr().append(parse_xml(f'<w:numPr {_W}><w:numId w:val="90"/></w:numPr>'))
    document.add_heading("Introduction", level=1)
    document.add_heading("Scope", level=1)
    _numbered(document, "Not rendered here", 90, 1)  # a format this reader cannot write
    document.add_paragraph("Not numbered after all", style="List Number")
    document.paragraphs[-1]._p.get_or_add_pPr().append(
        parse_xml(f'<w:numPr {_W}><w:numId w:val="0"/></w:numPr>')  # numbering turned off
    )
    assert _text(document) == (
        "# 1 Introduction\n\n# 2 Scope\n\nNot rendered here\n\n- Not numbered after all"
    )


def test_zip_that_is_not_word_says_so() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(CorruptDocumentError) as caught:
        load_docx(out.getvalue(), "sheet.docx")
    message = str(caught.value)
    assert message.startswith("sheet.docx: this is not a readable Word document")
    assert "Excel workbook" in message
    assert "lxml" not in message and "overrides" not in message
