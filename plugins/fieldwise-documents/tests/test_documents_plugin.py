"""The plugin as the core sees it: entry point, registration, selection, error types."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import fieldwise_documents
import pytest
from fieldwise_documents import DocumentError

from fieldwise.document import Document
from fieldwise.exceptions import FieldwiseError, UnsupportedInputError
from fieldwise.plugins import document_loaders, list_plugins, pick_document_loader

pytestmark = pytest.mark.usefixtures("plugin_loaded")


def test_entry_point_registers_four_loaders() -> None:
    info = {plugin.name: plugin for plugin in list_plugins()}["documents"]
    assert info.error is None
    assert info.version == fieldwise_documents.__version__
    assert info.hooks == ("register_document_loaders",)
    ours = {loader.name: loader for loader in document_loaders()}
    assert ours["pdf"].suffixes == (".pdf",)
    assert ours["docx"].suffixes == (".docx",)
    assert ".htm" in ours["html"].suffixes
    assert {".txt", ".md", ".markdown", ".text", ".csv", ".json", ".log"} <= set(
        ours["text"].suffixes
    )
    assert ours["text"].priority < ours["pdf"].priority == 0


@pytest.mark.parametrize(
    ("suffix", "media_type", "name"),
    [
        (".pdf", None, "pdf"),
        (".docx", None, "docx"),
        (".xhtml", None, "html"),
        (".md", None, "text"),
        ("", "text/html", "html"),
        ("", "text/plain", "text"),
        ("", "application/pdf", "pdf"),
    ],
)
def test_core_picks_our_loader(suffix: str, media_type: str | None, name: str) -> None:
    assert pick_document_loader(suffix, media_type).name == name


def test_unknown_suffix_is_the_cores_error(write: Callable[[str, bytes], Path]) -> None:
    with pytest.raises(UnsupportedInputError, match=r"No document loader reads '\.xyz'"):
        Document.open(write("data.xyz", b"\x00\x01"))


def test_every_error_is_an_unsupported_input_error() -> None:
    for name in fieldwise_documents.__all__:
        value = getattr(fieldwise_documents, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, DocumentError)
            assert issubclass(value, UnsupportedInputError)
            assert issubclass(value, FieldwiseError)
            error = value("the reason.", name="f.pdf")
            assert str(error) == "f.pdf: the reason."
            assert error.name == "f.pdf"


def test_loading_the_plugin_does_not_import_parsers() -> None:
    """Every fieldwise command loads plugins: that must not cost pypdf/lxml imports."""
    code = (
        "import sys, fieldwise_documents.plugin as p; "
        "assert len(p.LOADERS) == 4; "
        "heavy = {'pypdf', 'docx', 'lxml', 'selectolax'} & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html", ".txt"])
def test_a_file_over_the_size_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """``Document.open`` asks the loader before reading: a 64 MiB file over a 1 MiB cap
    is refused without 64 MiB ever being held in memory."""
    import tracemalloc

    from fieldwise_documents import DocumentTooLargeError

    monkeypatch.setenv("FIELDWISE_MAX_DOCUMENT_BYTES", "1M")
    path = tmp_path / f"huge{suffix}"
    with path.open("wb") as sparse:  # takes no disk: a hole of 64 MiB
        sparse.truncate(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(DocumentTooLargeError, match=r"64\.0 MiB, over the 1\.0 MiB cap"):
            Document.open(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
