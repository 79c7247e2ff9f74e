"""``fieldwise serve --schemas MOD``: the extraction service over HTTP (uvicorn, one worker).

Why one worker: the extractor's cache, connection pool and concurrency cap are per process;
one async worker already overlaps every upstream call. Why refuse a public host without a
token: the service spends the operator's model credits for whoever can reach it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

from ..exceptions import ConfigurationError
from . import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from ._common import (
    add_extractor_options,
    at_least_one,
    defined_models,
    import_source,
    load_target,
    make_extractor,
    seconds,
    seconds_or_zero,
    whole_number,
)

TOKEN_ENV = "FIELDWISE_SERVICE_TOKEN"


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve extraction over HTTP (needs fieldwise[serve])",
        description="Serve POST /v1/extract/{schema} for every registered schema. Clients "
        f"authenticate with the bearer token in ${TOKEN_ENV} when it is set.",
    )
    parser.add_argument(
        "--schemas",
        action="append",
        required=True,
        metavar="MODULE|FILE.py[:CLASS]",
        help="register every pydantic model defined in a module or .py file, or one class "
        "with MODULE:CLASS (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8000)
    parser.add_argument(
        "--insecure",
        action="store_true",
        help=f"allow a non-loopback --host without ${TOKEN_ENV} (anyone reaching it spends "
        "your credits)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-concurrency", type=at_least_one, default=32, help="extractions at once"
    )
    limits.add_argument(
        "--queue-timeout",
        type=seconds_or_zero,
        default=10.0,
        help="seconds to wait for a slot (then 429)",
    )
    limits.add_argument(
        "--request-timeout",
        type=seconds,
        default=120.0,
        help="seconds per extraction (then 504)",
    )
    limits.add_argument("--max-body-bytes", type=at_least_one, default=1024 * 1024)
    limits.add_argument("--max-upload-bytes", type=at_least_one, default=20 * 1024 * 1024)
    parser.add_argument(
        "--no-docs",
        dest="docs",
        action="store_false",
        help="serve neither /openapi.json nor /docs and /redoc (public otherwise, even "
        "with a token: they describe the API, not data)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    add_extractor_options(parser)
    parser.set_defaults(func=run)


def _port(text: str) -> int:
    """0 to 65535 (0: any free port); asyncio would take 70000 modulo 65536 without a word."""
    value = whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text}")
    return value


def load_schemas(spec: str) -> list[type[Any]]:
    """``MODULE:CLASS``/``FILE.py:CLASS`` → that class; ``MODULE``/``FILE.py`` → every pydantic
    model class defined in it (not those it imports)."""
    from pydantic import BaseModel

    module_name, sep, attr = spec.rpartition(":")
    if sep and module_name and attr.isidentifier():
        target = load_target(spec)
        if not (isinstance(target, type) and issubclass(target, BaseModel)):
            raise ConfigurationError(f"--schemas {spec!r} is not a pydantic model class.")
        return [target]
    found = defined_models(_import(spec))
    if not found:
        raise ConfigurationError(f"--schemas {spec!r} defines no pydantic model class.")
    return found


def _import(spec: str) -> ModuleType:
    return import_source(spec, f"--schemas {spec!r}")


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; anything else may be reachable from outside."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..service import create_app
        from ..service.auth import clean_token
    except ImportError as exc:
        raise ConfigurationError(
            f"`fieldwise serve` needs the 'serve' extra ({exc.name} is missing): "
            "pip install 'fieldwise[serve]'"
        ) from exc
    # a token no client could send is a usage error (ConfigurationError), before anything
    token = clean_token(os.environ.get(TOKEN_ENV, ""), TOKEN_ENV)
    if not is_loopback(args.host) and token is None and not args.insecure:
        print(
            f"error: --host {args.host} is reachable from other machines; set {TOKEN_ENV} "
            "(clients then send 'Authorization: Bearer <token>') or pass --insecure.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    schemas: dict[str, type[Any]] = {}
    for spec in args.schemas:
        for model in load_schemas(spec):
            if schemas.get(model.__name__, model) is not model:
                raise ConfigurationError(f"two schemas are named {model.__name__!r}.")
            schemas[model.__name__] = model

    _configure_logging(args.log_level)
    extractor = make_extractor(args)
    app = create_app(
        schemas,
        extractor,
        token=token or "",
        max_body_bytes=args.max_body_bytes,
        max_upload_bytes=args.max_upload_bytes,
        max_concurrency=args.max_concurrency,
        queue_timeout=args.queue_timeout,
        request_timeout=args.request_timeout,
        docs=args.docs,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,  # fieldwise.access replaces it (JSON, with schema, tokens, cost)
        log_level=args.log_level,
        # SIGTERM: stop accepting, let in-flight requests finish (bounded), then exit.
        timeout_graceful_shutdown=args.request_timeout + args.queue_timeout + 5,
    )
    config.load()  # uvicorn's protocol modules, imported now rather than on start
    _settle_garbage_collector()
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it stopped on once it has shut down; with the default
    # SIGTERM disposition that would kill the process (exit -15) after a clean shutdown.
    signal.signal(signal.SIGTERM, _ignore)

    async def serve() -> None:
        try:
            await server.serve()
        finally:
            await extractor.aclose()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve())
    except SystemExit as exc:
        # uvicorn exits with 3 when it cannot start (the address in use, a host it cannot
        # resolve: it has logged why); 3 is this CLI's "partial failure", so say so and
        # fail with 1.
        if not exc.code:
            raise
        print(
            f"error: the server could not start on {args.host}:{args.port} (see the log above).",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK if server.started else EXIT_FAILURE


def _settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off what start-up built, and run it less often.

    Why: measured at 64 concurrent clients, the collector took ~50 µs of CPU per request.
    Young collections ran every 700 new objects (every few requests), and each full one
    walked every object the imports had made (FastAPI, pydantic, aiohttp), ~60 ms apiece,
    which set the service's p99. ``gc.freeze()`` puts everything that exists now out of
    the collector's reach for good (it is all kept until exit anyway), and a young
    generation of 10,000 objects makes collections rarer; requests leave little cyclic
    garbage, so memory barely moves. Only ``fieldwise serve`` does this: it owns its
    process, while ``create_app`` may live in someone else's.
    """
    from .. import _async_http  # noqa: F401  (the upstream client, imported before freezing)

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """SIGTERM after uvicorn's graceful shutdown: already handled, exit normally."""


def _configure_logging(level: str) -> None:
    """JSON access lines to stderr, one per request (the message is the JSON object).

    Every line is the message alone, so the records skip what no handler here prints: the
    caller's file and line (a walk up the stack per record), the thread and the process
    (the logging HOWTO's "Optimization" settings; ~2.5 µs a request of ~15 for the line).
    This process is ``fieldwise serve``'s own, so the settings are its to choose.
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("fieldwise.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    service = logging.getLogger("fieldwise.service")
    service.addHandler(logging.StreamHandler(sys.stderr))
    service.setLevel(level.upper())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the serve extra brings it, except on
    Windows): measured, it cuts the service's CPU per request (see docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
