"""What a call cost, in USD.

In order: the ``usage.cost`` the endpoint sent (OpenRouter always does); a price table the
user gave; OpenRouter's ``/models`` prices (fetched once when a cost is missing, kept in
the cache directory for a day); else
``None`` — an unknown cost is never guessed as zero. A request whose size is unknown (no
``usage``) costs ``None`` too, except at a price of zero (a local model's): 0.0.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .result import Usage, money

#: USD per million tokens (prompt, completion), for models whose price is well known.
BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "qwen/qwen3.5-flash-02-23": (0.065, 0.26),
}

Prices = Mapping[str, tuple[float, float]]


class PriceBook:
    """Per-model prices, USD per million tokens; OpenRouter's list loaded lazily."""

    def __init__(
        self,
        prices: Prices | None = None,
        fetch_models: Callable[[], Any] | None = None,
        store: Callable[[], Any] | None = None,
    ) -> None:
        self._prices: dict[str, tuple[float, float]] = {**BUILTIN_PRICES, **(prices or {})}
        self._fetch_models = fetch_models
        self._store = store
        self._fetched = False
        self._lock = threading.Lock()

    def know(self, model: str, price: tuple[float, float]) -> None:
        """A price from where the model is served (a backend's), over any table's."""
        self._prices[model] = price

    def needs_remote(self, model: str, usage: Mapping[str, Any] | None) -> bool:
        """Whether pricing ``usage`` would fetch the remote list now (a blocking call: async
        code runs ``load_remote`` in a thread first, so the event loop never waits on it)."""
        return (
            bool(usage)
            and not self._fetched
            and self._fetch_models is not None
            and money(usage.get("cost") if usage else None) is None
            and model not in self._prices
        )

    def load_remote(self) -> None:
        """Fetch the remote price list now, if not done yet (see ``needs_remote``)."""
        self._load_remote()

    def _load_remote(self) -> None:
        with self._lock:
            if self._fetched or self._fetch_models is None:
                return
            self._fetched = True
            try:
                store = self._store() if self._store is not None else None
                table = store.get_meta("openrouter-prices") if store is not None else None
            except Exception:  # an unusable cache directory: fetch, just don't keep it
                store, table = None, None
            if table is None:
                try:
                    listing = self._fetch_models()
                except Exception:  # prices are a nicety: never fail an extraction for them
                    return
                table = _price_table(listing)
                if store is not None:
                    with contextlib.suppress(Exception):  # keeping it is only an optimisation
                        store.set_meta("openrouter-prices", table, expire=86400)
            for model, price in table.items():
                self._prices.setdefault(model, price)

    def cost(self, model: str, usage: Mapping[str, Any] | None) -> float | None:
        if not usage:  # the size is unknown (a stream left before its usage chunk)...
            # ...and so is the cost, unless every token is free (a local model's (0, 0)):
            # then any size costs 0. Only a price at hand: no fetch for a request this size.
            return 0.0 if self._prices.get(model) == (0.0, 0.0) else None
        sent = money(usage.get("cost"))
        if sent is not None:
            return sent
        price = self._prices.get(model)
        if price is None:
            self._load_remote()
            price = self._prices.get(model)
        if price is None:
            return None
        counted = Usage.from_response(dict(usage))
        prompt, completion = counted.prompt_tokens, counted.completion_tokens
        return (prompt * price[0] + completion * price[1]) / 1e6


def _price_table(listing: Any) -> dict[str, tuple[float, float]]:
    """USD per million tokens by model id, from OpenRouter's ``/models`` (per-token strings);
    entries that are not well-formed are skipped."""
    table: dict[str, tuple[float, float]] = {}
    entries = listing.get("data") if isinstance(listing, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        pricing = entry.get("pricing")
        if not isinstance(pricing, dict):
            continue
        prompt, completion = money(pricing.get("prompt")), money(pricing.get("completion"))
        if prompt is not None and completion is not None:
            table[entry["id"]] = (prompt * 1e6, completion * 1e6)
    return table
