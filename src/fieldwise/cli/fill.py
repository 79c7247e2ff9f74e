"""``fieldwise fill FILE --schema MOD:CLASS --from COLUMN``: fill a table's columns.

The file's adapter (a plugin: ``fieldwise-csv``, ``fieldwise-xlsx``) does the reading and
writing; this command checks the arguments, builds the extractor, shows progress on
stderr and turns the outcome into an exit code. Nothing heavy is imported until the
command runs, so ``fieldwise --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import EXIT_FAILURE, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from ._common import add_extractor_options, load_target, make_extractor

#: Rough completion size per target column in a dry-run estimate (key, quotes, a short value).
_OUTPUT_CHARS_PER_COLUMN = 24

#: What the command reads from an adapter's report, unconditionally (``.get`` for others):
#: a report without one is the adapter's bug, said as such rather than a KeyError.
_READ_ALWAYS = ("output", "planned", "unchanged", "no_input")
_READ_AFTER_DRY_RUN = (*_READ_ALWAYS, "rows", "first_input", "input_chars", "created_columns")
_READ_AFTER_FILL = (
    *_READ_ALWAYS,
    "done",
    "failed",
    "skipped",
    "cached",
    "cells_written",
    "tokens",
    "cost",
    "wall_time",
)


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "fill",
        help="fill a table's columns (CSV, XLSX...) from its text columns, row by row",
        description=(
            "Each field of the schema is a column (nested models as outer.inner, lists as "
            "JSON); missing columns are added. By default only blank cells are filled, so a "
            "re-run retries just the rows that failed."
        ),
    )
    parser.add_argument(
        "input",
        metavar="FILE",
        # not the suffixes themselves: finding them loads every plugin, and --help is fast
        help="a table file a plugin reads (`fieldwise plugins` lists them)",
    )
    parser.add_argument("--schema", required=True, help="MODULE:CLASS or FILE.py:CLASS")
    parser.add_argument(
        "--from", dest="sources", action="append", required=True, metavar="COLUMN",
        help="column(s) holding the text to read; repeat for several",
    )  # fmt: skip
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--only-empty", dest="only_empty", action="store_true", default=True,
        help="fill only blank target cells (default)",
    )  # fmt: skip
    mode.add_argument(
        "--overwrite", dest="only_empty", action="store_false",
        help="replace target cells that already hold a value (never formulas)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", help="output file (default: FILE.filled.EXT)")
    parser.add_argument("--in-place", action="store_true", help="replace FILE atomically")
    parser.add_argument("--sheet", help="worksheet to fill (default: the active one)")
    parser.add_argument(
        "--header-row", type=int, metavar="N",
        help="the header is row N, counted from 1 (default: found among the first rows)",
    )  # fmt: skip
    parser.add_argument(
        "--status-columns", action="store_true", help="add _status and _error columns"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="fill at most N rows")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="show the first row's request and a cost estimate; call nothing",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--max-cost", type=float, metavar="USD", help="stop starting rows here")
    parser.add_argument(
        "--force", action="store_true",
        help="go on past a safety limit (a workbook that unpacks to over 1 GiB)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_extractor_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..exceptions import ConfigurationError, SchemaError, UnsupportedInputError
    from ..tables import TableError

    usage_errors = (TableError, ConfigurationError, SchemaError, UnsupportedInputError)
    try:
        adapter, target = _prepare(args)
        extractor = make_extractor(args)
    except usage_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options: dict[str, Any] = {
        "target": target,
        "sources": args.sources,
        # a Path, as the adapter contract says (an adapter may pass it on to Path methods)
        "output": Path(args.output) if args.output else None,
        "in_place": args.in_place,
        "only_empty": args.only_empty,
        "status_columns": args.status_columns,
        "limit": args.limit,
        "sheet": args.sheet,
        "header_row": args.header_row,
        "force": args.force,
        "concurrency": args.concurrency,
        "max_cost": args.max_cost,
    }
    with extractor, _terminating():
        try:
            if args.dry_run:
                return _dry_run(adapter, Path(args.input), options, extractor)
            return _fill(adapter, Path(args.input), options, extractor, args.no_progress)
        except usage_errors as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except _Terminated as exc:  # the shell's convention: 128 + the signal's number
            print(f"error: stopped by {exc.name}", file=sys.stderr)
            return 128 + exc.signum


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises ``KeyboardInterrupt`` and unwinding
    the same way: the batch stops and the adapter removes its temporary file."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextmanager
def _terminating() -> Iterator[None]:
    """For the fill: SIGTERM and SIGHUP (a closed terminal, ``timeout``, a cancelled CI
    job) raise ``_Terminated`` instead of ending the process on the spot, which left the
    adapter's hidden temporary file behind. A signal the process ignores (``nohup``) stays
    ignored, and each handler is put back afterwards."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (and receives the signals)
        return

    def stop(signum: int, frame: object) -> None:
        raise _Terminated(signum)

    kinds = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {kind: signal.getsignal(kind) for kind in kinds}
    for kind, handler in previous.items():
        if handler is signal.SIG_DFL:
            signal.signal(kind, stop)
    try:
        yield
    finally:
        for kind, handler in previous.items():
            if handler is signal.SIG_DFL:
                signal.signal(kind, handler)


def _prepare(args: argparse.Namespace) -> tuple[Any, Any]:
    """Everything that can be wrong before a file is opened: the adapter, the schema
    (compiled now, so a model the strict subset cannot express fails as a usage error)."""
    from ..exceptions import ConfigurationError
    from ..plugins import pick_table_adapter
    from ..schema import compile_schema
    from ..tables import TableError, model_columns

    path = Path(args.input)
    if not path.is_file():
        raise TableError(f"{path}: no such file.")
    if args.limit is not None and args.limit < 1:
        raise ConfigurationError("--limit must be at least 1.")
    if args.header_row is not None and args.header_row < 1:
        raise ConfigurationError("--header-row must be at least 1 (rows are counted from 1).")
    if args.concurrency < 1:
        raise ConfigurationError("--concurrency must be at least 1.")
    if args.max_cost is not None and args.max_cost < 0:
        raise ConfigurationError("--max-cost must not be negative.")
    adapter = pick_table_adapter(path.suffix)
    target = load_target(args.schema)
    model_columns(target)
    compile_schema(target)
    return adapter, target


def _dry_run(adapter: Any, path: Path, options: dict[str, Any], extractor: Any) -> int:
    from ..tables import model_columns

    report = _adapter_fill(
        adapter, path, _READ_AFTER_DRY_RUN, dry_run=True, extractor=extractor, **options
    )
    planned = report["planned"]
    if not planned:
        print(
            f"nothing to fill: {report['rows']} row(s), {_not_sent(report)}.",
            file=sys.stderr,
        )
        return EXIT_OK
    body = extractor.request_body(report["first_input"], options["target"])
    print(json.dumps(body, indent=2, ensure_ascii=False))
    system = sum(len(str(m.get("content") or "")) for m in body["messages"][:-1])
    # the schema goes with every row too, and is billed as prompt tokens
    system += len(json.dumps(body.get("response_format") or body.get("tools") or ""))
    prompt_tokens = (system * planned + report["input_chars"]) // 4
    columns = len(model_columns(options["target"]))
    completion_tokens = planned * (columns * _OUTPUT_CHARS_PER_COLUMN + 2) // 4
    cost = extractor.estimate_cost(prompt_tokens, completion_tokens)
    shown = "unknown (no price known for this model)" if cost is None else f"≈ {_money(cost)}"
    print(
        f"dry run: {planned} row(s) to fill of {report['rows']} ({_not_sent(report)}); "
        f"≈ {prompt_tokens:,} prompt + {completion_tokens:,} completion tokens "
        f"(chars/4, before cache hits); cost {shown}. Would write {report['output']}.",
        file=sys.stderr,
    )
    for column in report["created_columns"]:
        print(f"would add column {column!r}", file=sys.stderr)
    return EXIT_OK


def _adapter_fill(
    adapter: Any, path: Path, needed: tuple[str, ...], **options: Any
) -> Mapping[str, Any]:
    """``adapter.fill(path, **options)``, held to its contract: an error that is not
    fieldwise's (nor the system's, nor an interruption) and a report that is not a mapping
    with the ``needed`` keys are a ``PluginError`` naming the plugin, which the command
    prints as an error instead of a traceback."""
    from ..plugins import broken_contract, held_to_contract

    with held_to_contract(adapter, "fill()"):
        report = adapter.fill(path, **options)
    if not isinstance(report, Mapping):
        kind = type(report).__name__
        raise broken_contract(adapter, f"fill() returned {kind}, not a report dict")
    missing = [key for key in needed if key not in report]
    if missing:
        raise broken_contract(
            adapter, f"fill() returned a report without {', '.join(map(repr, missing))}"
        )
    return report


def _not_sent(report: Mapping[str, Any]) -> str:
    """Why the other rows are not sent: filled already, no input, or past ``--limit``."""
    parts = [
        f"{report['unchanged']} already filled",
        f"{report['no_input']} with empty input",
    ]
    if report.get("past_limit"):
        parts.append(f"{report['past_limit']} past --limit")
    return ", ".join(parts)


class _Progress:
    """A rich progress bar on stderr: rows, rate, ETA and cost so far (off when stderr is
    not a terminal; the final summary is printed either way)."""

    def __init__(self, disabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("fill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[cost]}"),
            console=self.console,
            disable=disabled or not self.console.is_terminal,
        )
        self.task = self.progress.add_task("fill", total=None, rate="", cost="")

    def total(self, count: int) -> None:
        self.progress.update(self.task, total=count)

    def update(self, summary: Any) -> None:
        rate = summary.total / summary.wall_time if summary.wall_time > 0 else 0.0
        self.progress.update(
            self.task, completed=summary.total, rate=f"{rate:.1f} rows/s", cost=_money(summary.cost)
        )

    def warn(self, text: str) -> None:
        self.console.print(f"warning: {text}", markup=False, soft_wrap=True)

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _money(cost: float | None) -> str:
    if cost is None:
        return "cost unknown"
    return f"${cost:.4f}" if cost >= 0.01 or cost == 0 else f"${cost:.6f}"


def _fill(
    adapter: Any, path: Path, options: dict[str, Any], extractor: Any, no_progress: bool
) -> int:
    progress = _Progress(no_progress)
    with progress:
        report = _adapter_fill(
            adapter,
            path,
            _READ_AFTER_FILL,
            extractor=extractor,
            on_total=progress.total,
            on_progress=progress.update,
            warn=progress.warn,
            **options,
        )
    done, failed, skipped = report["done"], report["failed"], report["skipped"]
    # rows answered are not rows filled: an answer may only repeat what is there already
    filled = report.get("rows_written", done)
    parts = [
        f"filled {filled} row(s) of {done} answered ({report['cached']} from cache)",
        f"{failed} failed",
        f"{skipped} skipped at --max-cost" if skipped else "",
        f"{report['unchanged']} left as they were",
        f"{report['past_limit']} past --limit" if report.get("past_limit") else "",
        f"{report['no_input']} with empty input" if report["no_input"] else "",
        f"{report['cells_written']} cell(s) written",
        f"{report['tokens']:,} tokens, {_money(report['cost'])}",
        f"{report['wall_time']:.1f}s",
    ]
    progress.console.print(
        "; ".join(p for p in parts if p) + f" → {report['output']}", markup=False, soft_wrap=True
    )
    if failed or skipped:
        progress.console.print(
            "Failed and skipped rows keep their blank cells: run the same command again to "
            "retry just those (answers already received come from the cache).",
            markup=False,
            soft_wrap=True,
        )
    if not report["planned"] or (not failed and not skipped):
        return EXIT_OK
    return EXIT_FAILURE if done == 0 else EXIT_PARTIAL
