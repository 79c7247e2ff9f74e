"""The disk cache of validated answers (diskcache).

The key is a hash of the canonical request body — model, messages, response_format,
temperature, top_p, seed, max_tokens, reasoning, routing — plus the endpoint URL and the
schema compiler's version, so anything that can change the answer changes the key and a
different ``seed`` is a different sample. Only validated answers are stored. Neither the
API key nor any header is ever part of a key or a value. The directory is private (0700).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import diskcache

CacheMode = bool | Literal["refresh", "read_only"]
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    configured = os.environ.get("FIELDWISE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("fieldwise"))


def request_key(body: dict[str, Any], base_url: str, schema_fingerprint: str) -> str:
    """Stable key of a request. ``response_format``/``tools`` enter through the schema's
    fingerprint (hashing the schema text on every call would cost more than the rest)."""
    canonical = {k: v for k, v in body.items() if k not in ("response_format", "tools", "stream")}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256()
    digest.update(f"{CACHE_FORMAT}\0{base_url}\0{schema_fingerprint}\0".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))  # hashed, never sent
    return digest.hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    raw: str
    usage: dict[str, Any]
    cost: float | None
    model: str | None
    provider: str | None
    repairs: tuple[str, ...]
    attempts: int


class ResultCache:
    """A thin, typed shell over one ``diskcache.Cache`` directory."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**31)

    def get(self, key: str) -> CachedAnswer | None:
        value = self._cache.get(key)
        if not isinstance(value, tuple) or len(value) != 7:
            return None
        return CachedAnswer(*value)

    def set(self, key: str, answer: CachedAnswer) -> None:
        self._cache.set(
            key,
            (
                answer.raw,
                answer.usage,
                answer.cost,
                answer.model,
                answer.provider,
                tuple(answer.repairs),
                answer.attempts,
            ),
        )

    def get_meta(self, name: str) -> Any:
        """Side data kept next to the answers (e.g. a price list), by name."""
        return self._cache.get(f"meta:{name}")

    def set_meta(self, name: str, value: Any, *, expire: float | None = None) -> None:
        self._cache.set(f"meta:{name}", value, expire=expire)

    def stats(self) -> dict[str, Any]:
        saved = 0.0
        for key in self._cache.iterkeys():
            if str(key).startswith("meta:"):
                continue
            value = self._cache.get(key)
            if isinstance(value, tuple) and len(value) == 7 and value[2]:
                saved += float(value[2])
        return {
            "directory": str(self.directory),
            "entries": sum(1 for k in self._cache.iterkeys() if not str(k).startswith("meta:")),
            "size_bytes": self._cache.volume(),
            "cost_saved_per_rerun": saved,
        }

    def clear(self) -> int:
        return int(self._cache.clear())

    def close(self) -> None:
        self._cache.close()
