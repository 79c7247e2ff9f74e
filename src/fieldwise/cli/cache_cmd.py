"""``fieldwise cache stats|clear``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import EXIT_FAILURE
from ._common import print_json


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("cache", help="inspect or clear the result cache")
    parser.add_argument("action", choices=["stats", "clear"])
    parser.add_argument(
        "--dir", help="cache directory (default: $FIELDWISE_CACHE_DIR or user cache)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cache import CacheUnavailable, ResultCache, default_cache_dir

    directory = default_cache_dir() if args.dir is None else Path(args.dir)
    if args.dir is None and not directory.exists():  # a fresh install: nothing cached yet
        empty = {"directory": str(directory), "entries": 0, "size_bytes": 0}
        if args.action == "stats":
            print_json({**empty, "cost_saved_per_rerun": 0.0, "entries_with_unknown_cost": 0})
        else:
            print(f"Removed 0 cached answers from {directory}.")
        return 0
    try:  # inspecting or clearing creates nothing: a mistyped --dir is an error
        cache = ResultCache(directory, create=False)
    except CacheUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        if args.action == "stats":
            print_json(cache.stats())
        else:
            print(f"Removed {cache.clear()} cached answers from {cache.directory}.")
    finally:
        cache.close()
    return 0
