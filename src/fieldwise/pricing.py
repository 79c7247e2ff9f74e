"""What a call cost, in USD.

In order: the ``usage.cost`` the endpoint sent (OpenRouter always does); a price table the
user gave; OpenRouter's ``/models`` prices (fetched once when a cost is missing, kept in
the cache directory for a day); else
``None`` — an unknown cost is never guessed as zero.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

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

    def _load_remote(self) -> None:
        with self._lock:
            if self._fetched or self._fetch_models is None:
                return
            self._fetched = True
            store = self._store() if self._store is not None else None
            table = store.get_meta("openrouter-prices") if store is not None else None
            if table is None:
                try:
                    listing = self._fetch_models()
                except Exception:  # prices are a nicety: never fail an extraction for them
                    return
                table = {}
                for entry in (listing or {}).get("data", []):
                    pricing = entry.get("pricing") or {}
                    try:
                        prompt = float(pricing.get("prompt", "nan")) * 1e6
                        completion = float(pricing.get("completion", "nan")) * 1e6
                    except (TypeError, ValueError):
                        continue
                    if prompt == prompt and completion == completion:  # not NaN
                        table[entry["id"]] = (prompt, completion)
                if store is not None:
                    store.set_meta("openrouter-prices", table, expire=86400)
            for model, price in table.items():
                self._prices.setdefault(model, price)

    def cost(self, model: str, usage: Mapping[str, Any] | None) -> float | None:
        if usage and usage.get("cost") is not None:
            return float(usage["cost"])
        if not usage:
            return None
        price = self._prices.get(model)
        if price is None:
            self._load_remote()
            price = self._prices.get(model)
        if price is None:
            return None
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        return (prompt * price[0] + completion * price[1]) / 1e6
