"""DOCX text that python-docx's paragraph/table API does not reach: forms and revisions.

Word forms keep their fields in content controls (``w:sdt``), revised documents keep
inserted text in ``w:ins``, and layouts put text in text boxes; each fixture is a
python-docx document with a few lines of such XML spliced into its body.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from docx.oxml.parser import parse_xml

from fieldwise.document import Document

pytestmark = pytest.mark.usefixtures("plugin_loaded")

_NAMESPACES = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "w14": "http://schemas.microsoft.com/office/word/2010/wordml",
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "wps": "http://schemas.microsoft.com/office/word/2010/wordprocessingShape",
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
    "v": "urn:schemas-microsoft-com:vml",
}
_DECLARATIONS = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _NAMESPACES.items())


def _docx(body: str) -> bytes:
    """A document: ``Before.``, then ``body`` (WordprocessingML), then ``After.``."""
    document = docx.Document()
    document.add_paragraph("Before.")
    anchor = document.add_paragraph("After.")._p
    for element in parse_xml(f"<w:root {_DECLARATIONS}>{body}</w:root>"):
        anchor.addprevious(element)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _text(body: str) -> str:
    return Document.from_bytes(_docx(body), name="form.docx").text


def _p(*runs: str) -> str:
    return "<w:p>" + "".join(runs) + "</w:p>"


def _r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _sdt(content: str, properties: str = "") -> str:
    return f"<w:sdt><w:sdtPr>{properties}</w:sdtPr><w:sdtContent>{content}</w:sdtContent></w:sdt>"


def _table(*rows: str) -> str:
    return (
        "<w:tbl><w:tblPr/><w:tblGrid><w:gridCol/><w:gridCol/></w:tblGrid>"
        + "".join(rows)
        + "</w:tbl>"
    )


def _tr(*cells: str) -> str:
    return "<w:tr>" + "".join(cells) + "</w:tr>"


def _tc(content: str) -> str:
    return f"<w:tc>{content}</w:tc>"


def test_open_reads_a_form_file(write: Callable[[str, bytes], Path]) -> None:
    """The whole path: a .docx on disk, picked by suffix, content controls read."""
    body = _p(_r("Name: "), _sdt(_r("Jane Doe")))
    doc = Document.open(write("form.docx", _docx(body)))
    assert doc.metadata["loader"] == "docx"
    assert doc.text == "Before.\n\nName: Jane Doe\n\nAfter."


def test_block_content_control_paragraphs_and_table() -> None:
    body = _sdt(
        '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr>'
        + _r("Applicant")
        + "</w:p>"
        + _p(_r("Jane Doe, 12 Rue de la Paix"))
        + _table(_tr(_tc(_p(_r("Field"))), _tc(_p(_r("Value")))))
    )
    assert _text(body) == (
        "Before.\n\n# Applicant\n\nJane Doe, 12 Rue de la Paix\n\nField | Value\n\nAfter."
    )


def test_inline_content_controls_keep_their_place_in_the_line() -> None:
    body = _p(
        _r("Name: "),
        _sdt(_r("Jane"), '<w:alias w:val="First name"/>'),
        _r(" "),
        _sdt(_r("Doe")),
        _r(", born "),
        _sdt(_r("1990-04-01"), '<w:date w:fullDate="1990-04-01T00:00:00Z"/>'),
        _r("."),
    )
    assert _text(body) == "Before.\n\nName: Jane Doe, born 1990-04-01.\n\nAfter."


def test_an_empty_field_showing_its_placeholder_reads_as_blank() -> None:
    """Word shows "Click or tap here to enter text." in an empty control; sent to a model
    as the field's value, it would be extracted as one."""
    placeholder = _r("Click or tap here to enter text.")
    body = _p(_r("Name: "), _sdt(placeholder, "<w:showingPlcHdr/>"), _r(" City: "))
    body += _p(_r("Phone: "), _sdt(_r("555-0100")))
    body += _sdt(_p(placeholder), "<w:showingPlcHdr/>")
    assert _text(body) == "Before.\n\nName: City:\n\nPhone: 555-0100\n\nAfter."


def test_content_controls_in_table_cells_rows_and_cells_themselves() -> None:
    body = _table(
        _tr(_tc(_p(_r("Name"))), _tc(_sdt(_p(_r("Jane Doe"))))),  # block control in a cell
        _sdt(_tr(_tc(_p(_r("City"))), _tc(_p(_r("Paris"))))),  # a repeating-section row
        _tr(_tc(_p(_r("Phone"))), _sdt(_tc(_p(_r("555-0100"))))),  # a control around a cell
        _tr(_tc(_p(_r("Email"))), _tc(_p(_r("jane@"), _sdt(_r("example.org"))))),
    )
    assert _text(body) == (
        "Before.\n\n"
        "Name | Jane Doe\nCity | Paris\nPhone | 555-0100\nEmail | jane@example.org\n\n"
        "After."
    )


def test_nested_content_controls() -> None:
    body = _sdt(_p(_r("Section: "), _sdt(_r("Outer"))) + _sdt(_sdt(_p(_r("Inner")))))
    assert _text(body) == "Before.\n\nSection: Outer\n\nInner\n\nAfter."


def test_tracked_insertions_are_read_and_deletions_are_not() -> None:
    body = _p(
        _r("Amount: "),
        '<w:del w:id="1" w:author="A"><w:r><w:delText>100</w:delText></w:r></w:del>',
        '<w:ins w:id="2" w:author="A">' + _r("250") + "</w:ins>",
        '<w:moveFrom w:id="3" w:author="A"><w:r><w:t> EUR</w:t></w:r></w:moveFrom>',
        '<w:moveTo w:id="4" w:author="A">' + _r(" USD") + "</w:moveTo>",
    )
    assert _text(body) == "Before.\n\nAmount: 250 USD\n\nAfter."


def test_deleted_text_inside_a_content_control_stays_out() -> None:
    body = _p(
        _r("Status: "),
        _sdt(
            '<w:del w:id="1" w:author="A"><w:r><w:delText>draft</w:delText></w:r></w:del>'
            + '<w:ins w:id="2" w:author="A">'
            + _r("final")
            + "</w:ins>"
        ),
    )
    assert _text(body) == "Before.\n\nStatus: final\n\nAfter."


def test_smart_tags_and_custom_xml_wrappers() -> None:
    body = (
        _p(
            _r("Meet in "),
            '<w:smartTag w:uri="urn:schemas-microsoft-com:office:smarttags" w:element="place">'
            + _r("Paris")
            + "</w:smartTag>",
            _r(" or "),
            '<w:customXml w:element="city">' + _r("Lyon") + "</w:customXml>",
            _r("."),
        )
        + '<w:customXml w:element="note">'
        + _p(_r("Bring the signed form."))
        + "</w:customXml>"
    )
    assert _text(body) == "Before.\n\nMeet in Paris or Lyon.\n\nBring the signed form.\n\nAfter."


def test_simple_fields_show_their_result_and_complex_fields_not_their_code() -> None:
    body = _p(
        _r("Page "),
        '<w:fldSimple w:instr=" PAGE ">' + _r("3") + "</w:fldSimple>",
        _r(", dated "),
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>',
        '<w:r><w:instrText xml:space="preserve"> DATE \\@ "yyyy-MM-dd" </w:instrText></w:r>',
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>',
        _r("2024-05-01"),
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>',
    )
    assert _text(body) == "Before.\n\nPage 3, dated 2024-05-01\n\nAfter."


_DRAWING_TEXT_BOX = (
    "<w:drawing><wp:anchor><wp:extent cx='1' cy='1'/><wp:docPr id='1' name='Text Box 1'/>"
    "<a:graphic><a:graphicData uri='http://schemas.microsoft.com/office/word/2010/wordprocessingShape'>"
    "<wps:wsp><wps:txbx><w:txbxContent>{content}</w:txbxContent></wps:txbx></wps:wsp>"
    "</a:graphicData></a:graphic></wp:anchor></w:drawing>"
)
_VML_TEXT_BOX = (
    "<w:pict><v:shape><v:textbox><w:txbxContent>{content}</w:txbxContent></v:textbox>"
    "</v:shape></w:pict>"
)


def test_text_boxes_follow_their_anchor_paragraph_once() -> None:
    """Word writes a text box twice (DrawingML choice, VML fallback); it is read once."""
    content = _p(_r("Office use only")) + _p(_r("Ref: "), _sdt(_r("A-17")))
    body = _p(
        _r("Signature:"),
        "<w:r><mc:AlternateContent>"
        '<mc:Choice Requires="wps">' + _DRAWING_TEXT_BOX.format(content=content) + "</mc:Choice>"
        "<mc:Fallback>" + _VML_TEXT_BOX.format(content=content) + "</mc:Fallback>"
        "</mc:AlternateContent></w:r>",
    ) + _p("<w:r>" + _VML_TEXT_BOX.format(content=_p(_r("Old-style box"))) + "</w:r>")
    assert _text(body) == (
        "Before.\n\nSignature:\n\nOffice use only\n\nRef: A-17\n\nOld-style box\n\nAfter."
    )


def test_text_box_in_a_table_cell_stays_in_its_cell() -> None:
    box = "<w:r>" + _DRAWING_TEXT_BOX.format(content=_p(_r("boxed"))) + "</w:r>"
    body = _table(_tr(_tc(_p(_r("Note"))), _tc(_p(_r("see"), box))))
    assert _text(body) == "Before.\n\nNote | see / boxed\n\nAfter."


def test_checkbox_content_controls_show_their_state() -> None:
    def checkbox(checked: bool, glyph: str) -> str:
        state = f'<w14:checkbox><w14:checked w14:val="{int(checked)}"/></w14:checkbox>'
        return _sdt(_r(glyph), state)

    body = _p(checkbox(True, "☒"), _r(" Married "), checkbox(False, "☐"), _r(" Single"))
    # a control whose glyph run is missing still shows its state
    body += _p(_sdt("", '<w14:checkbox><w14:checked w14:val="1"/></w14:checkbox>'), _r(" Agreed"))
    assert _text(body) == "Before.\n\n☒ Married ☐ Single\n\n☒ Agreed\n\nAfter."


def test_legacy_form_field_checkboxes_show_their_state() -> None:
    def checkbox(ff_state: str) -> str:
        return (
            '<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="C"/>'
            f"<w:checkBox><w:sizeAuto/>{ff_state}</w:checkBox></w:ffData></w:fldChar></w:r>"
            '<w:r><w:instrText xml:space="preserve"> FORMCHECKBOX </w:instrText></w:r>'
            '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        )

    body = _p(
        checkbox('<w:default w:val="1"/>'),
        _r(" Yes "),
        checkbox('<w:default w:val="1"/><w:checked w:val="0"/>'),
        _r(" No "),
        checkbox('<w:default w:val="0"/><w:checked/>'),
        _r(" Maybe"),
    )
    assert _text(body) == "Before.\n\n☒ Yes ☐ No ☒ Maybe\n\nAfter."


def test_vertically_merged_cells_repeat_per_row_and_gaps_are_kept() -> None:
    """Unchanged from the python-docx table API: a vertical merge repeats its text."""
    body = _table(
        _tr(
            _tc('<w:tcPr><w:vMerge w:val="restart"/></w:tcPr>' + _p(_r("Team"))), _tc(_p(_r("Ana")))
        ),
        _tr(_tc("<w:tcPr><w:vMerge/></w:tcPr><w:p/>"), _tc(_p(_r("Bo")))),
        _tr(_tc("<w:p/>"), _tc(_p(_r("Cy")))),
    )
    assert _text(body) == "Before.\n\nTeam | Ana\nTeam | Bo\n | Cy\n\nAfter."


def test_character_limit_counts_content_control_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from fieldwise_documents import DocumentTooLargeError

    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_CHARS", "100")
    body = _sdt(_p(_r("x" * 200)))
    with pytest.raises(DocumentTooLargeError):
        _text(body)


def test_hyperlinks_and_breaks_read_as_before() -> None:
    """What python-docx's ``Paragraph.text`` gave stays: link text, tabs, line breaks."""
    body = _p(
        _r("See "),
        '<w:hyperlink w:anchor="terms">' + _r("the terms") + "</w:hyperlink>",
        "<w:r><w:tab/><w:t>then</w:t><w:br/><w:t>sign</w:t></w:r>",
    )
    assert _text(body) == "Before.\n\nSee the terms then\nsign\n\nAfter."


def test_deeply_nested_controls_are_read_or_refused_cleanly() -> None:
    from fieldwise_documents import CorruptDocumentError

    body = _p(_r("x"))
    for _ in range(120):  # 240 levels: near libxml2's default cap of 256
        body = _sdt(body)
    try:
        text = _text(body)
    except CorruptDocumentError:  # libxml2's own depth cap, depending on its version
        return
    assert text == "Before.\n\nx\n\nAfter."
