"""Readiness: is the model endpoint reachable, and does it accept the service's key?

Why cached: orchestrators poll ``/readyz`` every few seconds from several places; each
poll must not become a call to the provider. One probe runs at a time and its outcome is
reused for ``ttl`` seconds.
"""

from __future__ import annotations

import logging
import math
import time

import anyio
import anyio.to_thread

from ..exceptions import FieldwiseError
from ..extractor import Extractor
from .errors import map_exception

log = logging.getLogger("fieldwise.service")


class ReadinessProbe:
    """``GET {base_url}/models`` through the extractor's own transport (same key, same
    headers, same proxy settings as the extraction calls)."""

    def __init__(self, extractor: Extractor, *, ttl: float = 5.0, timeout: float = 5.0) -> None:
        self.extractor = extractor
        self.ttl = ttl
        self.timeout = timeout
        self._checked_at = -math.inf
        self._problem: str | None = "not checked yet"
        self._lock: anyio.Lock | None = None

    def _fresh(self) -> bool:
        return time.monotonic() - self._checked_at < self.ttl

    async def problem(self) -> str | None:
        """``None`` when ready, else why not (a message safe to show: secrets redacted)."""
        if self._fresh():
            return self._problem
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if not self._fresh():
                self._problem = await self._probe()
                self._checked_at = time.monotonic()
        return self._problem

    async def _probe(self) -> str | None:
        """Why not ready, or ``None``. Any failure is "not ready" (503), never a 500: a probe
        that cannot even be made (a malformed base URL, a transport bug) is an endpoint the
        service cannot use either. Only a ``FieldwiseError``'s message is shown, as it is
        redacted, and worded as the extract routes word it (without the endpoint's address);
        anything else is logged and named by its type."""
        with anyio.move_on_after(self.timeout) as scope:
            try:
                await self.extractor.acheck()
            except FieldwiseError as exc:
                return f"{type(exc).__name__}: {map_exception(exc).message}"
            except Exception as exc:
                log.error("the readiness probe failed", exc_info=exc)
                return f"The readiness probe failed ({type(exc).__name__}); see the service log."
        if scope.cancelled_caught:
            return f"The model endpoint did not answer within {self.timeout:g} s."
        return None
