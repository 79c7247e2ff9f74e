"""The cache's write-behind: answers are readable at once and reach the disk without close()."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from fieldwise.cache import CachedAnswer, ResultCache


def answer(n: int) -> CachedAnswer:
    return CachedAnswer(f'{{"n": {n}}}', {"total_tokens": n}, 0.001 * n, "m", "p", (), 1)


def read_in_another_process(directory: Path, keys: list[str]) -> list[str | None]:
    """What a fresh process finds on disk: it shares nothing with this one's queue."""
    code = textwrap.dedent(
        f"""
        from fieldwise.cache import ResultCache
        cache = ResultCache({str(directory)!r})
        for key in {keys!r}:
            hit = cache.get(key)
            print(hit.raw if hit else None)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [None if line == "None" else line for line in out.stdout.splitlines()]


def test_a_queued_answer_is_visible_to_every_cache_of_the_directory(tmp_path: Path) -> None:
    first, second = ResultCache(tmp_path), ResultCache(tmp_path)
    first.set("k1", answer(1))
    assert second.get("k1") == answer(1)  # queued or committed, never a miss
    first.close()
    assert read_in_another_process(tmp_path, ["k1", "nope"]) == ['{"n": 1}', None]


def test_answers_reach_the_disk_without_close(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from fieldwise.cache import CachedAnswer, ResultCache
        cache = ResultCache({str(tmp_path)!r})
        for n in range(500):
            cache.set(f"k{{n}}", CachedAnswer(str(n), {{}}, None, None, None, (), 1))
        # no close(): the interpreter's exit commits what is still queued
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    keys = [f"k{n}" for n in (0, 250, 499)]
    assert read_in_another_process(tmp_path, keys) == ["0", "250", "499"]


def test_many_threads_writing_and_reading(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    missing: list[str] = []

    def work(t: int) -> None:
        for n in range(200):
            key = f"t{t}-{n}"
            cache.set(key, answer(n))
            if cache.get(key) != answer(n):
                missing.append(key)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert missing == []
    assert cache.stats()["entries"] == 800
    cache.close()
    assert read_in_another_process(tmp_path, ["t3-199"]) == ['{"n": 199}']
