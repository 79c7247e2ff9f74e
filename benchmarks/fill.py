"""``fieldwise fill`` throughput and memory: a 100k-row CSV and a 20k-row XLSX against the
fake server, at concurrency 64.

    .venv/bin/python benchmarks/fill.py [--csv-rows 100000] [--xlsx-rows 20000]
                                        [--concurrency 64] [--latency 0.05]

The fake server (``python -m fieldwise.testing``) runs in its own process, answering each
request after ``--latency`` seconds, so the ideal rate is concurrency / latency. Each fill
runs in a fresh child process so that its peak RSS is its own; a second run over the same
cache shows the warm (all cached) rate. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class Lead(BaseModel):
    """What the benchmark extracts: a few typed columns."""

    company: str | None = None
    seats: int | None = None
    budget: float | None = None
    urgent: bool | None = None


def make_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,notes,company\r\n")
        for i in range(rows):
            out.write(f'{i},"Call with firm {i}, wants {i % 50} seats, budget {i * 7}",\r\n')


def make_xlsx(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet("Leads")
    ws.append(["id", "notes", "company"])
    for i in range(rows):
        ws.append([i, f"Call with firm {i}, wants {i % 50} seats, budget {i * 7}", None])
    book.save(path)


def child(kind: str, path: str, url: str, cache: str, concurrency: int) -> None:
    """One fill in this process; prints a JSON line with its numbers."""
    from fieldwise.extractor import Extractor
    from fieldwise.plugins import pick_table_adapter

    source = Path(path)
    adapter = pick_table_adapter(source.suffix)
    output = source.with_name(f"{source.stem}.{int(time.time() * 1000)}{source.suffix}")
    started = time.perf_counter()
    cpu = time.process_time()
    with Extractor(base_url=url, api_key="bench", cache_dir=cache) as extractor:
        report = adapter.fill(
            source,
            target=Lead,
            sources=["notes"],
            extractor=extractor,
            output=output,
            concurrency=concurrency,
            warn=lambda text: None,
        )
    wall = time.perf_counter() - started
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    output.unlink()
    result = {
        "rows": report["done"] + report["failed"],
        "failed": report["failed"],
        "cached": report["cached"],
        "wall": wall,
        "cpu": time.process_time() - cpu,
        "rss_mib": rss_mib,
    }
    print(json.dumps(result))


def run_child(kind: str, path: Path, url: str, cache: Path, concurrency: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), url, str(cache), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bare_client_rate(url: str, concurrency: int, ideal: float) -> float:
    """The ceiling of this machine right now (see ``_ceiling``), over ~4 s of requests."""
    from _ceiling import ceiling

    from fieldwise.extractor import Extractor

    with Extractor(base_url=url, api_key="bench", cache=False) as extractor:
        body = extractor.request_body("Call with firm 7, wants 7 seats, budget 49", Lead)
    return ceiling(url, body, concurrency=concurrency, requests=int(ideal * 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv-rows", type=int, default=100_000)
    parser.add_argument("--xlsx-rows", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    ideal = args.concurrency / args.latency
    server = subprocess.Popen(
        [sys.executable, "-m", "fieldwise.testing", "--port", "0", "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            cases = [("csv", work / "leads.csv", args.csv_rows, make_csv),
                     ("xlsx", work / "leads.xlsx", args.xlsx_rows, make_xlsx)]  # fmt: skip
            print(f"fake server latency {args.latency}s, concurrency {args.concurrency}: "
                  f"ideal {ideal:.0f} rows/s")  # fmt: skip
            reference = bare_client_rate(url, args.concurrency, ideal)
            print(f"ceiling now (bare aiohttp client, same fake and request): {reference:.0f} "
                  f"rows/s, {100 * reference / ideal:.0f}% of ideal")  # fmt: skip
            print(f"{'file':<6}{'run':<6}{'rows':>8}{'wall s':>9}{'rows/s':>9}{'% ideal':>9}"
                  f"{'cpu ms/row':>12}{'peak RSS MiB':>14}{'cached':>8}")  # fmt: skip
            for kind, path, rows, make in cases:
                if rows <= 0:
                    continue
                make(path, rows)
                cache = work / f"cache-{kind}"
                for run in ("cold", "warm"):
                    r = run_child(kind, path, url, cache, args.concurrency)
                    rate = r["rows"] / r["wall"]
                    share = f"{100 * rate / ideal:.0f}%" if run == "cold" else "-"
                    print(f"{kind:<6}{run:<6}{r['rows']:>8}{r['wall']:>9.1f}{rate:>9.0f}"
                          f"{share:>9}{1000 * r['cpu'] / r['rows']:>12.2f}{r['rss_mib']:>14.0f}"
                          f"{r['cached']:>8}")  # fmt: skip
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        main()
