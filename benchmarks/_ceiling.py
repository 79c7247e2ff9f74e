"""What this machine allows right now: a bare aiohttp client against the same fake server.

The throughput targets are shares of concurrency / latency, but the fake server, the client
and the code under test share two vCPUs whose speed varies from hour to hour on a shared
host. So each benchmark also prints this ceiling, measured in the same run: the rate of a
client that only posts the same request body and reads the answer, with nothing of
fieldwise in it. A result is read against both numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any


def ceiling(url: str, body: dict[str, Any], *, concurrency: int, requests: int) -> float:
    """Requests per second of ``requests`` bare POSTs of ``body`` to the fake's
    ``/chat/completions`` with ``concurrency`` in flight (after a warm-up round)."""
    return asyncio.run(_ceiling(url, json.dumps(body).encode(), concurrency, requests))


async def _ceiling(url: str, payload: bytes, concurrency: int, requests: int) -> float:
    import aiohttp

    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(count: int) -> None:
            for _ in range(count):
                async with session.post(f"{url}/chat/completions", data=payload) as response:
                    await response.read()

        await asyncio.gather(*(worker(1) for _ in range(concurrency)))  # connections up
        share, extra = divmod(requests, concurrency)
        started = time.perf_counter()
        await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))
        return requests / (time.perf_counter() - started)
