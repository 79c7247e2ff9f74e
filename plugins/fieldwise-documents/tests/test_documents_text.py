"""Text and Markdown loading: BOMs, charset fallbacks, form-feed pages."""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from fieldwise_documents import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    load_text,
)

from fieldwise.document import Document
from fieldwise.exceptions import ConfigurationError

pytestmark = pytest.mark.usefixtures("plugin_loaded")

SAMPLE = "Grüße, naïve café — 日本語 ✓\nsecond line"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SAMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + SAMPLE.encode("utf-16-be"), "utf-16-be"),
        (codecs.BOM_UTF32_LE + SAMPLE.encode("utf-32-le"), "utf-32-le"),
        (SAMPLE.encode("utf-16-le"), "utf-16-le"),  # no BOM: found by its zero bytes
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf32le-bom", "utf16le-no-bom"],
)
def test_unicode_encodings(data: bytes, encoding: str) -> None:
    doc = load_text(data, "notes.txt")
    assert doc.text == SAMPLE  # the BOM is not part of the text
    assert doc.metadata["encoding"] == encoding


def test_windows_1252_fallback() -> None:
    doc = load_text("“Quoted” café – 50€".encode("cp1252"), "legacy.txt")
    assert doc.text == "“Quoted” café – 50€"
    assert doc.metadata == {"encoding": "cp1252", "encoding_guessed": True}


def test_latin1_last_resort_never_crashes() -> None:
    # 0x81 and 0x8d are undefined in Windows-1252 and invalid UTF-8.
    doc = load_text(b"caf\xe9 \x81\x8d end", "odd.txt")
    assert doc.text == "café \x81\x8d end"
    assert doc.metadata["encoding"] == "latin-1"


def test_form_feeds_are_pages() -> None:
    data = b"page one\r\nline two\r\n\x0cpage two\n\x0c\x0cpage four"
    doc = load_text(data, "printout.txt")
    assert doc.text == "page one\nline two\n\npage two\n\n\n\npage four"
    assert len(doc.pages) == 4  # the empty third page keeps the numbering right
    assert doc.metadata["page_count"] == 4
    assert doc.page_of(doc.text.index("page two")) == 2
    assert doc.page_of(doc.text.index("page four")) == 4


def test_newlines_normalized_without_pages() -> None:
    doc = load_text(b"a\r\nb\rc\n", "mac.txt")
    assert doc.text == "a\nb\nc\n"
    assert doc.pages == [(0, len(doc.text))]


def test_markdown_title(write: Callable[[str, bytes], Path]) -> None:
    text = "Intro line\n\n## Release notes ##\n\nText.\n\n# Later heading\n"
    doc = Document.open(write("NOTES.md", text.encode()))
    assert doc.metadata["loader"] == "text"
    assert doc.metadata["title"] == "Release notes"
    assert doc.text == text  # Markdown is kept as Markdown


@pytest.mark.parametrize("name", ["data.csv", "data.json", "app.log", "readme.markdown"])
def test_text_like_suffixes_through_document_open(
    name: str, write: Callable[[str, bytes], Path]
) -> None:
    doc = Document.open(write(name, b'id,name\n1,"Ann"\n'))
    assert doc.metadata["loader"] == "text"
    assert doc.text == 'id,name\n1,"Ann"\n'


def test_binary_file_named_txt(write: Callable[[str, bytes], Path]) -> None:
    data = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
    path = write("program.txt", data)
    with pytest.raises(CorruptDocumentError, match="binary") as caught:
        Document.open(path)
    assert str(caught.value).startswith("program.txt: ")
    assert path.read_bytes() == data


def test_binary_that_decodes_as_utf16_is_still_binary() -> None:
    samples = b"".join(i.to_bytes(2, "little") for i in range(1, 30)) * 10  # int16 data
    with pytest.raises(CorruptDocumentError, match="binary"):
        load_text(samples, "samples.txt")


@pytest.mark.parametrize("data", [b"", b" \n\t\r\n ", codecs.BOM_UTF8])
def test_empty_text(data: bytes) -> None:
    with pytest.raises(EmptyDocumentError, match="no text"):
        load_text(data, "empty.txt")


@pytest.mark.parametrize(("value", "ok"), [("12", False), ("1K", True), ("2 MiB", True)])
def test_size_cap_parsing(value: str, ok: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_BYTES", value)
    data = b"x" * 100
    if ok:
        assert load_text(data, "a.txt").text == "x" * 100
    else:
        with pytest.raises(DocumentTooLargeError, match="100 bytes, over the 12 bytes cap"):
            load_text(data, "a.txt")


@pytest.mark.parametrize("value", ["lots", "-5", "0", "1.5M"])
def test_bad_cap_is_a_configuration_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_BYTES", value)
    with pytest.raises(ConfigurationError, match="FIELDWISE_MAX_DOCUMENT_BYTES"):
        load_text(b"hello", "a.txt")


@pytest.mark.parametrize(
    "sample",
    [
        "Счёт № 17\nПокупатель: ООО Ромашка\nИтого: 1 200,00 руб.\n",
        "Τιμολόγιο αριθμός δεκαεπτά\nΠελάτης: Εταιρεία Άλφα\n",
        "請求書番号は十七です。\n合計金額は千二百円です。\n",
        "发票号码是一二三四五\n第二行的内容\n",
    ],
    ids=["cyrillic", "greek", "japanese", "chinese"],
)
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_bomless_utf16_in_other_scripts(sample: str, codec: str) -> None:
    """Only the ASCII characters (spaces, digits, newlines) give such text zero bytes."""
    doc = load_text(sample.encode(codec), "invoice.txt")
    assert doc.text == sample
    assert doc.metadata == {"encoding": codec, "encoding_guessed": True}


def _wide_samples(count: int) -> bytes:
    """16-bit little-endian measurements: mostly large, every 50th small (a zero high
    byte, the pattern of UTF-16 text in other scripts), never a surrogate; read as
    UTF-16 they are unassigned and control characters among ideographs."""
    rng = random.Random(7)
    values = (
        rng.randrange(1, 0x100) if index % 50 == 0 else rng.randrange(0x100, 0xD800)
        for index in range(count)
    )
    return b"".join(value.to_bytes(2, "little") for value in values)


@pytest.mark.parametrize(
    "data",
    [
        # ASCII with a few stray NULs: read as UTF-16 it is printable CJK-looking noise.
        b"ab" * 2000 + b"c\x00" * 3 + b"de" * 2000,
        _wide_samples(4000),
    ],
    ids=["stray-nuls", "binary"],
)
def test_not_mistaken_for_bomless_utf16(data: bytes) -> None:
    try:
        doc = load_text(data, "data.txt")
    except CorruptDocumentError:
        return  # refused as binary: fine
    assert not doc.metadata["encoding"].startswith("utf-16")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (
            "Master Services Agreement\n=========================\n\nBody.\n",
            "Master Services Agreement",
        ),
        ("Intro paragraph.\n\nRelease notes\n---\n\n# Later\n", "Release notes"),
        ("Intro paragraph.\n\n---\n\n# Real title\n", "Real title"),  # a rule, not a heading
        ("- item\n---\n\n## After the list\n", "After the list"),
        ("---\ntitle: Front matter\n---\n\nDocument\n========\n", "Document"),
    ],
    ids=["equals", "dashes", "thematic-break", "list-item", "front-matter"],
)
def test_markdown_setext_title(text: str, title: str) -> None:
    doc = load_text(text.encode(), "README.md")
    assert doc.metadata["title"] == title
    assert doc.text == text
