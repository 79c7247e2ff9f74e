"""Throughput and latency of ``POST /v1/extract/{name}`` under 64 concurrent clients.

Three processes, so each one's CPU is its own: the fake model (``python -m fieldwise.testing``,
50 ms per answer), the service (``python -m fieldwise serve``, one worker) and this client.
The client speaks bare HTTP/1.1 over keep-alive connections (~60-90 µs of its own CPU a
request, measured; no HTTP library), so the numbers measure the service.

Cold: every request is new text (a cache miss, one upstream call). Warm: the same requests
again (cache hits, no upstream call). The target is 85 % of 64 / 0.05 s = 1088 requests/s.

    python benchmarks/service.py [--clients 64] [--requests 40] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FORMS = """
from pydantic import BaseModel


class Contact(BaseModel):
    name: str
    email: str | None = None
    city: str | None = None
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldwise.testing", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_service(base_url: str, workdir: Path, clients: int) -> tuple[subprocess.Popen[str], int]:
    forms = workdir / "forms.py"
    forms.write_text(FORMS)
    port = free_port()
    env = {
        **os.environ,
        "FIELDWISE_CACHE_DIR": str(workdir / "cache"),
        "OPENAI_API_KEY": "bench",
    }
    env.pop("FIELDWISE_SERVICE_TOKEN", None)
    command = [
        sys.executable, "-m", "fieldwise", "serve", "--schemas", str(forms),
        "--port", str(port), "--base-url", base_url, "--model", "fake/model",
        "--max-concurrency", str(clients), "--queue-timeout", "60",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, text=True)
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the service exited with {proc.returncode}") from None
            time.sleep(0.05)
    raise SystemExit("the service did not start")


def request(port: int, text: str) -> bytes:
    body = json.dumps({"text": text}).encode()
    head = (
        f"POST /v1/extract/Contact HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def client(port: int, payloads: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for payload in payloads:
            started = time.perf_counter()
            writer.write(payload)
            status = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"the service answered {status}")
    finally:
        writer.close()
        await writer.wait_closed()


async def phase(port: int, batches: list[list[bytes]]) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(client(port, batch, latencies) for batch in batches))
    return len(latencies), time.perf_counter() - started, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(name: str, pid: int, port: int, batches: list[list[bytes]], target: float) -> None:
    """Run one phase and print its numbers; CPU per request is the service process's own,
    which stays meaningful when other work shares the machine."""
    cpu_before = cpu_seconds(pid)
    count, elapsed, latencies = asyncio.run(phase(port, batches))
    cpu = cpu_seconds(pid) - cpu_before
    cuts = statistics.quantiles(latencies, n=100)
    rps = count / elapsed
    print(
        f"{name} requests={count} rps={rps:.0f} p50_ms={cuts[49] * 1000:.1f} "
        f"p99_ms={cuts[98] * 1000:.1f} of_target={rps / target:.2f} "
        f"service_cpu_ms_per_request={cpu / count * 1000:.3f}"
    )


def bare_client_rate(base_url: str, clients: int, ideal: float) -> float:
    """The ceiling of this machine right now (see ``_ceiling``), over ~4 s of requests."""
    from _ceiling import ceiling

    from fieldwise.extractor import Extractor

    forms: dict[str, Any] = {}
    exec(FORMS, forms)  # the Contact model the service serves
    with Extractor(base_url=base_url, api_key="bench", model="fake/model", cache=False) as ex:
        body = ex.request_body("Person 1-1, p1-1@example.org", forms["Contact"])
    return ceiling(base_url, body, concurrency=clients, requests=int(ideal * 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=40, help="per client and phase")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    target = 0.85 * args.clients / args.latency

    fake, base_url = start_fake(args.latency)
    with tempfile.TemporaryDirectory() as tmp:
        service, port = start_service(base_url, Path(tmp), args.clients)
        try:
            warmup = [[request(port, f"warm-up {c}")] for c in range(args.clients)]
            asyncio.run(phase(port, warmup))
            batches = [
                [
                    request(port, f"Person {c}-{i}, p{c}-{i}@example.org")
                    for i in range(args.requests)
                ]
                for c in range(args.clients)
            ]
            reference = bare_client_rate(base_url, args.clients, args.clients / args.latency)
            print(f"ceiling now (bare aiohttp client straight to the fake, same request): "
                  f"{reference:.0f} req/s, {reference / target:.2f} of target")  # fmt: skip
            measured("cold", service.pid, port, batches, target)
            measured("warm", service.pid, port, batches, target)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
            fake.send_signal(signal.SIGTERM)
            fake.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
