"""DOCX loading on real files written by python-docx, including planted bombs."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from docx.oxml.parser import parse_xml
from fieldwise_documents import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsafeDocumentError,
    load_docx,
)

from fieldwise.document import Document

pytestmark = pytest.mark.usefixtures("plugin_loaded")


def test_paragraphs_headings_lists_and_tables_in_order(make_docx: Callable[..., bytes]) -> None:
    doc = load_docx(make_docx(), "report.docx")
    assert doc.text == (
        "# Quarterly Report\n\n"
        "# Summary\n\n"
        "Revenue grew by 12% over the quarter.\n\n"
        "- First risk\n"
        "- Second risk\n\n"
        "## Figures\n\n"
        "Region | Q1 | Q2\n"
        "North | 10 | 12\n"
        "Total | 22\n\n"  # the merged cell is written once
        "Prepared by the finance team."
    )
    assert doc.metadata["title"] == "Quarterly Report"
    assert doc.metadata["author"] == "Dana Writer"
    assert doc.pages == [(0, len(doc.text))]


def test_document_open_picks_the_docx_loader(
    make_docx: Callable[..., bytes], write: Callable[[str, bytes], Path]
) -> None:
    doc = Document.open(write("report.docx", make_docx()))
    assert doc.metadata["loader"] == "docx"
    assert "North | 10 | 12" in doc.text


def test_zip_bomb_is_refused_before_unpacking(
    make_docx: Callable[..., bytes],
    rezip: Callable[..., bytes],
    write: Callable[[str, bytes], Path],
) -> None:
    # 8 MiB of zeros packs into ~8 KiB: a 1000x ratio, where real DOCX parts pack 5-30x.
    padding = {"word/media/padding.bin": bytes(8 * 1024 * 1024)}
    data = rezip(make_docx(), add=padding, compresslevel=9)
    assert len(data) < 200_000
    path = write("bomb.docx", data)
    with pytest.raises(UnsafeDocumentError) as caught:
        Document.open(path)
    message = str(caught.value)
    assert message.startswith("bomb.docx: refusing a likely zip bomb")
    assert "word/media/padding.bin" in message
    assert "FIELDWISE_MAX_COMPRESSION_RATIO" in message
    assert path.read_bytes() == data


def test_compression_ratio_cap_is_configurable(
    make_docx: Callable[..., bytes], rezip: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    padding = {"word/media/padding.bin": bytes(2 * 1024 * 1024)}
    data = rezip(make_docx(), add=padding, compresslevel=9)
    monkeypatch.setenv("FIELDWISE_MAX_COMPRESSION_RATIO", "100000")
    assert "Revenue" in load_docx(data, "padded.docx").text


def test_unpacked_size_cap(
    make_docx: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDWISE_MAX_UNPACKED_BYTES", "64K")
    with pytest.raises(DocumentTooLargeError, match=r"unpacks to .* over the 64\.0 KiB cap"):
        load_docx(make_docx(), "report.docx")


def test_entry_count_cap(make_docx: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDWISE_MAX_ZIP_ENTRIES", "5")
    with pytest.raises(UnsafeDocumentError, match="entries"):
        load_docx(make_docx(), "report.docx")


def test_billion_laughs_is_refused_fast(
    make_docx: Callable[..., bytes],
    rezip: Callable[..., bytes],
    billion_laughs: bytes,
    write: Callable[[str, bytes], Path],
) -> None:
    data = rezip(make_docx(), replace={"word/document.xml": billion_laughs})
    path = write("laughs.docx", data)
    started = time.perf_counter()
    with pytest.raises(UnsafeDocumentError) as caught:
        Document.open(path)
    assert time.perf_counter() - started < 2
    message = str(caught.value)
    assert "'word/document.xml' declares an XML DTD" in message
    assert path.read_bytes() == data


def test_dtd_in_utf16_part_is_found(
    make_docx: Callable[..., bytes], rezip: Callable[..., bytes], billion_laughs: bytes
) -> None:
    """Expat reads the part's own encoding, so re-encoding cannot hide the DTD."""
    utf16 = billion_laughs.replace(b'encoding="UTF-8"', b'encoding="UTF-16"').decode()
    data = rezip(make_docx(), replace={"word/styles.xml": utf16.encode("utf-16")})
    with pytest.raises(UnsafeDocumentError, match=r"word/styles\.xml"):
        load_docx(data, "laughs16.docx")


def test_python_docx_parser_itself_does_not_expand_entities(billion_laughs: bytes) -> None:
    """Second line of defence, should the DTD check ever miss: python-docx's parser
    (lxml, ``resolve_entities=False``) either leaves entities unexpanded or, with
    libxml2's amplification guard, refuses the document; either way quickly."""
    started = time.perf_counter()
    try:
        element = parse_xml(billion_laughs)
    except Exception as exc:  # lxml.etree.XMLSyntaxError
        assert "amplification" in str(exc)
    else:
        assert len(element.xml) < 10_000
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"not a zip at all", CorruptDocumentError, "not a valid DOCX"),
        (b"", EmptyDocumentError, "empty"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512,
            CorruptDocumentError,
            "legacy binary Word file (.doc)",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + b"\x00" * 64
            + "EncryptedPackage".encode("utf-16-le")
            + b"\x00" * 64,
            EncryptedDocumentError,
            "password-protected",
        ),
    ],
    ids=["not-zip", "empty", "legacy-doc", "encrypted-office"],
)
def test_wrong_or_broken_files(
    data: bytes, error: type[Exception], words: str, write: Callable[[str, bytes], Path]
) -> None:
    path = write("broken.docx", data)
    with pytest.raises(error) as caught:
        Document.open(path)
    assert str(caught.value).startswith("broken.docx: ")
    assert words in str(caught.value)
    assert path.read_bytes() == data


def test_zip_that_is_not_a_word_document() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(CorruptDocumentError, match="not a readable Word document"):
        load_docx(out.getvalue(), "other.docx")


def test_truncated_docx(make_docx: Callable[..., bytes]) -> None:
    data = make_docx()
    with pytest.raises(CorruptDocumentError):
        load_docx(data[: len(data) // 2], "cut.docx")


def test_empty_word_document(rezip: Callable[..., bytes], make_docx: Callable[..., bytes]) -> None:
    empty_body = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p/></w:body></w:document>"
    )
    data = rezip(make_docx(), replace={"word/document.xml": empty_body})
    with pytest.raises(EmptyDocumentError, match="holds no text"):
        load_docx(data, "blank.docx")
