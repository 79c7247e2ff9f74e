"""HTML loading: visible text only, block structure, entities, charsets."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import pytest
from fieldwise_documents import CorruptDocumentError, EmptyDocumentError, load_html

from fieldwise.document import Document

pytestmark = pytest.mark.usefixtures("plugin_loaded")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>  Order
     confirmation </title>
  <meta name="Author" content="Shop Team">
  <meta name="description" content="Your order">
  <style>body { color: red } p::before { content: "STYLE" }</style>
  <script>var secret = "SCRIPT";</script>
</head>
<body>
  <noscript>Please enable NOSCRIPT</noscript>
  <template><p>TEMPLATE</p></template>
  <div hidden>HIDDEN</div>
  <h1>Order #42</h1>
  <p>Thanks,   <b>Ana</b>&nbsp;&amp; Bo! Price: 10&euro; &mdash; &#8220;fast&#8221;<br>
  Ships today.</p>
  <ul><li>Tea</li><li>Cups <i>x2</i></li></ul>
  <ol><li>Pay</li><li>Wait</li></ol>
  <table>
    <caption>Items</caption>
    <thead><tr><th>Item</th><th>Qty</th><th>Note</th></tr></thead>
    <tbody><tr><td>Tea</td><td>1</td><td></td></tr></tbody>
  </table>
  <pre>  keep
    spacing</pre>
  <script>document.write("LATE SCRIPT")</script>
  <p>Bye</p>
</body>
</html>
"""


def test_visible_text_with_block_structure() -> None:
    doc = load_html(PAGE.encode(), "order.html")
    assert doc.text == (
        "# Order #42\n\n"
        "Thanks, Ana & Bo! Price: 10€ — “fast”\n"
        "Ships today.\n\n"
        "- Tea\n"
        "- Cups x2\n\n"
        "1. Pay\n"
        "2. Wait\n\n"
        "Items\n"
        "Item | Qty | Note\n"
        "Tea | 1 |\n\n"
        "  keep\n"
        "    spacing\n\n"
        "Bye"
    )
    for hidden in ("STYLE", "SCRIPT", "NOSCRIPT", "TEMPLATE", "HIDDEN", "secret"):
        assert hidden not in doc.text
    assert doc.metadata["title"] == "Order confirmation"
    assert doc.metadata["author"] == "Shop Team"
    assert doc.metadata["description"] == "Your order"
    assert doc.metadata["language"] == "en"
    assert doc.metadata["encoding"] == "utf-8"


def test_document_open_picks_the_html_loader(write: Callable[[str, bytes], Path]) -> None:
    doc = Document.open(write("page.htm", PAGE.encode()))
    assert doc.metadata["loader"] == "html"
    assert doc.text.startswith("# Order #42")


@pytest.mark.parametrize(
    ("label", "codec", "sample"),
    [
        ("windows-1251", "cp1251", "Счёт на оплату"),
        ("koi8-r", "koi8_r", "Счёт на оплату"),
        ("shift_jis", "cp932", "請求書の合計"),
        ("ISO-8859-1", "cp1252", "“Café” — naïve"),  # Latin-1 label means Windows-1252
    ],
)
def test_declared_charset(label: str, codec: str, sample: str) -> None:
    html = f'<head><meta charset="{label}"><title>{sample}</title></head><body><p>{sample}</p>'
    doc = load_html(html.encode(codec), "legacy.html")
    assert doc.text == sample
    assert doc.metadata["title"] == sample


def test_http_equiv_charset() -> None:
    html = (
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1250">'
        "<p>Zażółć gęślą jaźń</p>"
    )
    doc = load_html(html.encode("cp1250"), "pl.html")
    assert doc.text == "Zażółć gęślą jaźń"
    assert doc.metadata["encoding"] == "cp1250"


def test_bom_wins_over_meta() -> None:
    html = '<meta charset="windows-1252"><p>Grüße 日本</p>'
    doc = load_html(codecs.BOM_UTF8 + html.encode("utf-8"), "bom.html")
    assert doc.text == "Grüße 日本"


def test_utf16_with_bom() -> None:
    doc = load_html("<p>Grüße 日本</p>".encode("utf-16"), "wide.html")
    assert doc.text == "Grüße 日本"


def test_undeclared_non_utf8_falls_back_to_windows_1252() -> None:
    doc = load_html("<p>“Smart” café</p>".encode("cp1252"), "old.html")
    assert doc.text == "“Smart” café"
    assert doc.metadata["encoding"] == "cp1252"
    assert doc.metadata["encoding_guessed"] is True


def test_script_only_page_is_empty(write: Callable[[str, bytes], Path]) -> None:
    data = b"<html><head><title>App</title><script>render()</script></head><body></body></html>"
    path = write("app.html", data)
    with pytest.raises(EmptyDocumentError, match="no visible text") as caught:
        Document.open(path)
    assert "JavaScript" in str(caught.value)
    assert path.read_bytes() == data


def test_binary_named_html() -> None:
    with pytest.raises(CorruptDocumentError, match="binary"):
        load_html(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100), "image.html")


def test_deep_nesting_does_not_overflow() -> None:
    depth = 4_096  # the most refused as unsafe, far past Python's recursion limit
    html = "<div>" * depth + "deep text" + "</div>" * depth
    assert load_html(html.encode(), "deep.html").text == "deep text"


def test_nested_tables_and_malformed_markup() -> None:
    html = "<table><tr><td>a<table><tr><td>x</td><td>y</td></tr></table></td><td>b"
    doc = load_html(html.encode(), "soup.html")
    assert doc.text == "a / x | y | b"


def test_tables_follow_the_visibility_rules() -> None:
    html = (
        "<table>"
        "<caption>Orders<script>SECRET_SCRIPT()</script><style>.x{SECRET_STYLE}</style>"
        "</caption>"
        "<thead hidden><tr><th>HIDDEN_HEAD</th></tr></thead>"
        "<tbody><tr><td>Tea</td><td>1</td></tr><tr hidden><td>HIDDEN_ROW</td></tr></tbody>"
        "<tbody hidden><tr><td>HIDDEN_BODY</td></tr></tbody>"
        "</table>"
        "<table><caption hidden>HIDDEN_CAPTION</caption><tr><td>Cups</td></tr></table>"
    )
    doc = load_html(html.encode(), "orders.html")
    assert doc.text == "Orders\nTea | 1\n\nCups"


def test_inline_styles_that_hide_are_skipped() -> None:
    html = (
        '<div style="display:none;max-height:0">Preheader: order INV-000 total 555.55</div>'
        '<p style="color:red; VISIBILITY: hidden !important">HIDDEN_VISIBILITY</p>'
        '<table><tr style="display: none"><td>HIDDEN_ROW</td></tr><tr><td>Tea</td></tr></table>'
        '<p style="font-display:none; display:block">Your order has shipped.</p>'
    )
    assert load_html(html.encode(), "mail.html").text == "Tea\n\nYour order has shipped."


def test_form_values_appear_next_to_their_labels() -> None:
    html = (
        "<form>"
        '<div><label for="po">PO number</label><input id="po" name="po" value="PO-99"></div>'
        '<div><label>Email <input type="email" value="ann@example.com"></label></div>'
        '<div>Currency <select name="cur"><option>EUR</option><option selected>CHF</option>'
        "</select></div>"
        '<div>Extras <select multiple><optgroup label="x"><option selected>Gift wrap</option>'
        "<option>Card</option><option selected>Box</option></optgroup></select></div>"
        "<div>Pick one <select><option>Choose...</option><option>A</option></select></div>"
        '<div><input type="checkbox" checked> Express <input type="radio"> Pickup</div>'
        '<div>Password <input type="password" value="hunter2">'
        '<input type="hidden" name="token" value="TOKEN123"><input type="submit" value="Send">'
        '<input placeholder="Your name"></div>'
        "<div>Notes <textarea>Leave at the door</textarea></div>"
        "</form>"
    )
    assert load_html(html.encode(), "form.html").text == (
        "PO number PO-99\n"
        "Email ann@example.com\n"
        "Currency CHF\n"
        "Extras Gift wrap, Box\n"
        "Pick one\n"  # nothing chosen: its first option is a prompt, not a value
        "\u2612 Express \u2610 Pickup\n"
        "Password\n"
        "Notes Leave at the door"
    )


def test_table_footer_comes_after_the_body() -> None:
    html = (
        "<table><tfoot><tr><td>Total</td><td>36.00</td></tr></tfoot>"
        "<thead><tr><th>Item</th><th>Amount</th></tr></thead>"
        "<tbody><tr><td>Bolt</td><td>12.00</td></tr></tbody>"
        "<tbody><tr><td>Nut</td><td>24.00</td></tr></tbody></table>"
    )
    assert load_html(html.encode(), "totals.html").text == (
        "Item | Amount\nBolt | 12.00\nNut | 24.00\nTotal | 36.00"
    )


def test_collapsed_details_are_read() -> None:
    """A browser shows only the summary until it is opened; the content is still text
    of the document (terms, specifications), so it is read."""
    html = "<details><summary>Terms</summary><p>Payment within 30 days.</p></details>"
    assert load_html(html.encode(), "faq.html").text == "Terms\n\nPayment within 30 days."


def test_absurdly_deep_nesting_is_refused_before_the_parser_sees_it() -> None:
    """The parser's time grows with the square of the depth (100,000 nested divs, a 1 MB
    file, took ~15 s): past 4,096 levels the page is refused as unsafe, at once."""
    from fieldwise_documents import UnsafeDocumentError
    from fieldwise_documents.html import MAX_NESTING

    deep = "<div>" * 100_000 + "x" + "</div>" * 100_000
    with pytest.raises(UnsafeDocumentError, match="nest more than 4096 deep"):
        load_html(f"<html><body>{deep}</body></html>".encode(), "deep.html")
    fine = "<div>" * MAX_NESTING + "deep text" + "</div>" * MAX_NESTING
    assert "deep text" in load_html(fine.encode(), "ok.html").text
    # left open, elements whose end tag is optional (and scripts' '<') do not count
    loose = "<script>if (a<b) { x = '<div>'.repeat(9000) }</script>" + "<p>para<li>item" * 6000
    assert "item" in load_html(loose.encode(), "loose.html").text
