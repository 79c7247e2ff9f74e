"""DOCX headers, footers, footnotes and endnotes: where invoices and letters keep the
sender's name, address and VAT number.

Headers and footers are written with python-docx's own API. python-docx writes no
notes, so a footnotes or endnotes part is added to its package as Word relates it
(from the document part), and reference runs are spliced into the body's XML.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from docx.document import Document as DocxDocument
from docx.enum.section import WD_SECTION
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml.parser import parse_xml
from docx.shared import Inches
from docx.text.paragraph import Paragraph
from fieldwise_documents import DocumentTooLargeError, UnsafeDocumentError, load_docx

from fieldwise.document import Document

pytestmark = pytest.mark.usefixtures("plugin_loaded")

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS = f'xmlns:w="{_W}" xmlns:r="{_R}"'


def _saved(document: DocxDocument) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _text(document: DocxDocument) -> str:
    return load_docx(_saved(document), "letter.docx").text


def _splice(paragraph: Paragraph, xml: str) -> None:
    """Append WordprocessingML (runs, content controls) to a paragraph."""
    for element in list(parse_xml(f"<w:root {_NS}>{xml}</w:root>")):
        paragraph._p.append(element)


def _r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _reference(kind: str, note_id: int) -> str:
    style = "FootnoteReference" if kind == "footnote" else "EndnoteReference"
    return (
        f'<w:r><w:rPr><w:rStyle w:val="{style}"/></w:rPr>'
        f'<w:{kind}Reference w:id="{note_id}"/></w:r>'
    )


def _note(kind: str, note_id: int, *paragraphs: str, note_type: str | None = None) -> str:
    """A note as Word writes it: its own mark (``w:footnoteRef``), then the text."""
    attribute = f' w:type="{note_type}"' if note_type else ""
    body = "".join(
        f'<w:p><w:r><w:{kind}Ref/></w:r><w:r><w:t xml:space="preserve"> {text}</w:t></w:r></w:p>'
        if i == 0
        else f"<w:p>{_r(text)}</w:p>"
        for i, text in enumerate(paragraphs)
    )
    return f'<w:{kind}{attribute} w:id="{note_id}">{body}</w:{kind}>'


# Word starts every notes part with these two; they draw the line above the notes.
_SEPARATORS = {
    kind: (
        f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>'
        f'<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r>'
        f"<w:continuationSeparator/></w:r></w:p></w:{kind}>"
    )
    for kind in ("footnote", "endnote")
}


def _add_notes(document: DocxDocument, kind: str, notes: str | bytes) -> None:
    """Add ``word/footnotes.xml`` or ``word/endnotes.xml`` with ``notes`` (the notes'
    XML, after Word's separators; bytes are the whole part as they are)."""
    if isinstance(notes, str):
        notes = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f"<w:{kind}s {_NS}>{_SEPARATORS[kind]}{notes}</w:{kind}s>"
        ).encode()
    content_type, reltype = (
        (CT.WML_FOOTNOTES, RT.FOOTNOTES) if kind == "footnote" else (CT.WML_ENDNOTES, RT.ENDNOTES)
    )
    part = Part(PackURI(f"/word/{kind}s.xml"), content_type, notes, document.part.package)
    document.part.relate_to(part, reltype)


def _letter() -> DocxDocument:
    document = docx.Document()
    document.add_paragraph("Dear customer,")
    document.add_paragraph("Please find our invoice attached.")
    return document


_BODY = "Dear customer,\n\nPlease find our invoice attached."


def test_header_and_footer_frame_the_body(write: Callable[[str, bytes], Path]) -> None:
    document = _letter()
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Ltd, 1 Main Street, Leeds"
    section.header.add_paragraph("VAT GB123456789")
    section.footer.paragraphs[0].text = "Registered in England No. 1234567"
    doc = Document.open(write("letter.docx", _saved(document)))
    assert doc.metadata["loader"] == "docx"
    assert doc.text == (
        "Header:\nACME Ltd, 1 Main Street, Leeds\nVAT GB123456789\n\n"
        f"{_BODY}\n\n"
        "Footer:\nRegistered in England No. 1234567"
    )
    assert doc.pages == [(0, len(doc.text))]  # still one page: Word paginates when it renders


def test_first_page_header_and_footer_of_a_different_first_page() -> None:
    document = _letter()
    section = document.sections[0]
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "ACME Ltd letterhead"
    section.header.paragraphs[0].text = "ACME Ltd (continued)"
    section.first_page_footer.paragraphs[0].text = "Bank: GB00 ACME 1234"
    section.footer.paragraphs[0].text = "Page footer"
    assert _text(document) == (
        "Header:\nACME Ltd letterhead\n\nHeader:\nACME Ltd (continued)\n\n"
        f"{_BODY}\n\n"
        "Footer:\nBank: GB00 ACME 1234\n\nFooter:\nPage footer"
    )


def test_even_page_headers_of_a_document_with_different_odd_and_even_pages() -> None:
    document = _letter()
    document.settings.odd_and_even_pages_header_footer = True
    section = document.sections[0]
    section.header.paragraphs[0].text = "Odd pages"
    section.even_page_header.paragraphs[0].text = "Even pages"
    section.even_page_footer.paragraphs[0].text = "Even footer"
    assert _text(document) == (
        f"Header:\nOdd pages\n\nHeader:\nEven pages\n\n{_BODY}\n\nFooter:\nEven footer"
    )


def test_headers_word_keeps_but_does_not_show_are_not_read() -> None:
    """Unticking "Different first page" (or odd and even pages) hides those headers but
    keeps their text in the file: a stale letterhead must not be extracted."""
    document = _letter()
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Ltd"
    section.first_page_header.paragraphs[0].text = "Old Name Ltd"
    section.even_page_footer.paragraphs[0].text = "Old address"
    assert not section.different_first_page_header_footer
    assert not document.settings.odd_and_even_pages_header_footer
    assert _text(document) == f"Header:\nACME Ltd\n\n{_BODY}"


def test_sections_linked_to_the_previous_or_repeating_it_give_the_header_once() -> None:
    document = docx.Document()
    document.add_paragraph("Section one.")
    first = document.sections[0]
    first.header.paragraphs[0].text = "ACME Ltd"
    first.footer.paragraphs[0].text = "VAT GB123456789"
    document.add_section(WD_SECTION.NEW_PAGE)
    document.add_paragraph("Section two.")
    assert document.sections[1].header.is_linked_to_previous  # python-docx's default
    document.add_section(WD_SECTION.NEW_PAGE)
    document.add_paragraph("Section three.")
    third = document.sections[2]
    third.header.is_linked_to_previous = False  # its own header part, with the same text
    third.header.paragraphs[0].text = "ACME Ltd"
    document.add_section(WD_SECTION.NEW_PAGE)
    document.add_paragraph("Annex.")
    fourth = document.sections[3]
    fourth.header.is_linked_to_previous = False
    fourth.header.paragraphs[0].text = "ACME Ltd - Annex"
    assert _text(document) == (
        "Header:\nACME Ltd\n\nHeader:\nACME Ltd - Annex\n\n"
        "Section one.\n\nSection two.\n\nSection three.\n\nAnnex.\n\n"
        "Footer:\nVAT GB123456789"
    )


def test_a_later_section_showing_an_inherited_first_page_header() -> None:
    """Section 1 hides its first-page header; section 2 turns "Different first page" on
    and, linked to the previous, shows that very header on its first page."""
    document = docx.Document()
    document.add_paragraph("Cover.")
    first = document.sections[0]
    first.header.paragraphs[0].text = "Running header"
    first.first_page_header.paragraphs[0].text = "Chapter opening header"
    document.add_section(WD_SECTION.NEW_PAGE)
    document.add_paragraph("Chapter.")
    second = document.sections[1]
    second.different_first_page_header_footer = True
    assert second.first_page_header.is_linked_to_previous
    assert _text(document) == (
        "Header:\nRunning header\n\nHeader:\nChapter opening header\n\nCover.\n\nChapter."
    )


def test_table_and_content_controls_in_header_and_footer() -> None:
    document = _letter()
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Ltd"
    table = section.header.add_table(rows=2, cols=2, width=Inches(6))
    for row, values in zip(table.rows, [("VAT", "GB123456789"), ("Phone", "")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    _splice(  # a form field in a header cell
        table.cell(1, 1).paragraphs[0],
        "<w:sdt><w:sdtPr/><w:sdtContent>" + _r("0113 496 0000") + "</w:sdtContent></w:sdt>",
    )
    footer = section.footer.paragraphs[0]
    footer.text = "Invoice "
    _splice(
        footer, "<w:sdt><w:sdtPr/><w:sdtContent>" + _r("INV-2024-017") + "</w:sdtContent></w:sdt>"
    )
    _splice(footer, _r(", page "))
    _splice(footer, '<w:fldSimple w:instr=" PAGE ">' + _r("1") + "</w:fldSimple>")
    _splice(  # an empty field showing its placeholder stays blank
        footer,
        "<w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent>"
        + _r(" Click or tap here to enter text.")
        + "</w:sdtContent></w:sdt>",
    )
    assert _text(document) == (
        "Header:\nACME Ltd\nVAT | GB123456789\nPhone | 0113 496 0000\n\n"
        f"{_BODY}\n\n"
        "Footer:\nInvoice INV-2024-017, page 1"
    )


def test_footnotes_and_endnotes_follow_the_body_with_their_marks() -> None:
    document = docx.Document()
    total = document.add_paragraph("Total due: 1,200.00 EUR")
    _splice(total, _reference("footnote", 1))
    _splice(total, _r(" by 30 June"))
    _splice(total, _reference("endnote", 1))
    _splice(total, _r("."))
    document.sections[0].footer.paragraphs[0].text = "ACME Ltd"
    _add_notes(document, "footnote", _note("footnote", 1, "Including VAT at 20%."))
    _add_notes(
        document, "endnote", _note("endnote", 1, "Late payment fees apply.", "See our terms.")
    )
    assert _text(document) == (
        "Total due: 1,200.00 EUR[^1] by 30 June[^i].\n\n"
        "Footnotes:\n[^1]: Including VAT at 20%.\n\n"
        "Endnotes:\n[^i]: Late payment fees apply.\nSee our terms.\n\n"
        "Footer:\nACME Ltd"
    )


def test_notes_are_numbered_in_the_order_the_text_refers_to_them() -> None:
    """As Word numbers them, whatever their ids; the separators are no notes, a
    reference to a missing note gets no mark, and a note nothing refers to is kept."""
    document = docx.Document()
    first = document.add_paragraph("Net 1,000.00")
    _splice(first, _reference("footnote", 7))
    second = document.add_paragraph("VAT 200.00")
    _splice(second, _reference("footnote", 3))
    _splice(second, _reference("footnote", 99))  # no such note
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Due"
    _splice(table.cell(0, 1).paragraphs[0], _r("30 June") + _reference("footnote", 4))
    _add_notes(
        document,
        "footnote",
        _note("footnote", 3, "Standard rate.", note_type="normal")
        + _note("footnote", 4, "Or on receipt.")
        + _note("footnote", 5, "Kept from an earlier draft.")
        + _note("footnote", 7, "Before discount."),
    )
    assert _text(document) == (
        "Net 1,000.00[^1]\n\n"
        "VAT 200.00[^2]\n\n"
        "Due | 30 June[^3]\n\n"
        "Footnotes:\n"
        "[^1]: Before discount.\n"
        "[^2]: Standard rate.\n"
        "[^3]: Or on receipt.\n"
        "[^4]: Kept from an earlier draft."
    )


def test_a_header_reference_without_its_part_is_skipped() -> None:
    """A ``w:headerReference`` whose relationship is missing: the header is lost, not
    the document."""
    document = _letter()
    document.sections[0].footer.paragraphs[0].text = "ACME Ltd"
    sect_pr = document.element.body.sectPr
    assert sect_pr is not None
    sect_pr.insert(0, parse_xml(f'<w:headerReference {_NS} w:type="default" r:id="rId999"/>'))
    assert _text(document) == f"{_BODY}\n\nFooter:\nACME Ltd"


@pytest.mark.parametrize("where", ["header", "footnote"])
def test_header_and_note_text_count_towards_the_character_cap(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = docx.Document()
    body = document.add_paragraph("Short body.")
    if where == "header":
        document.sections[0].header.paragraphs[0].text = "x" * 200
    else:
        _splice(body, _reference("footnote", 1))
        _add_notes(document, "footnote", _note("footnote", 1, "x" * 200))
    data = _saved(document)
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_CHARS", "100")
    with pytest.raises(DocumentTooLargeError, match="100-character cap"):
        load_docx(data, "long.docx")


# Regression guards: these pass before and after headers and notes were read.


def test_a_document_without_headers_footers_or_notes_reads_as_before(
    make_docx: Callable[..., bytes],
) -> None:
    expected = (
        "# Quarterly Report\n\n# Summary\n\nRevenue grew by 12% over the quarter.\n\n"
        "- First risk\n- Second risk\n\n## Figures\n\n"
        "Region | Q1 | Q2\nNorth | 10 | 12\nTotal | 22\n\nPrepared by the finance team."
    )
    assert load_docx(make_docx(), "report.docx").text == expected
    # Empty header and footer parts (Word writes them often) add nothing either.
    document = docx.Document(io.BytesIO(make_docx()))
    section = document.sections[0]
    section.header.is_linked_to_previous = False
    section.footer.is_linked_to_previous = False
    _add_notes(document, "footnote", "")  # only Word's separators
    assert _text(document) == expected


def test_dtd_in_a_notes_part_is_refused(billion_laughs: bytes) -> None:
    document = _letter()
    _splice(document.paragraphs[0], _reference("footnote", 1))
    _add_notes(document, "footnote", billion_laughs)
    with pytest.raises(UnsafeDocumentError, match=r"'word/footnotes\.xml' declares an XML DTD"):
        load_docx(_saved(document), "laughs.docx")


def test_a_damaged_notes_part_loses_only_the_notes() -> None:
    document = _letter()
    _splice(document.paragraphs[0], _reference("footnote", 1))
    _add_notes(document, "footnote", b"<w:footnotes><w:footnote w:id='1'>")
    assert _text(document) == _BODY


# Found by a review of the reading above; each failed before its fix.


def test_a_pstyle_without_its_value_loses_no_text() -> None:
    """``<w:pStyle/>`` lacks the value the schema requires: python-docx refuses to read
    it; the paragraph is read as unstyled, as before headers were read."""
    document = _letter()
    document.paragraphs[0]._p.get_or_add_pPr().insert(0, parse_xml(f"<w:pStyle {_NS}/>"))
    assert _text(document) == _BODY


@pytest.mark.parametrize(
    "damage",
    [
        f'<w:headerReference {_NS} w:type="default"/>',  # no r:id
        f'<w:titlePg {_NS} w:val="yes"/>',  # not an on/off value python-docx accepts
    ],
)
def test_header_markup_python_docx_refuses_loses_that_header_alone(damage: str) -> None:
    document = _letter()
    section = document.sections[0]
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "ACME Ltd"
    section.footer.paragraphs[0].text = "Registered in England"
    sect_pr = document.element.body.sectPr
    assert sect_pr is not None
    for old in sect_pr.findall(f"{{{_W}}}titlePg"):
        if "titlePg" in damage:
            sect_pr.remove(old)
    sect_pr.insert(0, parse_xml(damage))
    text = _text(document)
    assert _BODY in text and "Footer:\nRegistered in England" in text


def test_a_custom_note_mark_takes_no_number() -> None:
    """Word shows a custom mark (``*``) in place of a number, and numbers the next note 1."""
    document = docx.Document()
    price = document.add_paragraph("Price: 100 EUR")
    _splice(price, '<w:r><w:footnoteReference w:customMarkFollows="1" w:id="1"/><w:t>*</w:t></w:r>')
    delivery = document.add_paragraph("Delivery: 3 days")
    _splice(delivery, _reference("footnote", 2))
    _add_notes(
        document,
        "footnote",
        _note("footnote", 1, "Excluding VAT.") + _note("footnote", 2, "Working days."),
    )
    assert _text(document) == (
        "Price: 100 EUR*\n\nDelivery: 3 days[^1]\n\n"
        "Footnotes:\n[^*]: Excluding VAT.\n[^1]: Working days."
    )


def test_note_labels_count_towards_the_character_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds of one-letter notes (none referred to, so listed all the same): their
    ``[^n]: `` labels are most of the text."""
    document = docx.Document()
    document.add_paragraph("Body.")
    _add_notes(document, "footnote", "".join(_note("footnote", n, "x") for n in range(1, 301)))
    data = _saved(document)
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_CHARS", "2500")
    with pytest.raises(DocumentTooLargeError, match="2,500-character cap"):
        load_docx(data, "notes.docx")


def test_endnote_numbers_past_3999_are_decimal() -> None:
    """Roman numerals grow without bound (a cheap way to inflate the text); Word's own stop
    at 3999 too."""
    document = docx.Document()
    body = document.add_paragraph("Body.")
    _splice(body, "".join(_reference("endnote", n) for n in range(1, 4002)))
    _add_notes(document, "endnote", "".join(_note("endnote", n, "e") for n in range(1, 4002)))
    text = _text(document)
    assert "[^mmmcmxcix]: e\n[^4000]: e\n[^4001]: e" in text
