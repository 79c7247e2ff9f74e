"""Builders for the real files the tests read: PDFs (fpdf2, pypdf), DOCX (python-docx).

Each builder returns bytes, written fresh per test, so the suite needs no binary
fixtures in the repository.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
import pytest
from fieldwise_documents.limits import ENV_VARS
from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

from fieldwise.plugins import document_loaders, reset_plugins


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests start from the default caps, whatever the environment says."""
    for variable in ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    for variable in ("FIELDWISE_LOAD_PLUGINS", "FIELDWISE_DISABLE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    yield


@pytest.fixture
def plugin_loaded() -> None:
    """The entry point is installed and the core's plugin manager sees its loaders."""
    if not {"pdf", "docx", "html", "text"} <= {loader.name for loader in document_loaders()}:
        reset_plugins()  # another test may have filtered plugins; load them afresh
    names = {loader.name for loader in document_loaders()}
    assert {"pdf", "docx", "html", "text"} <= names, names


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """``write(name, data)`` -> a file in the test's temporary directory."""

    def save(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return save


PdfBuilder = Callable[..., bytes]


@pytest.fixture
def make_pdf() -> PdfBuilder:
    """``make_pdf(["page 1 text", "page 2 text"], title=..., author=...)`` -> bytes."""

    def build(pages: list[str], *, title: str | None = None, author: str | None = None) -> bytes:
        pdf = FPDF()
        pdf.set_font("helvetica", size=12)
        if title:
            pdf.set_title(title)
        if author:
            pdf.set_author(author)
        for text in pages:
            pdf.add_page()
            if text:
                pdf.multi_cell(0, 8, text)
        return bytes(pdf.output())

    return build


def _picture() -> Image.Image:
    picture = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(picture).rectangle((20, 20, 380, 180), outline="black", width=5)
    return picture


@pytest.fixture
def image_pdf() -> Callable[[int], bytes]:
    """A PDF of ``n`` pages that are only pictures, like a scan: no text layer."""

    def build(pages: int = 2) -> bytes:
        pdf = FPDF()
        for _ in range(pages):
            pdf.add_page()
            pdf.image(_picture(), x=10, y=10, w=180)
        return bytes(pdf.output())

    return build


@pytest.fixture
def mixed_pdf() -> bytes:
    """Page 1 has text, page 2 is only a picture."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Typed cover letter.")
    pdf.add_page()
    pdf.image(_picture(), x=10, y=10, w=180)
    return bytes(pdf.output())


def _encrypt_pdf(data: bytes, *, user: str, owner: str | None, algorithm: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def encrypt_pdf() -> Callable[..., bytes]:
    """``encrypt_pdf(data, user=..., owner=..., algorithm="RC4-128"|"AES-256")``, by pypdf."""
    return _encrypt_pdf


DocxBuilder = Callable[..., bytes]


@pytest.fixture
def make_docx() -> DocxBuilder:
    """A report: title, headings, paragraphs, a bullet list and a table with a merged cell."""

    def build(*, title: str = "Quarterly Report", author: str = "Dana Writer") -> bytes:
        document = docx.Document()
        document.core_properties.title = title
        document.core_properties.author = author
        document.add_heading("Quarterly Report", level=0)
        document.add_heading("Summary", level=1)
        document.add_paragraph("Revenue grew by 12% over the quarter.")
        document.add_paragraph("First risk", style="List Bullet")
        document.add_paragraph("Second risk", style="List Bullet")
        document.add_heading("Figures", level=2)
        table = document.add_table(rows=3, cols=3)
        for row, values in zip(
            table.rows,
            [("Region", "Q1", "Q2"), ("North", "10", "12"), ("Total", "", "")],
            strict=True,
        ):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
        merged = table.cell(2, 1).merge(table.cell(2, 2))
        merged.text = "22"
        document.add_paragraph("Prepared by the finance team.")
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()

    return build


def _rezip(
    data: bytes,
    *,
    replace: dict[str, bytes] | None = None,
    add: dict[str, bytes] | None = None,
    compresslevel: int = 6,
) -> bytes:
    """Copy a zip, replacing or adding members (to plant bombs in a real DOCX)."""
    replace = replace or {}
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, replace.get(info.filename, source.read(info)))
        for name, payload in (add or {}).items():
            target.writestr(name, payload)
    return out.getvalue()


@pytest.fixture
def rezip() -> Callable[..., bytes]:
    """``rezip(data, replace={...}, add={...}, compresslevel=9)``: edit a zip's members."""
    return _rezip


_BILLION_LAUGHS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b"<!DOCTYPE lolz [\n"
    b'  <!ENTITY lol "lol">\n'
    + b"".join(
        b'  <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
)


@pytest.fixture
def billion_laughs() -> bytes:
    """A document.xml whose nine nested entities expand to 10^9 "lol"s (3 GB)."""
    return _BILLION_LAUGHS
