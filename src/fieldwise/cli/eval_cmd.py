"""``fieldwise eval gold.jsonl --schema MOD:CLASS``: field-level accuracy of a configuration,
or of several side by side (``--compare "max_retries=0" "max_retries=2"``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Collection
from typing import Any

from ..exceptions import ConfigurationError
from . import EXIT_USAGE
from ._common import add_extractor_options, at_least_one, load_target, print_json


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("eval", help="score extraction against a gold set")
    parser.add_argument("gold", help="JSON lines: {'input'|'input_file', 'expected'}")
    parser.add_argument("--schema", required=True, help="MODULE:CLASS or FILE.py:CLASS")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="SETTINGS",
        help='configurations to compare, each "key=value[,key=value...]" of Extractor '
        "options (max_retries, temperature, instructions, model...). A comma starts the next "
        "pair only where an option name and = follow it, so a value may contain commas "
        '("instructions=Be exact, no guessing"). A value is JSON where it parses as JSON '
        "(0, 0.5, true, null), else text",
    )
    parser.add_argument("--concurrency", type=at_least_one, default=4)
    add_extractor_options(parser)
    parser.set_defaults(func=run)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def option_names() -> tuple[str, ...]:
    """The keyword arguments ``Extractor`` takes: the keys ``--compare`` accepts."""
    import inspect

    from ..extractor import Extractor

    return tuple(inspect.signature(Extractor).parameters)


def parse_settings(spec: str, names: Collection[str] | None = None) -> dict[str, Any]:
    """``"key=value,key=value"`` as ``Extractor`` options (``names``: the valid keys).

    Why not split on every comma: instructions are prose. A comma starts the next pair only
    where a valid key and ``=`` follow it, so ``instructions=Be exact, no guessing`` is one
    pair. An unknown key is refused here, naming the valid ones, rather than as a
    ``TypeError`` from ``Extractor`` once earlier configurations have run."""
    names = tuple(option_names() if names is None else names)
    keys = "|".join(re.escape(name) for name in names)
    pairs = re.split(rf",\s*(?=(?:{keys})\s*=)", spec) if names else [spec]
    settings: dict[str, Any] = {}
    for part in filter(None, (p.strip(", ") for p in pairs)):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigurationError(f"--compare {spec!r}: write key=value pairs")
        if key not in names:
            raise ConfigurationError(
                f"--compare {spec!r}: unknown option {key!r}; use one of "
                + ", ".join(sorted(names))
            )
        settings[key] = _parse_value(value.strip())
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
    rows.append(["from cache", *(str(r["from_cache"]) for r in reports)])
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
    try:  # every configuration checked before the first one runs
        names = option_names()
        configs = [parse_settings(spec, names) for spec in specs]
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    labels, reports = [], []
    for spec, config in zip(specs, configs, strict=True):
        settings = {**_base_settings(args), **config}
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
