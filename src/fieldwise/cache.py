"""The disk cache of validated answers (diskcache).

The key is a hash of the canonical request body — model, messages, response_format,
temperature, top_p, seed, max_tokens, reasoning, routing — plus the endpoint URL and the
schema compiler's version, so anything that can change the answer changes the key and a
different ``seed`` is a different sample. Only validated answers are stored. Neither the
API key nor any header is ever part of a key or a value. The directory is private (0700).

Writes inside an event loop are batched (``_Writer``): an answer is visible to every
``ResultCache`` of this process at once, and committed to disk about 10 ms later by the
directory's commit thread, in one SQLite transaction with whatever else arrived meanwhile.
Measured on the development machine (diskcache 5.6, 5,000 entries): a lone ``set`` costs
~78 µs of CPU, ~19 µs inside a transaction of 64. ``close()``, the end of a batch, a loop's
shutdown and interpreter exit commit what is still queued.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import diskcache

CacheMode = bool | Literal["refresh", "read_only"]
CACHE_FORMAT = 1
SIZE_LIMIT = 2**31
_CULL_EVERY = 1000  # writes between evictions (diskcache would check on every write)
_GATHER = 0.01  # seconds a queued answer waits, so that answers share a transaction
_MAX_QUEUED = 256  # more queued than this: commit now
_IDLE = 5.0  # seconds without writes after which the commit thread stops

logger = logging.getLogger("fieldwise.cache")


def default_cache_dir() -> Path:
    configured = os.environ.get("FIELDWISE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("fieldwise"))


def request_key(body: dict[str, Any], base_url: str, schema_fingerprint: str) -> str:
    """Stable key of a request. ``response_format``/``tools`` enter through the schema's
    fingerprint (hashing the schema text on every call would cost more than the rest)."""
    canonical = {k: v for k, v in body.items() if k not in _NOT_KEYED}
    text = _CANONICAL.encode(canonical)
    keyed = f"{CACHE_FORMAT}\0{base_url}\0{schema_fingerprint}\0{text}"
    return hashlib.sha256(keyed.encode("utf-8", "surrogatepass")).hexdigest()  # never sent


# One encoder for every key (json.dumps with options builds a new one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_NOT_KEYED = frozenset(("response_format", "tools", "stream"))


@dataclass(slots=True)  # made per call: a frozen __init__ costs ~1 µs more
class CachedAnswer:
    raw: str
    usage: dict[str, Any]
    cost: float | None
    model: str | None
    provider: str | None
    repairs: tuple[str, ...]
    attempts: int


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        logger.warning("%s", text)


class _Writer:
    """Queues answers for one directory and commits them in batches, off the event loop.

    In an event loop (batches, the service, ``arun``) a write is queued and the directory's
    commit thread is woken; it waits ``_GATHER`` seconds (less once ``_MAX_QUEUED`` are
    waiting) so that answers arriving together share one transaction, then commits them.
    Outside a loop (sequential ``run``) a write commits at once, in the caller's thread.
    Queued answers are read by every ``ResultCache`` of the directory in this process;
    ``flush`` (on close, at a batch's end, when a loop shuts down and at interpreter exit)
    commits what is queued now, in the caller's thread. The size limit is enforced on the
    first commit, every ``_CULL_EVERY`` writes and when the last ``ResultCache`` of the
    directory closes (diskcache's own check on every write is switched off with
    ``cull_limit=0``).

    Why a thread: committing on the loop blocked it for ~50 µs an answer, and now and then
    for several milliseconds (SQLite's checkpoint writes back and syncs its log), while
    every request in flight waited; measured at 64 in flight against a 50 ms model, 6 % of
    the loop's time. SQLite works without the interpreter lock, so the commit overlaps
    the loop's work instead. The thread stops after ``_IDLE`` seconds without writes.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.users = 0
        # the directory's one diskcache.Cache in this process: every ResultCache of it
        # reads through this one too (each thread gets its own SQLite connection)
        self.cache = diskcache.Cache(directory, size_limit=SIZE_LIMIT, cull_limit=0)
        self._pending: dict[str, Any] = {}
        self._new_locks()

    def _new_locks(self) -> None:
        self._lock = threading.Lock()
        self._commit = threading.Lock()  # one commit at a time
        self._wake = threading.Event()  # answers are queued
        self._hurry = threading.Event()  # so many are queued that gathering ends now
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._guarded: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()
        self._written = _CULL_EVERY  # so that the first commit culls

    def after_fork(self) -> None:
        """In a forked child: the parent commits what it queued; start clean (the parent's
        commit thread does not exist here)."""
        self._pending = {}
        self._new_locks()

    def pending(self, key: str) -> Any:
        return self._pending.get(key)

    def commit_lock(self) -> threading.Lock:
        return self._commit

    def put(self, key: str, value: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending[key] = value
            if loop is not None and not self._stopping:
                if self._thread is None:
                    self._thread = self._started_thread()
                if self._thread is None:  # no thread to be had: commit here, as before
                    loop = None
                else:
                    if not self._wake.is_set():
                        self._wake.set()
                    if len(self._pending) >= _MAX_QUEUED:
                        self._hurry.set()
        if loop is None or self._stopping:
            self.flush()
            return
        if loop not in self._guarded:
            self._guard(loop)

    def _started_thread(self) -> threading.Thread | None:
        """A running commit thread, or None when the system gives none (a thread limit):
        the answer is then committed at once, never lost to an error in ``set``."""
        thread = threading.Thread(target=self._commits, name="fieldwise-cache-commit", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:
            _warn_once(f"no thread for the cache's commits ({exc}); committing as answers come")
            return None
        return thread

    def _commits(self) -> None:
        """The commit thread: commit what is queued whenever woken; stop when idle."""
        while True:
            # close() sets _stopping before _wake, which this thread may just have cleared
            woken = self._stopping or self._wake.wait(_IDLE)
            with self._lock:
                if self._stopping or not (woken or self._wake.is_set()):
                    self._thread = None
                    break
            self._hurry.wait(_GATHER)  # let answers arriving together share one commit
            with self._lock:  # a put after this sets _wake again
                self._wake.clear()
                self._hurry.clear()
            self.flush()
        with self._commit:  # held while forking: SQLite's own locks must not be mid-close
            self.cache.close()  # this thread's connection

    def _guard(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit what is queued when ``loop`` shuts down: ``asyncio.run(ex.arun(...))``
        returns before the commit thread's next commit, and the answer would be lost to a
        SIGTERM or ``os._exit`` meanwhile. asyncio closes every live async generator as the
        loop shuts down (``shutdown_asyncgens``), so one that commits on closing is the
        hook."""
        guard = _commit_at_loop_end(self)
        self._guarded[loop] = guard
        step = guard.asend(None)  # registers it with the running loop (asyncio's hook)
        with contextlib.suppress(StopIteration):  # it stops at its yield at once
            step.send(None)

    def flush(self, *, cull: bool = False) -> None:
        """Commit everything queued now."""
        with self._commit:
            with self._lock:
                items = list(self._pending.items())
            try:
                if items:
                    with self.cache.transact():
                        _write_many(self.cache, items)
                    self._written += len(items)
                if cull or self._written >= _CULL_EVERY:
                    self._written = 0
                    self.cache.cull()
            except Exception as exc:  # a full or read-only disk: answers were already returned
                logger.warning("could not write %d answer(s) to the cache: %s", len(items), exc)
            with self._lock:
                for key, value in items:
                    if self._pending.get(key) is value:  # not replaced meanwhile
                        del self._pending[key]

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake.set()
        self._hurry.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush(cull=True)
        self.cache.close()


async def _commit_at_loop_end(writer: _Writer) -> AsyncGenerator[None, None]:
    """Waits at its ``yield`` for the loop's end; then commits (see ``_Writer._guard``)."""
    try:
        yield
    finally:
        writer.flush()


_writers: dict[str, _Writer] = {}
_writers_lock = threading.Lock()


def _writer_for(directory: Path) -> _Writer:
    name = str(directory.resolve())
    with _writers_lock:
        writer = _writers.get(name)
        if writer is None:
            writer = _writers[name] = _Writer(name)
        writer.users += 1
        return writer


def _release(writer: _Writer) -> None:
    """One ``ResultCache`` of the directory closed; the last one commits and closes."""
    with _writers_lock:
        writer.users -= 1
        last = writer.users <= 0
        if last and _writers.get(writer.directory) is writer:
            del _writers[writer.directory]
    if last:
        writer.close()
    else:
        writer.flush()


@atexit.register
def _flush_all() -> None:
    for writer in list(_writers.values()):
        writer.flush()


def _before_fork() -> None:
    """No commit may be under way when the process forks: SQLite's lock bookkeeping would be
    copied into the child as held, and the child's next write would wait for it forever."""
    _writers_lock.acquire()
    for writer in _writers.values():
        writer.commit_lock().acquire()


def _after_fork_in_parent() -> None:
    for writer in _writers.values():
        writer.commit_lock().release()
    _writers_lock.release()


def _after_fork_in_child() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    for writer in _writers.values():
        writer.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def _answer(value: Any) -> CachedAnswer | None:
    if not isinstance(value, tuple) or len(value) != 7:
        return None
    return CachedAnswer(*value)


_READ_MANY_KEYS = 500  # keys per query (old SQLite builds allow 999 parameters)
_READ_MANY = (
    "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND key IN ({}) "
    "AND (expire_time IS NULL OR expire_time > ?)"
)


def _read_many(cache: diskcache.Cache, keys: list[str]) -> dict[str, Any]:
    """``{key: value}`` of the stored ``keys`` (string keys are stored raw by diskcache)."""
    try:
        rows = cache._sql(_READ_MANY.format(",".join("?" * len(keys))), (*keys, time.time()))
        fetch = cache.disk.fetch
        return {key: fetch(mode, filename, value, False) for key, mode, filename, value in rows}
    except (sqlite3.Error, AttributeError, OSError) as exc:
        logger.debug("bulk cache read failed (%s); reading key by key", exc)
        found = ((key, cache.get(key)) for key in keys)
        return {key: value for key, value in found if value is not None}


_EXISTING = "SELECT key FROM Cache WHERE raw = 1 AND key IN ({})"
_INSERT = (
    "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag,"
    " size, mode, filename, value) VALUES "
)
_INSERT_ROW = "(?, 1, ?, NULL, ?, 0, NULL, ?, ?, ?, ?)"
_INSERT_ROWS = 128  # rows per statement: 7 parameters each, under old SQLite's 999


def _write_many(cache: diskcache.Cache, items: list[tuple[str, Any]]) -> None:
    """``set`` for each item, inside the caller's transaction, with one query to find the
    keys already stored and one multi-row ``INSERT`` for the rest.

    Why: the writer commits the answers of a busy batch or service together, and
    diskcache's ``set`` costs ~17 µs of CPU a key (a SELECT, an INSERT and the bookkeeping
    around them, in Python); this costs ~10. One statement, not ``executemany``, because
    the sqlite3 module lets go of the interpreter lock for every row it steps: the commit
    thread then has to win the lock back from the event loop once per answer, each time a
    switch between threads (measured in-process at 64 in flight: a third fewer futex
    calls, and ~10 % less CPU a request). Values are encoded by diskcache's public
    ``Disk.store`` (files for large ones, as ``set`` makes them); diskcache's own triggers
    keep its count and size. A key already stored goes through ``set``, which cleans up a
    file the old value had; should anything else fail (another diskcache layout), every
    item goes through ``set``.
    """
    try:
        stored: set[str] = set()
        keys = [key for key, _ in items]
        for start in range(0, len(keys), _READ_MANY_KEYS):
            chunk = keys[start : start + _READ_MANY_KEYS]
            rows = cache._sql(_EXISTING.format(",".join("?" * len(chunk))), chunk)
            stored.update(key for (key,) in rows)
        now = time.time()
        rows_to_insert: list[tuple[Any, ...]] = []
        for key, value in items:
            if key in stored:
                cache.set(key, value)
                continue
            size, mode, filename, db_value = cache.disk.store(value, False, key=key)
            rows_to_insert.append((key, now, now, size, mode, filename, db_value))
        for start in range(0, len(rows_to_insert), _INSERT_ROWS):
            chunk_rows = rows_to_insert[start : start + _INSERT_ROWS]
            statement = _INSERT + ",".join([_INSERT_ROW] * len(chunk_rows))
            cache._con.execute(statement, [value for row in chunk_rows for value in row])
    except (sqlite3.Error, AttributeError, TypeError) as exc:
        logger.debug("bulk cache write failed (%s); writing key by key", exc)
        for key, value in items:
            cache.set(key, value)


class CacheUnavailable(Exception):
    """The cache directory cannot be used (a file in its place, no permission, a damaged
    database); the message says which directory and why."""


class ResultCache:
    """A thin, typed shell over one ``diskcache.Cache`` directory.

    Opening raises ``CacheUnavailable`` when the directory cannot be used; once open, a
    read that fails is a miss and a write that fails is dropped, each with a warning: the
    cache only ever saves calls, it never costs an answer.
    """

    def __init__(self, directory: str | Path | None = None, *, create: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        try:
            if create:
                # 0o700 for what this creates (answers may quote private documents); a folder
                # that already exists keeps its permissions: it may be someone's home.
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            elif not self.directory.is_dir():
                raise FileNotFoundError(f"no cache directory at {self.directory}")
            self._writer = _writer_for(self.directory)
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnavailable(
                f"the cache directory {self.directory} cannot be used: {exc}"
            ) from exc
        self._cache = self._writer.cache
        self._closed = False

    def get(self, key: str) -> CachedAnswer | None:
        value = self._writer.pending(key)
        if value is None:
            try:
                value = self._cache.get(key)
            except (OSError, sqlite3.Error) as exc:  # a damaged or vanished database: a miss
                _warn_once(f"reading the cache at {self.directory} failed ({exc}); calling")
                return None
        return _answer(value)

    def get_many(self, keys: Sequence[str]) -> list[CachedAnswer | None]:
        """``get`` for each key, with one database query for all of them.

        Why: a warm batch is bound by its lookups, and diskcache reads one key per call
        (~9 µs each, most of it per-call overhead); one ``SELECT ... IN`` for 64 keys costs
        ~2 µs a key. The query reads diskcache's own table with its own connection and
        decodes values with its public ``Disk.fetch``; should that fail (another diskcache
        layout), each key is read with ``get``.
        """
        values: dict[str, Any] = {}
        unread: list[str] = []
        for key in keys:
            queued = self._writer.pending(key)
            if queued is None:
                unread.append(key)
            else:
                values[key] = queued
        try:
            for start in range(0, len(unread), _READ_MANY_KEYS):
                values.update(_read_many(self._cache, unread[start : start + _READ_MANY_KEYS]))
        except (OSError, sqlite3.Error) as exc:  # as in get: misses, not a failed batch
            _warn_once(f"reading the cache at {self.directory} failed ({exc}); calling")
        return [_answer(values.get(key)) for key in keys]

    def set(self, key: str, answer: CachedAnswer) -> None:
        """Store ``answer``: readable at once; on disk now, or ~10 ms later inside a loop."""
        self._writer.put(
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

    def flush(self) -> None:
        """Commit every queued answer to disk now."""
        self._writer.flush()

    def get_meta(self, name: str) -> Any:
        """Side data kept next to the answers (e.g. a price list), by name."""
        return self._cache.get(f"meta:{name}")

    def set_meta(self, name: str, value: Any, *, expire: float | None = None) -> None:
        self._cache.set(f"meta:{name}", value, expire=expire)

    def stats(self) -> dict[str, Any]:
        self.flush()
        saved, unknown = 0.0, 0
        for key in self._cache.iterkeys():
            if str(key).startswith("meta:"):
                continue
            value = self._cache.get(key)
            if isinstance(value, tuple) and len(value) == 7:
                if value[2] is None:
                    unknown += 1
                else:
                    saved += float(value[2])
        return {
            "directory": str(self.directory),
            "entries": sum(1 for k in self._cache.iterkeys() if not str(k).startswith("meta:")),
            "size_bytes": self._cache.volume(),
            # as every cost here: partly unknown is unknown (None), never the known part
            "cost_saved_per_rerun": None if unknown else saved,
            "entries_with_unknown_cost": unknown,
        }

    def clear(self) -> int:
        """Remove every cached answer (side data such as a price list goes too, but is not
        counted: it is not an answer); the number of answers removed."""
        self.flush()
        answers = self.stats()["entries"]
        self._cache.clear()
        return int(answers)

    def close(self) -> None:
        """Commit queued answers and close this thread's database connection."""
        if not self._closed:
            self._closed = True
            _release(self._writer)
        self._cache.close()
