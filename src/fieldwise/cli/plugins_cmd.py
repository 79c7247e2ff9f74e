"""``fieldwise plugins``: installed plugins with version and hooks."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._common import print_json

if TYPE_CHECKING:
    from ..plugins import PluginInfo
    from ..registry import DocumentLoader, TableAdapter


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("plugins", help="list installed plugins")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..plugins import list_plugins

    infos = list_plugins()
    if args.json:
        print_json([info.to_json() for info in infos])
        return 0
    if not infos:
        print("No plugins installed.")
    for info in infos:
        status = f"  FAILED: {info.error}" if info.error else ""
        print(f"{info.name} {info.version or ''}  hooks: {', '.join(info.hooks)}{status}")
        for line in _registered(info):
            print(f"    {line}")
    return 0


def _registered(info: PluginInfo) -> list[str]:
    """What a plugin registered, one line a kind: which suffixes each loader or adapter
    reads (and its priority, when not 0), so that two plugins claiming one are seen."""
    lines = []
    readers: tuple[tuple[str, tuple[DocumentLoader | TableAdapter, ...]], ...] = (
        ("document loaders", info.document_loaders),
        ("table adapters", info.table_adapters),
    )
    for kind, items in readers:
        if items:
            lines.append(f"{kind}: " + "; ".join(_reader(item) for item in items))
    if info.backends:
        lines.append("backends: " + ", ".join(backend.name for backend in info.backends))
    return lines


def _reader(item: DocumentLoader | TableAdapter) -> str:
    priority = f", priority {item.priority}" if item.priority else ""
    return f"{item.name} ({' '.join(item.suffixes) or 'no suffix'}{priority})"
