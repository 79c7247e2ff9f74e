"""Spacing requests to an endpoint: at most ``rate`` per second, and a shared pause after
a 429 so that every worker backs off together, not just the one that was refused."""

from __future__ import annotations

import asyncio
import threading
import time

from .exceptions import ConfigurationError


class RateLimiter:
    """Evenly spaced request slots; ``pause(seconds)`` holds all slots back."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ConfigurationError("rate_limit= must be > 0 requests per second.")
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take the next slot; return how long to wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)

    async def wait(self) -> None:
        delay = self._reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def wait_sync(self) -> None:
        delay = self._reserve()
        if delay > 0:
            time.sleep(delay)
