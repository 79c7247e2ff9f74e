"""Filled PDF forms (AcroForm): field values live in widget annotations, not page text.

Each form is a page written by fpdf2 (its printed labels) with widgets added by pypdf,
filled as a viewer saves them: the value in the field's ``/V``.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from fieldwise.document import Document

pytestmark = pytest.mark.usefixtures("plugin_loaded")


def _name(value: str) -> NameObject:
    return NameObject("/" + value)


def _pdf_object(value: Any) -> Any:
    """Plain Python values as PDF objects: "/Yes" a name, other str a string."""
    if isinstance(value, str):
        return _name(value[1:]) if value.startswith("/") else TextStringObject(value)
    if isinstance(value, list) and not isinstance(value, ArrayObject):
        return ArrayObject(_pdf_object(item) for item in value)
    if isinstance(value, bool):
        return BooleanObject(value)
    if isinstance(value, int):
        return NumberObject(value)
    return value


class _Form:
    """A PDF whose pages print ``labels`` and carry form fields added with ``field``."""

    def __init__(self, *pages: list[str]) -> None:
        pdf = FPDF()
        pdf.set_font("helvetica", size=12)
        for labels in pages:
            pdf.add_page()
            for row, label in enumerate(labels):
                pdf.text(20, 30 + 15 * row, label)
        self.writer = PdfWriter(clone_from=PdfReader(io.BytesIO(bytes(pdf.output()))))
        self.fields = ArrayObject()
        self.writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
            {NameObject("/Fields"): self.fields}
        )

    def _add(self, entries: dict[str, Any]) -> IndirectObject:
        return self.writer._add_object(
            DictionaryObject({_name(key): _pdf_object(value) for key, value in entries.items()})
        )

    def _widget(self, page: int, row: int, entries: dict[str, Any]) -> IndirectObject:
        target = self.writer.pages[page]
        top = float(target.mediabox.height) - (30 + 15 * row) * 72 / 25.4
        rect = [FloatObject(200), FloatObject(top - 6), FloatObject(400), FloatObject(top + 14)]
        widget = self._add(
            {"Type": "/Annot", "Subtype": "/Widget", "F": 4, "Rect": rect, **entries}
        )
        widget.get_object()[NameObject("/P")] = target.indirect_reference
        if "/Annots" not in target:
            target[NameObject("/Annots")] = ArrayObject()
        target["/Annots"].append(widget)
        return widget

    def field(self, name: str, kind: str, *, page: int = 0, row: int = 0, **entries: Any) -> None:
        """One field whose single widget is the field itself (what most forms hold)."""
        self.fields.append(self._widget(page, row, {"T": name, "FT": kind, **entries}))

    def radio_group(self, name: str, states: list[str], chosen: str, **entries: Any) -> None:
        """A radio field (a parent) with one widget per button, ``chosen`` switched on."""
        parent = self._add({"T": name, "FT": "/Btn", "Ff": 1 << 15, "V": "/" + chosen, **entries})
        kids = ArrayObject()
        for row, state in enumerate(states):
            on = "/" + state if state == chosen else "/Off"
            kid = self._widget(0, row, {"AS": on, "Parent": parent})
            kids.append(kid)
        parent.get_object()[NameObject("/Kids")] = kids
        self.fields.append(parent)

    def bytes(self) -> bytes:
        out = io.BytesIO()
        self.writer.write(out)
        return out.getvalue()


def _read(data: bytes) -> Document:
    return Document.from_bytes(data, name="form.pdf")


def test_filled_text_fields_follow_the_page_text() -> None:
    form = _Form(["Applicant name:", "Policy number:"])
    form.field("applicant", "/Tx", row=0, V="Jane Q. Doe", TU="Applicant name")
    form.field("policy", "/Tx", row=1, V="POL-884213")
    form.field("notes", "/Tx", row=2, V="")  # empty: not listed
    form.field("untouched", "/Tx", row=3)  # never filled: no /V at all
    doc = _read(form.bytes())
    assert doc.text == (
        "Applicant name:\nPolicy number:\n\n"
        "Applicant name: Jane Q. Doe\n"  # the tooltip, where the field has one
        "policy: POL-884213"  # else the field's name
    )


def test_boxes_radio_buttons_and_lists() -> None:
    form = _Form(["Options"])
    form.field("agree", "/Btn", row=0, V="/Yes", AS="/Yes", TU="I agree")
    form.field("newsletter", "/Btn", row=1, V="/Off", AS="/Off")  # unchecked: not listed
    form.radio_group("payment", ["Card", "Invoice"], "Invoice", TU="Payment")
    form.field("size", "/Ch", row=2, V="M", Opt=[["S", "Small"], ["M", "Medium"]])
    form.field("extras", "/Ch", Ff=1 << 21, V=["Gift wrap", "Card"], TU="Extras")
    form.field("secret", "/Tx", Ff=1 << 13, V="hunter2")  # a password field
    form.field("send", "/Btn", Ff=1 << 16)  # a push button
    doc = _read(form.bytes())
    assert doc.text == (
        "Options\n\n"
        "I agree: \u2612\n"
        "Payment: Invoice\n"  # once for the group, though each button is a widget
        "size: Medium\n"  # the text the list shows for the chosen export value
        "Extras: Gift wrap, Card"
    )
    assert "hunter2" not in doc.text


def test_values_stay_on_the_page_of_their_widget() -> None:
    form = _Form(["Page one"], ["Page two"])
    form.field("total", "/Tx", page=1, V="120.00 EUR", TU="Total due")
    form.field("hidden", "/Tx", page=1, row=1, V="INTERNAL", F=4 | 2)  # Hidden flag
    doc = _read(form.bytes())
    assert doc.text == "Page one\n\nPage two\n\nTotal due: 120.00 EUR"
    assert doc.page_of(doc.text.index("120.00")) == 2


def test_multi_line_value_is_one_line() -> None:
    form = _Form(["Address"])
    form.field("address", "/Tx", V="1 Main Street\r\nSpringfield", TU="Address")
    assert _read(form.bytes()).text.endswith("Address: 1 Main Street / Springfield")


def test_flattened_values_are_not_repeated() -> None:
    """A flattened form draws each value into the page (pypdf keeps the widget)."""
    form = _Form(["Applicant name:", "Quantity:"])
    form.field("applicant", "/Tx", row=0, TU="Applicant name")
    form.field("policy", "/Tx", row=1)
    form.writer._root_object["/AcroForm"][NameObject("/DA")] = TextStringObject("/Helv 0 Tf 0 g")
    form.writer.update_page_form_field_values(
        form.writer.pages[0],
        {"applicant": "Jane Q. Doe", "policy": "POL-884213"},
        auto_regenerate=False,
        flatten=True,
    )
    text = _read(form.bytes()).text
    assert text.count("Jane Q. Doe") == 1
    assert text.count("POL-884213") == 1


def test_a_form_without_page_text_is_not_a_scan() -> None:
    form = _Form([""])
    form.field("name", "/Tx", V="Ann Lee", TU="Name")
    doc = _read(form.bytes())
    assert doc.text == "Name: Ann Lee"
    assert "pages_without_text" not in doc.metadata
