"""Client-side CPU overhead of one extraction: fieldwise against the floor and its peers.

What is measured: the CPU time of *this* process (``time.process_time``) per extraction of a
realistic ``Invoice`` (nested address, list of line items, a literal currency, a date), while
the fake chat-completions server runs in a separate process (``python -m fieldwise.testing``),
so the server's own CPU is not counted. The contenders, all sending the same messages and the
same strict ``response_format``, all returning a validated ``Invoice``:

1. ``floor``      bare httpx (hand-built body) + ``Invoice.model_validate_json(content)``
2. ``openai``     ``client.chat.completions.parse(..., response_format=Invoice)``
3. ``instructor`` ``instructor.from_openai(..., mode=Mode.JSON_SCHEMA)``
4. ``fieldwise``  ``Extractor(cache=False, network_retries=0).run`` / ``arun``
5. ``fw-cache``   fieldwise cache hits (sync, after a warm-up call that fills the cache)
6. ``floor-x2``   the floor on httpx2 (the pydantic fork openai>=3 uses), whose pool does not
                  rescan every connection per request: the real floor at 64 in flight
7. ``floor-aio``  the async floor on aiohttp, the library fieldwise's async path uses
8. ``fw+httpx2``  (``--what-if``) fieldwise's sync path with one httpx2 client, not shards

Passes: N sequential calls (server latency ``--latency``, 0 by default: a pure CPU measure),
N concurrent calls with 64 in flight at the same latency, and N concurrent calls at
``--conc-latency`` (50 ms) whose throughput is compared with the ideal 64 / latency. Every
contender is warmed up first, all clients stay open for the whole pass, and the contenders
take turns (sequential: in chunks of 25 calls) so that load from elsewhere is shared; each
measurement is repeated and the median reported, with the best repeat beside it. Then the
start-up cost: ``python -c "import fieldwise"`` and ``... fieldwise.Extractor`` in fresh
interpreters, with and without httpx's optional CLI (``httpx/__init__`` imports
``httpx._main``, which imports click, rich and pygments whenever click is installed, as it is
in the dev venv because instructor depends on it).

    .venv/bin/python benchmarks/overhead.py                 # table, ~1.5 min on 2 cores
    .venv/bin/python benchmarks/overhead.py --json          # machine-readable
    .venv/bin/python benchmarks/overhead.py --breakdown     # + fieldwise's per-stage costs
    .venv/bin/python benchmarks/overhead.py --profile       # + cProfile (CPU clock)
    .venv/bin/python benchmarks/overhead.py --what-if --only floor,fieldwise,floor-x2,fw+httpx2

Targets (reported as PASS/FAIL, never asserted): fieldwise <= 1.3x the floor's CPU per call,
>= 3x below instructor's, a cache hit <= 100 us, ``import fieldwise`` <= 0.3 s.
CPU per call moves far less with other load on the machine than wall time and calls/s do,
but on a busy 2-core box it still moves 10-30% between runs: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

MODEL = "fake/model"
INFLIGHT = 64
CHUNK = 25  # sequential calls per contender per turn (see sync_pass)

# -- the workload ------------------------------------------------------------------------------


class Address(BaseModel):
    street: str
    city: str
    postal_code: str
    country: str = Field(description="ISO 3166-1 alpha-2 code")


class LineItem(BaseModel):
    description: str
    quantity: int
    unit_price: float
    total: float


class Invoice(BaseModel):
    invoice_number: str
    issue_date: dt.date
    vendor: str
    billing_address: Address
    currency: Literal["USD", "EUR", "GBP"]
    items: list[LineItem]
    subtotal: float
    tax: float
    total: float
    notes: str | None = None


TEXT = """\
INVOICE No. INV-2024-00731                                   Date: 14 March 2024

From: Northwind Office Supplies GmbH, Hafenstrasse 12, 20457 Hamburg, Germany
Bill to: Contoso Analytics Ltd., 221B Baker Street, London NW1 6XE, United Kingdom

Qty  Description                                   Unit price      Amount
 12  Ergonomic office chair, model K-300            EUR 189.00   EUR 2,268.00
 30  A4 copy paper, 80 g/m2, box of 5 reams         EUR  21.50   EUR   645.00
  4  Height-adjustable standing desk, 160x80 cm     EUR 420.00   EUR 1,680.00
  2  Whiteboard 180x90 cm, magnetic, with tray      EUR  95.00   EUR   190.00
  1  Delivery and installation (Greater London)     EUR 250.00   EUR   250.00

                                                    Subtotal     EUR 5,033.00
                                                    VAT 19%      EUR   956.27
                                                    TOTAL DUE    EUR 5,989.27

Payment within 30 days to IBAN DE89 3704 0044 0532 0130 00. Please quote the invoice
number with your payment. Goods remain our property until paid in full.
"""


def system_prompt() -> str:
    from fieldwise.prompt import SYSTEM_PROMPT

    return SYSTEM_PROMPT


def messages() -> list[dict[str, Any]]:
    """What fieldwise sends for ``TEXT``; every other contender sends the same."""
    return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": TEXT}]


def _sdk_messages() -> Any:
    """``messages()``, typed loosely for the SDKs' TypedDict parameters."""
    return messages()


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The floor's hand-made strict schema: all properties required, objects closed."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: walk(v) for k, v in node.items() if k not in ("title", "default")}
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(model.model_json_schema())  # type: ignore[no-any-return]


def floor_body() -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": messages(),
        "temperature": 0.0,
        "seed": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Invoice", "strict": True, "schema": strict_schema(Invoice)},
        },
    }


# -- contenders: factories of (call, close) --------------------------------------------------

SyncPair = tuple[Callable[[], Any], Callable[[], None]]
AsyncPair = tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]


def _unlimited() -> Any:
    import httpx

    return httpx.Limits(max_connections=None, max_keepalive_connections=None, keepalive_expiry=30)


def floor_sync(url: str) -> SyncPair:
    import httpx

    client = httpx.Client(headers={"Authorization": "Bearer x"}, timeout=60, limits=_unlimited())
    chat, body = f"{url}/chat/completions", floor_body()

    def call() -> Invoice:
        response = client.post(chat, json=body)
        response.raise_for_status()
        return Invoice.model_validate_json(response.json()["choices"][0]["message"]["content"])

    return call, client.close


def floor_async(url: str) -> AsyncPair:
    import httpx

    client = httpx.AsyncClient(
        headers={"Authorization": "Bearer x"}, timeout=60, limits=_unlimited()
    )
    chat, body = f"{url}/chat/completions", floor_body()

    async def call() -> Invoice:
        response = await client.post(chat, json=body)
        response.raise_for_status()
        return Invoice.model_validate_json(response.json()["choices"][0]["message"]["content"])

    return call, client.aclose


def openai_sync(url: str) -> SyncPair:
    from openai import OpenAI

    client, sent = OpenAI(base_url=url, api_key="x"), _sdk_messages()

    def call() -> Invoice:
        completion = client.chat.completions.parse(
            model=MODEL, messages=sent, response_format=Invoice, temperature=0.0, seed=0
        )
        return completion.choices[0].message.parsed  # type: ignore[return-value]

    return call, client.close


def openai_async(url: str) -> AsyncPair:
    from openai import AsyncOpenAI

    client, sent = AsyncOpenAI(base_url=url, api_key="x"), _sdk_messages()

    async def call() -> Invoice:
        completion = await client.chat.completions.parse(
            model=MODEL, messages=sent, response_format=Invoice, temperature=0.0, seed=0
        )
        return completion.choices[0].message.parsed  # type: ignore[return-value]

    return call, client.close


def instructor_sync(url: str) -> SyncPair:
    import instructor
    from openai import OpenAI

    raw = OpenAI(base_url=url, api_key="x")
    client = instructor.from_openai(raw, mode=instructor.Mode.JSON_SCHEMA)
    sent = _sdk_messages()

    def call() -> Invoice:
        return client.chat.completions.create(
            model=MODEL, messages=sent, response_model=Invoice, temperature=0.0, seed=0
        )

    return call, raw.close


def instructor_async(url: str) -> AsyncPair:
    import instructor
    from openai import AsyncOpenAI

    raw = AsyncOpenAI(base_url=url, api_key="x")
    client = instructor.from_openai(raw, mode=instructor.Mode.JSON_SCHEMA)
    sent = _sdk_messages()

    async def call() -> Invoice:
        return await client.chat.completions.create(
            model=MODEL, messages=sent, response_model=Invoice, temperature=0.0, seed=0
        )

    return call, raw.close


def fieldwise_sync(url: str) -> SyncPair:
    from fieldwise import Extractor

    ex = Extractor(model=MODEL, base_url=url, api_key="x", cache=False, network_retries=0)
    return (lambda: ex.run(TEXT, Invoice).value), ex.close


def fieldwise_async(url: str) -> AsyncPair:
    from fieldwise import Extractor

    ex = Extractor(model=MODEL, base_url=url, api_key="x", cache=False, network_retries=0)

    async def call() -> Invoice:
        result = await ex.arun(TEXT, Invoice)
        return result.value

    return call, ex.aclose


_cache_dirs: list[tempfile.TemporaryDirectory[str]] = []


def fieldwise_cached_sync(url: str) -> SyncPair:
    from fieldwise import Extractor

    directory = tempfile.TemporaryDirectory(prefix="fw-bench-cache-")
    _cache_dirs.append(directory)
    ex = Extractor(model=MODEL, base_url=url, api_key="x", cache_dir=directory.name)
    ex.run(TEXT, Invoice)  # the one miss: fills the cache

    def call() -> Invoice:
        result = ex.run(TEXT, Invoice)
        if not result.cached:
            raise RuntimeError("expected a cache hit")
        return result.value

    def close() -> None:
        ex.close()
        directory.cleanup()

    return call, close


# -- what-if contenders (--what-if): the proposed transport fix, measured ---------------------


def _httpx2() -> Any:
    import httpx2  # the pydantic fork of httpx/httpcore that openai>=3 depends on

    return httpx2


def floor2_sync(url: str) -> SyncPair:
    httpx2 = _httpx2()
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    client = httpx2.Client(headers={"Authorization": "Bearer x"}, timeout=60, limits=limits)
    chat, body = f"{url}/chat/completions", floor_body()

    def call() -> Invoice:
        response = client.post(chat, json=body)
        response.raise_for_status()
        return Invoice.model_validate_json(response.json()["choices"][0]["message"]["content"])

    return call, client.close


def floor2_async(url: str) -> AsyncPair:
    httpx2 = _httpx2()
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    client = httpx2.AsyncClient(headers={"Authorization": "Bearer x"}, timeout=60, limits=limits)
    chat, body = f"{url}/chat/completions", floor_body()

    async def call() -> Invoice:
        response = await client.post(chat, json=body)
        response.raise_for_status()
        return Invoice.model_validate_json(response.json()["choices"][0]["message"]["content"])

    return call, client.aclose


def _on_httpx2(ex: Any) -> None:
    """Point ``ex``'s sync transport at one httpx2 client (no shards): the what-if.

    Reaches into ``Transport._shards`` (``fieldwise._pool.Shards``); if those internals have
    changed, this raises and the contender is skipped. (The async path runs on aiohttp.)
    """
    from fieldwise._pool import Shards

    httpx2 = _httpx2()
    transport = ex._transport_for_use()
    limits = httpx2.Limits(
        max_connections=None, max_keepalive_connections=None, keepalive_expiry=30
    )
    timeout = httpx2.Timeout(60.0, connect=10.0)
    headers = dict(transport._headers)
    transport._shards = Shards(
        lambda: httpx2.Client(headers=headers, timeout=timeout, limits=limits),
        per_shard=1 << 30,
        max_shards=1,
    )


def fw_httpx2_sync(url: str) -> SyncPair:
    from fieldwise import Extractor

    ex = Extractor(model=MODEL, base_url=url, api_key="x", cache=False, network_retries=0)
    _on_httpx2(ex)
    return (lambda: ex.run(TEXT, Invoice).value), ex.close


def floor_aiohttp_async(url: str) -> AsyncPair:
    import aiohttp

    client: list[Any] = []
    chat, body = f"{url}/chat/completions", json.dumps(floor_body()).encode()
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}

    async def call() -> Invoice:
        if not client:  # a session belongs to the running loop: made on first use
            client.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        async with client[0].post(chat, data=body, headers=headers) as response:
            response.raise_for_status()
            payload = json.loads(await response.read())
        return Invoice.model_validate_json(payload["choices"][0]["message"]["content"])

    async def close() -> None:
        if client:
            await client.pop().close()

    return call, close


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    sync: Callable[[str], SyncPair] | None
    async_: Callable[[str], AsyncPair] | None
    what_if: bool = False


CONTENDERS = [
    Contender("floor", "bare httpx + model_validate_json", floor_sync, floor_async),
    Contender("openai", "openai chat.completions.parse", openai_sync, openai_async),
    Contender("instructor", "instructor JSON_SCHEMA", instructor_sync, instructor_async),
    Contender("fieldwise", "fieldwise Extractor.run/arun", fieldwise_sync, fieldwise_async),
    Contender("fw-cache", "fieldwise cache hit (sync)", fieldwise_cached_sync, None),
    Contender("floor-x2", "bare httpx2 (the pool fix)", floor2_sync, floor2_async),
    Contender("floor-aio", "bare aiohttp + model_validate_json", None, floor_aiohttp_async),
    Contender("fw+httpx2", "fieldwise sync, one httpx2 client", fw_httpx2_sync, None, True),
]

# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Row:
    contender: str
    mode: str  # "seq" | "conc64"
    latency: float  # server latency, seconds
    n: int
    cpu_us: float  # client CPU per call, median over repeats
    cpu_us_min: float  # the best repeat (least disturbed by other load on the machine)
    wall_ms: float  # wall per call (seq), or the pass's wall / n (conc); median over repeats
    calls_per_s: float
    samples_cpu_us: list[float] = field(default_factory=list)


@contextlib.contextmanager
def fake_server(latency: float) -> Iterator[str]:
    """``python -m fieldwise.testing`` in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldwise.testing", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the fake server did not start (printed {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _check(name: str, value: Any, reference: list[dict[str, Any]]) -> None:
    """Every contender must return the same validated Invoice."""
    if not isinstance(value, Invoice):
        raise RuntimeError(f"{name} returned {type(value).__name__}, not Invoice")
    if not reference:
        reference.append(value.model_dump())
    elif value.model_dump() != reference[0]:
        raise RuntimeError(f"{name} decoded a different Invoice: {value!r}")


def _make(c: Contender, factory: Callable[[str], Any], url: str) -> Any:
    """The contender's (call, close), or None (with a note) when it cannot be built here."""
    try:
        return factory(url)
    except (ImportError, AttributeError, TypeError) as exc:
        print(f"  .. skipping {c.name}: {exc!r}", file=sys.stderr)
        return None


def _order(items: list[Any], rep: int) -> list[Any]:
    """Rotate the order each repeat, so slow drifts in machine load hit everyone alike."""
    k = rep % len(items)
    return items[k:] + items[:k]


def sync_pass(
    chosen: list[Contender],
    url: str,
    latency: float,
    n: int,
    repeats: int,
    warmup: int,
    ref: list[dict[str, Any]],
) -> list[Row]:
    """All contenders' sync clients open at once; their calls interleave in chunks."""
    pairs: list[tuple[Contender, Callable[[], Any], Callable[[], None]]] = []
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    try:
        for c in chosen:
            if c.sync is not None:
                made = _make(c, c.sync, url)
                if made is None:
                    continue
                call, close = made
                pairs.append((c, call, close))
                _check(c.name, call(), ref)
                for _ in range(warmup):
                    call()
        # Each repeat runs n calls per contender in chunks of CHUNK, the contenders taking
        # turns chunk by chunk, so a burst of load from elsewhere is shared by all of them.
        chunks = [CHUNK] * (n // CHUNK) + ([n % CHUNK] if n % CHUNK else [])
        for _ in range(repeats):
            spent = {c.name: [0.0, 0.0] for c, _, _ in pairs}
            for turn, size in enumerate(chunks):
                for c, call, _ in _order(pairs, turn):
                    c0, w0 = time.process_time(), time.perf_counter()
                    for _ in range(size):
                        call()
                    spent[c.name][0] += time.process_time() - c0
                    spent[c.name][1] += time.perf_counter() - w0
            for name, (cpu_s, wall_s) in spent.items():
                cpu.setdefault(name, []).append(cpu_s / n * 1e6)
                wall.setdefault(name, []).append(wall_s / n)
    finally:
        for _, _, close in pairs:
            close()
    return [_row(c.name, "seq", latency, n, cpu[c.name], wall[c.name], 1) for c, _, _ in pairs]


def async_pass(
    chosen: list[Contender],
    url: str,
    latency: float,
    n: int,
    repeats: int,
    ref: list[dict[str, Any]],
) -> list[Row]:
    """``n`` calls, ``INFLIGHT`` at a time, per contender and repeat, in one event loop."""

    async def main() -> list[Row]:
        pairs: list[tuple[Contender, Callable[[], Awaitable[Any]], Callable[[], Any]]] = []
        cpu: dict[str, list[float]] = {}
        wall: dict[str, list[float]] = {}
        try:
            for c in chosen:
                if c.async_ is not None:
                    made = _make(c, c.async_, url)
                    if made is None:
                        continue
                    call, close = made
                    pairs.append((c, call, close))
                    _check(c.name, await call(), ref)
                    await drive(call, 2 * INFLIGHT)  # opens the connections, warms every path
            for rep in range(repeats):
                for c, call, _ in _order(pairs, rep):
                    c0, w0 = time.process_time(), time.perf_counter()
                    await drive(call, n)
                    cpu.setdefault(c.name, []).append((time.process_time() - c0) / n * 1e6)
                    wall.setdefault(c.name, []).append(time.perf_counter() - w0)
        finally:
            for _, _, close in pairs:
                await close()
        return [
            _row(c.name, "conc64", latency, n, cpu[c.name], wall[c.name], n) for c, _, _ in pairs
        ]

    return asyncio.run(main())


async def drive(call: Callable[[], Awaitable[Any]], n: int) -> None:
    """``n`` calls with ``INFLIGHT`` in flight: a gather of workers sharing a counter."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(min(INFLIGHT, n))))


def _row(
    name: str,
    mode: str,
    latency: float,
    n: int,
    cpu: list[float],
    wall: list[float],
    calls_per_wall: int,
) -> Row:
    wall_med = statistics.median(wall)
    return Row(
        contender=name,
        mode=mode,
        latency=latency,
        n=n,
        cpu_us=statistics.median(cpu),
        cpu_us_min=min(cpu),
        wall_ms=wall_med / calls_per_wall * 1e3,
        calls_per_s=calls_per_wall / wall_med if wall_med else 0.0,
        samples_cpu_us=[round(x) for x in cpu],
    )


# -- start-up ----------------------------------------------------------------------------------

_NO_CLICK = "import sys; sys.modules['click'] = None; "  # `import click` raises ImportError
IMPORT_CASES = [
    ("python -c pass", "pass"),
    ("import fieldwise", "import fieldwise"),
    ("import fieldwise; fieldwise.Extractor", "import fieldwise; fieldwise.Extractor"),
    (
        "  same, click blocked (no httpx._main)",
        _NO_CLICK + "import fieldwise; fieldwise.Extractor",
    ),
    ("import httpx", "import httpx"),
    ("  same, click blocked (no httpx._main)", _NO_CLICK + "import httpx"),
]
IMPORTTIME_MODULES = [
    "fieldwise.extractor",
    "fieldwise.loop",
    "fieldwise.schema",
    "fieldwise.transport",
    "fieldwise.cache",
    "fieldwise.parsing",
    "fieldwise.batch",
    "pydantic",
    "httpx",
    "httpx._main",
    "click",
    "rich.console",
    "pygments.lexers",
    "diskcache",
    "json_repair",
    "pluggy",
]


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_imports(runs: int) -> list[dict[str, Any]]:
    """Fresh-interpreter wall and CPU seconds (medians of ``runs``), plus ``-X importtime``."""
    out = []
    # .pyc files may be written (any value of PYTHONDONTWRITEBYTECODE would forbid it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for label, code in IMPORT_CASES:
        subprocess.run([sys.executable, "-c", code], check=True, env=env)  # warm .pyc/page cache
        wall, cpu = [], []
        for _ in range(runs):
            c0, w0 = _child_cpu(), time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            wall.append(time.perf_counter() - w0)
            cpu.append(_child_cpu() - c0)
        out.append(
            {
                "case": label.strip(),
                "label": label,
                "code": code,
                "wall_s": statistics.median(wall),
                "cpu_s": statistics.median(cpu),
                "importtime_ms": importtime(code) if "fieldwise" in code else {},
            }
        )
    return out


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def importtime(code: str, runs: int = 2) -> dict[str, float]:
    """Cumulative ms per module of interest (median of ``runs``), from ``-X importtime``."""
    seen: dict[str, list[float]] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        total = 0.0
        for match in _IMPORTTIME.finditer(done.stderr):
            total += int(match.group(1)) / 1e3
            name = match.group(4)
            if name in IMPORTTIME_MODULES:
                seen.setdefault(name, []).append(int(match.group(2)) / 1e3)
        seen.setdefault("(all imports)", []).append(total)
    return {name: round(statistics.median(v), 1) for name, v in seen.items()}


# -- profiling and breakdown -------------------------------------------------------------------


def profile_calls(url: str, n: int, top: int = 25) -> str:
    """cProfile (CPU-time clock) of ``n`` sequential fieldwise and floor calls, and of ``n``
    concurrent ones (64 in flight) of each, sorted by own time."""
    chosen = [c for c in CONTENDERS if c.name in ("fieldwise", "floor")]
    out = []

    def dump(profiler: cProfile.Profile, title: str) -> None:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(top)
        out.append(f"=== cProfile, CPU clock: {title} ===")
        out.append(buffer.getvalue())

    for c in chosen:
        assert c.sync is not None
        call, close = c.sync(url)
        for _ in range(30):
            call()
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(n):
            call()
        profiler.disable()
        close()
        dump(profiler, f"{c.name}, {n} sequential calls")

    async def concurrent(c: Contender) -> cProfile.Profile:
        assert c.async_ is not None
        call, close = c.async_(url)
        await drive(call, 2 * INFLIGHT)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        await drive(call, n)
        profiler.disable()
        await close()
        return profiler

    for c in chosen:
        dump(asyncio.run(concurrent(c)), f"{c.name}, {n} calls, {INFLIGHT} in flight")
    return "\n".join(out)


def breakdown(url: str) -> dict[str, float | None]:
    """Microseconds per call of fieldwise's per-call stages, each timed alone (best of 7).

    The first two lines are the cleanest comparison: everything the floor and fieldwise do
    per call except the HTTP exchange itself (which is the same httpx code for both).

    Uses internals (``_prepare``, ``_flow``, ``Transport``) that may change: a stage that no
    longer runs is reported as None rather than failing the benchmark.
    """
    import httpx

    from fieldwise import Extractor
    from fieldwise.answers import decode_answer
    from fieldwise.cache import request_key
    from fieldwise.result import Usage
    from fieldwise.schema import compile_schema
    from fieldwise.transport import encode_body, parse_response

    ex = Extractor(model=MODEL, base_url=url, api_key="x", cache=False, network_retries=0)
    ex.run(TEXT, Invoice)
    client = httpx.Client(headers={"Authorization": "Bearer x"})
    chat = f"{url}/chat/completions"
    compiled = compile_schema(Invoice)
    call = ex._prepare(TEXT, Invoice, None, None, None)
    body = call.body
    content = encode_body(body)
    raw = client.post(chat, content=content).content
    payload = json.loads(raw)
    response = parse_response(payload, url=chat, model=MODEL)
    text = payload["choices"][0]["message"]["content"]
    floor_client = floor_sync(url)
    schema_text = json.dumps(compiled.response_format, separators=(",", ":"))

    def flow_no_io() -> None:
        flow = ex._flow(call)
        next(flow)
        with contextlib.suppress(StopIteration):
            flow.send(response)  # type: ignore[arg-type]

    def spliced_body() -> bytes:  # the response_format serialised once, spliced in
        rest = {k: v for k, v in body.items() if k != "response_format"}
        head = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
        return f'{head[:-1]},"response_format":{schema_text}}}'.encode()

    floor_body_dict = floor_body()

    def floor_no_http() -> Invoice:  # what the floor does besides HTTP
        json.dumps(floor_body_dict, ensure_ascii=False, separators=(",", ":")).encode()
        answer = json.loads(raw)["choices"][0]["message"]["content"]
        return Invoice.model_validate_json(answer)

    stub = Extractor(model=MODEL, base_url=url, api_key="x", cache=False, network_retries=0)
    try:  # the same Extractor, its HTTP client replaced by one that returns the recorded bytes
        stub.run(TEXT, Invoice)
        clients: list[Any] = stub._transport_for_use()._shards.clients
        clients[0] = _CannedClient(raw)
    except Exception as exc:
        print(f"breakdown: cannot stub fieldwise's HTTP client: {exc!r}", file=sys.stderr)

    stages: dict[str, Callable[[], Any]] = {
        "floor, HTTP stubbed (dumps, loads, validate)": floor_no_http,
        "fieldwise run(), HTTP stubbed": lambda: stub.run(TEXT, Invoice),
        "floor call end to end": floor_client[0],
        "fieldwise run() end to end": lambda: ex.run(TEXT, Invoice),
        "  _prepare (messages, body, cache key)": lambda: ex._prepare(
            TEXT, Invoice, None, None, None
        ),
        "    request_key (json.dumps + sha256)": lambda: request_key(body, url, "f" * 64),
        "    compile_schema (cached lookup)": lambda: compile_schema(Invoice),
        "  encode_body (json.dumps, whole body)": lambda: encode_body(body),
        "    same, response_format pre-serialised": spliced_body,
        "  httpx post + read (content=bytes)": lambda: client.post(chat, content=content).content,
        "  json.loads(response)": lambda: json.loads(raw),
        "  parse_response": lambda: parse_response(payload, url=chat, model=MODEL),
        "  _flow + loop (usage, cost, decode, Result)": flow_no_io,
        "    Usage.from_response": lambda: Usage.from_response(payload.get("usage")),
        "    decode_answer (validate_json)": lambda: decode_answer(compiled, text),
        "    Invoice.model_validate_json (floor)": lambda: Invoice.model_validate_json(text),
    }
    out: dict[str, float | None] = {}
    for name, fn in stages.items():
        number = 100 if "end to end" in name or "post" in name else 1000
        try:
            best = min(timeit.repeat(fn, timer=time.process_time, number=number, repeat=7))
        except Exception as exc:
            print(f"breakdown: {name.strip()} failed: {exc!r}", file=sys.stderr)
            out[name] = None
            continue
        out[name] = round(best / number * 1e6, 2)
    floor_client[1]()
    client.close()
    ex.close()
    return out


class _CannedResponse:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, content: bytes) -> None:
        self.content = content


class _CannedClient:
    """Stands in for fieldwise's httpx client: every request gets the same recorded answer."""

    def __init__(self, content: bytes) -> None:
        self.response = _CannedResponse(content)

    def request(self, method: str, url: str, **kwargs: Any) -> _CannedResponse:
        return self.response

    def close(self) -> None:
        pass


# -- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("fieldwise", "httpx", "httpcore", "pydantic", "openai", "instructor"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
        "versions": versions,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(rows: list[Row], imports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The brief's targets, each with its measured value and PASS/FAIL (never asserted)."""
    cpu = {(r.contender, r.mode, r.latency): r.cpu_us for r in rows}
    out: list[dict[str, Any]] = []

    def add(target: str, value: str, ok: bool) -> None:
        out.append({"target": target, "value": value, "ok": ok})

    for _, mode, lat in sorted(k for k in cpu if k[0] == "fieldwise"):
        fw = cpu["fieldwise", mode, lat]
        floor = cpu.get(("floor", mode, lat))
        instructor = cpu.get(("instructor", mode, lat))
        where = f"{mode} @{lat * 1e3:.0f}ms"
        if floor:
            add(f"fieldwise <= 1.3x floor CPU ({where})", f"{fw / floor:.2f}x", fw / floor <= 1.3)
        if instructor:
            ratio = instructor / fw
            add(f"fieldwise >= 3x below instructor ({where})", f"{ratio:.2f}x", ratio >= 3)
    for r in rows:
        if r.contender == "fw-cache":
            add("cache hit <= 100 us CPU", f"{r.cpu_us:.0f} us", r.cpu_us <= 100)
    for entry in imports:
        if entry["case"] == "import fieldwise":
            wall = entry["wall_s"]
            add("import fieldwise <= 0.3 s (wall)", f"{wall:.3f} s", wall <= 0.3)
    return out


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"fieldwise overhead benchmark  {m['date']}")
    print(f"  {m['nproc']} CPU(s), {m['cpu']}, Python {m['python']}, {m['platform']}")
    print("  " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    load0, load1 = m["loadavg_start"][0], report["loadavg_end"][0]
    print(f"  load average (1 min) at start {load0:.2f}, at end {load1:.2f}")
    print()
    rows = [Row(**r) for r in report["rows"]]
    floors = {(r.mode, r.latency): r.cpu_us for r in rows if r.contender == "floor"}
    floors2 = {(r.mode, r.latency): r.cpu_us for r in rows if r.contender == "floor-x2"}
    header = (
        f"{'contender':<11}{'pass':<14}{'n':>5}{'CPU us/call':>12}{'(best)':>8}{'x floor':>8}"
        f"{'x flr-x2':>9}{'wall ms/call':>13}{'calls/s':>9}  note"
    )
    print(header)
    print("-" * (len(header) + 24))
    last = None
    for r in rows:
        where = f"{r.mode} @{r.latency * 1e3:.0f}ms"
        if last is not None and where != last:
            print()
        last = where
        floor, floor2 = floors.get((r.mode, r.latency)), floors2.get((r.mode, r.latency))
        ratio = f"{r.cpu_us / floor:.2f}" if floor else "-"
        ratio2 = f"{r.cpu_us / floor2:.2f}" if floor2 else "-"
        note = ""
        if r.mode == "conc64" and r.latency > 0:
            ideal = INFLIGHT / r.latency
            note = f"{r.calls_per_s / ideal:.0%} of the ideal {ideal:.0f}/s"
        print(
            f"{r.contender:<11}{where:<14}{r.n:>5}{r.cpu_us:>12.0f}{r.cpu_us_min:>8.0f}{ratio:>8}"
            f"{ratio2:>9}{r.wall_ms:>13.3f}{r.calls_per_s:>9.0f}  {note}"
        )
    print()
    print("CPU = this process's CPU time per call (median of the repeats; best repeat in")
    print("parentheses). conc64 wall ms/call = the pass's wall time / n = 1000 / calls per s.")
    print("floor = one httpx client, whose httpcore 1.0 pool rescans every connection on each")
    print("request (quadratic in connections): at 64 in flight, floor-x2 (httpx2) is the floor.")
    print("contenders: " + "; ".join(f"{c.name} = {c.label}" for c in CONTENDERS))
    print()
    print(f"start-up, fresh interpreter, median of {report['import_runs']} runs")
    print(f"{'command':<48}{'wall s':>9}{'CPU s':>9}")
    for entry in report["imports"]:
        print(f"{entry['label']:<48}{entry['wall_s']:>9.3f}{entry['cpu_s']:>9.3f}")
    print()
    for entry in report["imports"]:
        if entry["importtime_ms"]:
            print(f"-X importtime, cumulative ms: {entry['code']}")
            parts = [f"{k} {v:.0f}" for k, v in entry["importtime_ms"].items()]
            for i in range(0, len(parts), 6):
                print("    " + ", ".join(parts[i : i + 6]))
    print()
    print("targets")
    for t in report["targets"]:
        print(f"  {verdict(t['ok'])}  {t['target']:<50} {t['value']}")
    if report.get("breakdown"):
        print()
        print("fieldwise per-stage cost (CPU, best of 7, us/call)")
        for name, us in report["breakdown"].items():
            print(f"  {name:<48}{'n/a' if us is None else f'{us:.1f}':>9}")
    if report.get("profile"):
        print()
        print(report["profile"])


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=300, help="sequential calls per measurement")
    parser.add_argument("--n-conc", type=int, default=320, help="concurrent calls per pass")
    parser.add_argument("--repeats", type=int, default=3, help="sequential measurements (median)")
    parser.add_argument("--conc-repeats", type=int, default=3, help="concurrent measurements")
    parser.add_argument("--warmup", type=int, default=30, help="sequential warm-up calls")
    parser.add_argument("--latency", type=float, default=0.0, help="server latency, CPU passes")
    parser.add_argument("--conc-latency", type=float, default=0.05, help="throughput pass")
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated contender names")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--what-if", action="store_true", help="add the httpx2 contenders")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--profile", action="store_true", help="append cProfile of fieldwise")
    parser.add_argument("--breakdown", action="store_true", help="fieldwise per-stage costs")
    args = parser.parse_args(argv)

    names = set(args.only.split(",")) if args.only else None
    chosen = [
        c for c in CONTENDERS if (c.name in names if names else not c.what_if or args.what_if)
    ]
    report: dict[str, Any] = {"machine": machine(), "latency": args.latency}
    rows: list[Row] = []
    ref: list[dict[str, Any]] = []
    started = time.perf_counter()
    with fake_server(args.latency) as url, fake_server(args.conc_latency) as slow_url:
        passes: list[Callable[[], list[Row]]] = [
            lambda: sync_pass(chosen, url, args.latency, args.n, args.repeats, args.warmup, ref),
            lambda: async_pass(chosen, url, args.latency, args.n_conc, args.conc_repeats, ref),
            lambda: async_pass(
                chosen, slow_url, args.conc_latency, args.n_conc, args.conc_repeats, ref
            ),
        ]
        for run_pass in passes:
            for row in run_pass():
                rows.append(row)
                _progress(row)
        if args.breakdown:
            report["breakdown"] = breakdown(url)
        if args.profile:
            report["profile"] = profile_calls(url, args.n)
    imports = [] if args.skip_imports else measure_imports(args.import_runs)
    report.update(
        rows=[asdict(r) for r in rows],
        imports=imports,
        import_runs=args.import_runs,
        targets=targets(rows, imports),
        loadavg_end=os.getloadavg(),
        runtime_s=round(time.perf_counter() - started, 1),
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
        print(f"\n(total {report['runtime_s']} s)")
    return 0


def _progress(row: Row) -> None:
    print(
        f"  .. {row.contender} {row.mode} @{row.latency * 1e3:.0f}ms: "
        f"{row.cpu_us:.0f} us CPU/call {row.samples_cpu_us}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
