"""``fieldwise extract FILE|- --schema MOD:CLASS``: one extraction, JSON on stdout."""

from __future__ import annotations

import argparse
import json
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
    add_extractor_options(parser)
    parser.set_defaults(func=run)


_MAGIC = ((b"%PDF", "stdin.pdf"), (b"PK\x03\x04", "stdin.docx"))


def _read_input(name: str) -> Any:
    """The input as a ``Document`` from the loader plugins (which detect a text file's
    encoding, refuse an empty one, and read PDF/DOCX on stdin by their magic bytes), or,
    without a text loader installed, a text file's UTF-8."""
    from ..document import Document
    from ..exceptions import UnsupportedInputError

    if name == "-":
        data = sys.stdin.buffer.read()
        if not data.strip():
            raise UnsupportedInputError("stdin is empty: nothing to extract from.")
        kind = next((n for magic, n in _MAGIC if data.startswith(magic)), None)
        return Document.from_bytes(data, name=kind) if kind else _text_input(data, "stdin")
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix in ("", ".text") or (suffix == ".txt" and not _has_text_loader()):
        return _text_input(path.read_bytes(), str(path))
    return Document.open(path)


def _text_input(data: bytes, name: str) -> Any:
    """Text through the text loader (it detects the encoding, refuses empty text and
    makes form feeds pages); without one installed, UTF-8 only."""
    from ..document import Document

    if _has_text_loader():
        return Document.from_bytes(data, name=f"{Path(name).stem or 'input'}.txt")
    return _utf8(data, name)


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


def run(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter

    target = load_target(args.schema)
    data = _read_input(args.input)
    with make_extractor(args) as extractor:
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
