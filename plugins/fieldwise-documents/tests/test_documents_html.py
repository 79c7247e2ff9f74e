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
    depth = 10_000  # far past Python's recursion limit (lexbor parses depth quadratically)
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
