"""``fieldwise extract FILE|- --schema MOD:CLASS``: one extraction, JSON on stdout."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ._common import add_extractor_options, load_target, make_extractor


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "extract", help="extract one object from a text file or document"
    )
    parser.add_argument("input", help="a file (.txt, .pdf, .docx, .html…), or - for stdin")
    parser.add_argument("--schema", required=True, help="MODULE:CLASS or FILE.py:CLASS")
    parser.add_argument("--usage", action="store_true", help="print usage and cost to stderr")
    parser.add_argument(
        "--max-chars",
        type=int,
        metavar="N",
        help="split a longer document into chunks of at most N characters (along pages and "
        "paragraphs) and merge their answers",
    )
    parser.add_argument(
        "--grounding",
        action="store_true",
        help="re-ask string values that do not occur in the input",
    )
    add_extractor_options(parser)
    parser.set_defaults(func=run)


_MAGIC = ((b"%PDF", ".pdf"), (b"PK\x03\x04", ".docx"))
#: the start of an HTML page, after a BOM, whitespace and comments
_HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S
)


def _sniffed_suffix(data: bytes) -> str | None:
    """The kind of input that has no suffix to say it (stdin, a file named ``invoice``),
    by its first bytes: a PDF, a Word file or an HTML page is read as one, never sent to
    the model as raw bytes or markup."""
    kind = next((suffix for magic, suffix in _MAGIC if data.startswith(magic)), None)
    if kind is None and _HTML_START.match(data[:4096]):
        kind = ".html"
    return kind


def _read_input(name: str) -> Any:
    """The input as a ``Document`` from the loader plugins (which detect a text file's
    encoding and refuse an empty one; input without a suffix is recognised by its first
    bytes), or, without a text loader installed, a text file's UTF-8."""
    from ..document import Document
    from ..exceptions import UnsupportedInputError

    if name == "-":
        data = sys.stdin.buffer.read()
        if not data.strip():
            raise UnsupportedInputError("stdin is empty: nothing to extract from.")
        where = "stdin"
    else:
        path = Path(name)
        suffix = path.suffix.lower()
        if suffix not in ("", ".text") and not (suffix == ".txt" and not _has_text_loader()):
            return Document.open(path)
        if not path.is_file():
            raise UnsupportedInputError(f"{path}: no such file")
        data, where = path.read_bytes(), str(path)
    kind = _sniffed_suffix(data)
    if kind is not None:
        return Document.from_bytes(data, name=f"{Path(where).stem or 'input'}{kind}")
    return _text_input(data, where)


def _text_input(data: bytes, name: str) -> Any:
    """Text through the text loader (it detects the encoding, refuses empty text and
    makes form feeds pages); without one installed, UTF-8 only."""
    from ..document import Document

    if _has_text_loader():
        return Document.from_bytes(data, name=f"{Path(name).stem or 'input'}.txt")
    return Document(_utf8(data, name), name=name)  # a Document, so that --max-chars splits it


def _has_text_loader() -> bool:
    from ..exceptions import UnsupportedInputError
    from ..plugins import pick_document_loader

    try:
        pick_document_loader(".txt")
    except UnsupportedInputError:
        return False
    return True


def _utf8(data: bytes, name: str) -> str:
    """Text without the documents plugin: UTF-8 only, and never empty."""
    from ..exceptions import UnsupportedInputError

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedInputError(
            f"{name} is not UTF-8 text: install fieldwise-documents (it detects encodings) "
            "or convert the file."
        ) from None
    if not text.strip():
        raise UnsupportedInputError(f"{name} is empty: nothing to extract from.")
    return text


def _warn_pages_without_text(data: Any) -> None:
    """A partly scanned PDF: the pages with no text layer are not read; say which."""
    metadata = getattr(data, "metadata", None)
    pages = metadata.get("pages_without_text") if isinstance(metadata, dict) else None
    if pages:
        listed = ", ".join(map(str, pages[:10])) + (", ..." if len(pages) > 10 else "")
        print(
            f"fieldwise: page(s) {listed} of {getattr(data, 'name', None) or 'the input'} "
            "have no text layer (scanned?); what they show is not extracted. Run OCR on the "
            "file first, or send page images to a vision model.",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter

    target = load_target(args.schema)
    data = _read_input(args.input)
    _warn_pages_without_text(data)
    with make_extractor(args, max_chars=args.max_chars, grounding=args.grounding) as extractor:
        result = extractor.run(data, target)
    dumped = TypeAdapter(target).dump_python(result.value, mode="json")
    print(json.dumps(dumped, indent=2, ensure_ascii=False))
    if args.usage:
        cost = "unknown" if result.cost is None else f"${result.cost:.6f}"
        print(
            f"model={result.model} attempts={result.attempts} cached={result.cached} "
            f"tokens={result.usage.total_tokens} cost={cost}",
            file=sys.stderr,
        )
    return 0
