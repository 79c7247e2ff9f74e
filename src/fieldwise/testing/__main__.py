"""``python -m fieldwise.testing``: run a ``FakeLLM`` as its own process.

Why: benchmarks measure the CPU of the client process, so the server must be able to live
elsewhere. The base URL is the first line on stdout; the server runs until SIGTERM or SIGINT.
Requests are not recorded (nobody can read them, and a long benchmark would only grow memory).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from ._server import FakeLLM


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fieldwise.testing", description="Serve a fake chat-completions API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--model", default="fake/model")
    parser.add_argument("--provider", default="FakeProvider")
    parser.add_argument("--no-cost", action="store_true", help="leave usage.cost out")
    args = parser.parse_args(argv)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake = FakeLLM(
        latency=args.latency,
        model=args.model,
        provider=args.provider,
        send_cost=not args.no_cost,
        host=args.host,
        port=args.port,
        record=False,
        loop_factory=_fastest_loop(),
    )
    with fake:
        print(fake.base_url, flush=True)
        while not done.wait(0.5):
            pass
    return 0


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when installed (the serve extra brings it): the fake's own CPU per
    request then leaves more of a shared machine to the client being measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
