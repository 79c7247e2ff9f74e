"""PDF loading on real PDFs written by fpdf2 and encrypted by pypdf."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fieldwise_documents import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextLayerError,
    load_pdf,
)

from fieldwise.document import Document
from fieldwise.exceptions import UnsupportedInputError

PAGES = [
    "Invoice INV-001\n\nBilled to Acme Corp. Total due: 120.00 EUR.",
    "Terms: payment within 30 days.",
    "Page three says goodbye.",
]

pytestmark = pytest.mark.usefixtures("plugin_loaded")


def test_pages_text_offsets_and_metadata(make_pdf: Callable[..., bytes]) -> None:
    data = make_pdf(PAGES, title="Invoice 001", author="Billing Bot")
    doc = load_pdf(data, "invoice.pdf")

    assert len(doc.pages) == 3
    for (start, end), expected in zip(doc.pages, ["INV-001", "30 days", "goodbye"], strict=True):
        assert expected in doc.text[start:end]
    # Offsets point into the joined text, and page_of maps them back.
    offset = doc.text.index("goodbye")
    assert doc.page_of(offset) == 3
    assert doc.page_of(doc.text.index("Acme")) == 1
    assert doc.metadata["title"] == "Invoice 001"
    assert doc.metadata["author"] == "Billing Bot"
    assert doc.metadata["page_count"] == 3
    assert doc.name == "invoice.pdf"


def test_document_open_picks_the_pdf_loader(
    make_pdf: Callable[..., bytes], write: Callable[[str, bytes], Path]
) -> None:
    path = write("Report.PDF", make_pdf(PAGES))  # suffix case does not matter
    doc = Document.open(path)
    assert doc.metadata["loader"] == "pdf"
    assert "Acme Corp" in doc.text
    assert doc.page_of(doc.text.index("Terms")) == 2


def test_from_bytes_by_media_type(make_pdf: Callable[..., bytes]) -> None:
    doc = Document.from_bytes(make_pdf(PAGES), name="upload", media_type="application/pdf")
    assert doc.metadata["loader"] == "pdf"
    assert doc.metadata["page_count"] == 3


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_owner_password_only_opens(
    make_pdf: Callable[..., bytes], encrypt_pdf: Callable[..., bytes], algorithm: str
) -> None:
    """An empty user password (restrictions only) opens in any viewer: it must here too."""
    data = encrypt_pdf(make_pdf(PAGES), user="", owner="owner-secret", algorithm=algorithm)
    doc = load_pdf(data, "restricted.pdf")
    assert "Acme Corp" in doc.text
    assert doc.metadata["encrypted"] is True


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_password_protected_pdf_is_a_clear_error(
    make_pdf: Callable[..., bytes],
    encrypt_pdf: Callable[..., bytes],
    write: Callable[[str, bytes], Path],
    algorithm: str,
) -> None:
    data = encrypt_pdf(make_pdf(PAGES), user="s3cret", owner="owner", algorithm=algorithm)
    path = write("locked.pdf", data)
    with pytest.raises(EncryptedDocumentError) as caught:
        Document.open(path)
    message = str(caught.value)
    assert message.startswith("locked.pdf: ")
    assert "encrypted" in message and "password" in message
    assert isinstance(caught.value, UnsupportedInputError)
    assert path.read_bytes() == data  # the file is left as it was


def test_image_only_pdf_says_no_text_layer(image_pdf: Callable[[int], bytes]) -> None:
    with pytest.raises(NoTextLayerError) as caught:
        load_pdf(image_pdf(2), "scan.pdf")
    message = str(caught.value)
    assert "2 pages hold only images" in message
    assert "no text layer" in message
    assert "OCR" in message and "vision" in message
    assert isinstance(caught.value, EmptyDocumentError)


def test_blank_pages_say_no_text_layer(make_pdf: Callable[..., bytes]) -> None:
    with pytest.raises(NoTextLayerError, match="have no text layer"):
        load_pdf(make_pdf(["", ""]), "blank.pdf")


def test_partly_scanned_pdf_lists_pages_without_text(mixed_pdf: bytes) -> None:
    doc = load_pdf(mixed_pdf, "mixed.pdf")
    assert "cover letter" in doc.text
    assert doc.metadata["pages_without_text"] == [2]
    assert len(doc.pages) == 2


@pytest.mark.parametrize(
    ("mangle", "error", "words"),
    [
        (lambda d: d[: len(d) // 3], CorruptDocumentError, "damaged"),
        (lambda d: b"%PDF-1.7\n" + b"\x00garbage\xff" * 50, CorruptDocumentError, "damaged"),
        (lambda d: b"PK\x03\x04 this is a zip, not a pdf", CorruptDocumentError, "not a PDF"),
        (lambda d: b"", EmptyDocumentError, "empty"),
    ],
    ids=["truncated", "garbage-after-header", "wrong-format", "zero-bytes"],
)
def test_broken_files_raise_typed_errors(
    make_pdf: Callable[..., bytes],
    write: Callable[[str, bytes], Path],
    mangle: Callable[[bytes], bytes],
    error: type[Exception],
    words: str,
) -> None:
    data = mangle(make_pdf(PAGES))
    path = write("broken.pdf", data)
    with pytest.raises(error) as caught:
        Document.open(path)
    assert str(caught.value).startswith("broken.pdf: ")
    assert words in str(caught.value)
    assert path.read_bytes() == data


def test_size_cap_from_environment(
    make_pdf: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_pdf(PAGES)
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_BYTES", "1K")
    with pytest.raises(DocumentTooLargeError, match="FIELDWISE_MAX_DOCUMENT_BYTES"):
        load_pdf(data, "big.pdf")
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_BYTES", "10M")
    assert load_pdf(data, "big.pdf").metadata["page_count"] == 3


def test_text_cap_from_environment(
    make_pdf: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_CHARS", "40")
    with pytest.raises(DocumentTooLargeError, match="character cap"):
        load_pdf(make_pdf(PAGES), "long.pdf")


def _shared_stream_pdf(pages: int, stream_bytes: int) -> bytes:
    """A few kilobytes of PDF whose pages all draw one Flate stream of ``stream_bytes``
    empty text operators: nothing to read, and seconds of parsing a page."""
    import zlib

    operator = b"BT /F1 1 Tf 0 0 Td () Tj ET\n"
    stream = zlib.compress(operator * (stream_bytes // len(operator)), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (5 + i) for i in range(pages)), pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
    ] + [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    ] * pages
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_content_that_decodes_to_far_more_than_the_file_is_refused_before_parsing() -> None:
    """Ten pages sharing one 1 MB stream of empty text from a 3 KB file: each page would
    be parsed again (seconds each, minutes for more pages); the decoded content of all
    pages is weighed first against 200 times the file's size (at least 4 MiB)."""
    from fieldwise_documents import DocumentTooLargeError

    data = _shared_stream_pdf(10, 1_000_000)
    assert len(data) < 10_000
    with pytest.raises(DocumentTooLargeError, match="FIELDWISE_MAX_COMPRESSION_RATIO"):
        load_pdf(data, "bomb.pdf")
