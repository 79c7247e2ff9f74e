"""``fieldwise plugins``: installed plugins with version and hooks."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import print_json


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("plugins", help="list installed plugins")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..plugins import list_plugins

    infos = list_plugins()
    if args.json:
        print_json(
            [
                {"name": i.name, "version": i.version, "hooks": list(i.hooks), "error": i.error}
                for i in infos
            ]
        )
        return 0
    if not infos:
        print("No plugins installed.")
    for info in infos:
        status = f"  FAILED: {info.error}" if info.error else ""
        print(f"{info.name} {info.version or ''}  hooks: {', '.join(info.hooks)}{status}")
    return 0
