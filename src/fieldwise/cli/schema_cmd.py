"""``fieldwise schema MOD:CLASS``: the compiled strict schema and what was lowered."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import load_target, print_json


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("schema", help="print the compiled schema and lowerings")
    parser.add_argument("schema", help="MODULE:CLASS or FILE.py:CLASS")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..schema import compile_schema

    compiled = compile_schema(load_target(args.schema))
    report = [{"path": r.path, "kind": r.kind, "detail": r.detail} for r in compiled.report]
    if args.json:
        print_json({"response_format": compiled.response_format, "report": report})
        return 0
    print_json(compiled.response_format)
    if report:
        print("\nLowered for the strict subset (still enforced locally):")
        for entry in report:
            print(f"  {entry['path'] or '(root)'}: {entry['kind']} — {entry['detail']}")
    return 0
