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


def _read_input(name: str) -> Any:
    if name == "-":
        return sys.stdin.read()
    path = Path(name)
    if path.suffix.lower() in ("", ".txt", ".text"):
        return path.read_text(encoding="utf-8-sig", errors="replace")
    from ..document import Document

    return Document.open(path)


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
