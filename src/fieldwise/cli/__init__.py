"""The ``fieldwise`` command: thin, argparse-based (fast start), calling the public API.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; plugins add
more through the ``register_commands`` hook. Exit codes: 0 success, 1 total failure,
2 usage error, 3 partial failure (some rows/items failed).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..exceptions import ConfigurationError, FieldwiseError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

_COMMAND_MODULES = (
    "extract",
    "fill",
    "schema_cmd",
    "plugins_cmd",
    "cache_cmd",
    "serve",
    "eval_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fieldwise", description="Structured extraction with language models."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.add_parser(subparsers)
    from ..plugins import add_plugin_commands

    add_plugin_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.func(args)
    except ConfigurationError as exc:  # the invocation is wrong (a --schema, a key, an option)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FieldwiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # a missing or unreadable file: say which, no traceback
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
