"""``fieldwise eval gold.jsonl --schema MOD:CLASS``: field-level accuracy of a configuration,
or of several side by side (``--compare "max_retries=0" "max_retries=2"``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..exceptions import ConfigurationError
from ._common import add_extractor_options, load_target, print_json


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("eval", help="score extraction against a gold set")
    parser.add_argument("gold", help="JSON lines: {'input'|'input_file', 'expected'}")
    parser.add_argument("--schema", required=True, help="MODULE:CLASS or FILE.py:CLASS")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="SETTINGS",
        help='configurations to compare, each "key=value[,key=value]" of Extractor options',
    )
    parser.add_argument("--concurrency", type=int, default=4)
    add_extractor_options(parser)
    parser.set_defaults(func=run)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_settings(spec: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigurationError(f"--compare {spec!r}: write key=value pairs")
        settings[key.strip()] = _parse_value(value.strip())
    return settings


def _base_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "base_url": args.base_url,
        "max_retries": args.max_retries,
        "temperature": args.temperature,
        "seed": args.seed,
        "instructions": args.instructions,
        "mode": args.mode,
        "timeout": args.timeout,
        "max_tokens": args.max_tokens,
        "cache": False if args.no_cache else ("refresh" if args.refresh else True),
    }


def _table(labels: list[str], reports: list[dict[str, Any]]) -> str:
    rows: list[list[str]] = [["metric", *labels]]

    def pct(value: float) -> str:
        return f"{value * 100:.1f}%"

    rows.append(["n", *(str(r["n"]) for r in reports)])
    rows.append(["exact_object", *(pct(r["exact_object"]) for r in reports)])
    rows.append(["schema_valid", *(pct(r["schema_valid"]) for r in reports)])
    rows.append(["attempts/item", *(f"{r['attempts']:.2f}" for r in reports)])
    rows.append(["tokens", *(str(r["tokens"]) for r in reports)])
    rows.append(
        ["cost", *("unknown" if r["cost"] is None else f"${r['cost']:.6f}" for r in reports)]
    )
    paths = sorted({p for r in reports for p in r["fields"]})
    for path in paths:
        rows.append([f"  {path}", *(pct(r["fields"].get(path, 0.0)) for r in reports)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, load_gold
    from ..extractor import Extractor

    target = load_target(args.schema)
    gold = list(load_gold(args.gold))
    specs = args.compare or [""]
    labels, reports = [], []
    for spec in specs:
        settings = {**_base_settings(args), **parse_settings(spec)}
        with Extractor(**settings) as extractor:
            report = evaluate(gold, target, extractor, concurrency=args.concurrency)
        labels.append(spec or "default")
        reports.append(report.to_dict())
    if args.json:
        if len(reports) == 1:
            print_json(reports[0])
        else:
            print_json({"configs": dict(zip(labels, reports, strict=True))})
    else:
        print(_table(labels, reports))
    return 0
