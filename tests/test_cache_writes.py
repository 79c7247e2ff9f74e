"""The cache's write-behind: answers are readable at once and reach the disk without close()."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import diskcache
import pytest

from fieldwise import cache as cache_module
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


def test_answers_queued_in_a_loop_reach_the_disk_without_close(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import asyncio
        from fieldwise.cache import CachedAnswer, ResultCache
        cache = ResultCache({str(tmp_path)!r})

        async def main():
            for n in range(500):
                cache.set(f"k{{n}}", CachedAnswer(str(n), {{}}, None, None, None, (), 1))

        asyncio.run(main())  # the loop ends before its queued commit runs
        # no close(): the interpreter's exit commits what is still queued
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    keys = [f"k{n}" for n in (0, 250, 499)]
    assert read_in_another_process(tmp_path, keys) == ["0", "250", "499"]


def test_a_write_in_a_loop_is_committed_while_the_loop_runs(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)

    async def main() -> list[str | None]:
        cache.set("k", answer(1))
        assert cache.get("k") == answer(1)  # queued: read from memory
        await asyncio.sleep(0.3)  # the commit thread commits ~10 ms later
        return await asyncio.to_thread(read_in_another_process, tmp_path, ["k"])

    assert asyncio.run(main()) == ['{"n": 1}']
    cache.close()


def test_the_commit_does_not_wait_for_the_loop(tmp_path: Path) -> None:
    """The commit runs in the directory's commit thread: a loop that is busy (here blocked
    outright) does not hold answers back from the disk, nor do its requests wait for it."""
    cache = ResultCache(tmp_path)

    async def main() -> list[str | None]:
        cache.set("k", answer(2))
        time.sleep(0.5)  # the loop runs nothing meanwhile
        return read_in_another_process(tmp_path, ["k"])  # still blocking the loop

    assert asyncio.run(main()) == ['{"n": 2}']
    cache.close()


def test_the_commit_thread_stops_when_idle_and_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "_IDLE", 0.05)
    cache = ResultCache(tmp_path)

    def committers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "fieldwise-cache-commit"]

    async def write(key: str, n: int) -> None:
        cache.set(key, answer(n))

    asyncio.run(write("a", 1))
    assert committers()
    for _ in range(200):  # no timing asserted: wait until it has stopped
        if not committers():
            break
        time.sleep(0.05)
    assert not committers()
    asyncio.run(write("b", 2))  # a new write starts it again
    time.sleep(0.3)
    assert read_in_another_process(tmp_path, ["a", "b"]) == ['{"n": 1}', '{"n": 2}']
    cache.close()
    assert not committers()  # close() stops it


def test_without_a_thread_to_be_had_an_answer_commits_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process at its thread limit: ``set`` must not raise (the answer was paid for),
    and the answer must still reach the disk."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    cache = ResultCache(tmp_path)

    async def main() -> None:
        for n in range(3):
            cache.set(f"k{n}", answer(n))
        # still inside the loop (blocking it: no thread may be started here)
        assert read_in_another_process(tmp_path, ["k0", "k2"]) == ['{"n": 0}', '{"n": 2}']

    asyncio.run(main())
    cache.close()


def test_a_thread_that_starts_later_is_woken_for_the_next_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first start fails (committed at once), the next succeeds: that answer must be
    committed on the thread's usual schedule, not after its idle time."""
    monkeypatch.setattr(cache_module, "_IDLE", 60.0)
    start = threading.Thread.start
    refused: list[str] = []

    def first_refused(self: threading.Thread) -> None:
        if self.name == "fieldwise-cache-commit" and not refused:
            refused.append(self.name)
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", first_refused)
    cache = ResultCache(tmp_path)

    async def main() -> list[str | None]:
        cache.set("a", answer(1))  # no thread: committed at once
        cache.set("b", answer(2))  # the thread starts
        await asyncio.sleep(0.5)  # ~10 ms is its schedule; 60 s its idle time
        return read_in_another_process(tmp_path, ["a", "b"])

    assert asyncio.run(main()) == ['{"n": 1}', '{"n": 2}']
    assert refused
    cache.close()


def test_stats_say_a_partly_unknown_saving_is_unknown(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    cache.set("priced", answer(2))  # cost 0.002
    assert cache.stats()["cost_saved_per_rerun"] == pytest.approx(0.002)
    cache.set("unpriced", CachedAnswer("{}", {"total_tokens": 3}, None, "m", None, (), 1))
    stats = cache.stats()
    assert stats["cost_saved_per_rerun"] is None and stats["entries_with_unknown_cost"] == 1
    cache.close()


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


def test_the_size_limit_holds_across_short_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run writes far fewer answers than the periodic cull needs; closing culls."""
    monkeypatch.setattr(cache_module, "SIZE_LIMIT", 300_000)
    big = "x" * 8_000
    for run in range(6):
        cache = ResultCache(tmp_path)
        for n in range(30):  # ~240 KB a run
            cache.set(f"r{run}-{n}", CachedAnswer(big, {}, None, None, None, (), 1))
        cache.close()
    check = diskcache.Cache(str(tmp_path))
    assert check.volume() < 2 * 300_000
    assert len(check) < 6 * 30
    check.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_during_a_commit_leaves_the_child_able_to_write(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    disk = cache._writer.cache  # the directory's diskcache.Cache: made slow, like a busy disk
    real_set = disk.set

    def slow_set(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real_set(*args, **kwargs)

    disk.set = slow_set  # type: ignore[method-assign]
    committing = threading.Thread(target=cache.set, args=("parent", answer(1)))
    committing.start()
    time.sleep(0.05)  # that thread is now inside its transaction
    pid = os.fork()
    if pid == 0:  # the child: must not wait forever for the parent's transaction
        signal.alarm(10)
        disk.set = real_set  # type: ignore[method-assign]
        cache.set("child", answer(2))
        cache.close()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    committing.join()
    disk.set = real_set  # type: ignore[method-assign]
    cache.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert read_in_another_process(tmp_path, ["parent", "child"]) == ['{"n": 1}', '{"n": 2}']


def test_get_many_reads_what_get_reads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """One query for many keys: on disk, still queued, missing, and a value large enough
    for diskcache to keep in a file of its own, in the order asked, past one query's size."""
    caplog.set_level("DEBUG", logger="fieldwise.cache")
    cache = ResultCache(tmp_path)
    big = CachedAnswer('{"text": "' + "x" * 100_000 + '"}', {}, None, "m", None, ("r",), 2)
    on_disk = {f"disk-{n}": answer(n) for n in range(700)}
    for key, value in on_disk.items():
        cache.set(key, value)
    cache.set("big", big)
    cache.flush()

    async def queue_one() -> None:  # in a loop: queued, not yet committed
        cache.set("queued", answer(9999))
        keys = ["queued", "missing", *on_disk, "big", "disk-3"]
        assert cache.get_many(keys) == [cache.get(key) for key in keys]

    asyncio.run(queue_one())
    keys = ["big", "missing", *reversed(list(on_disk))]
    got = cache.get_many(keys)
    assert got == [cache.get(key) for key in keys]
    assert got[0] == big and got[1] is None and got[2] == answer(699)
    assert any(p.suffix == ".val" for p in tmp_path.rglob("*"))  # "big" lives in a file
    assert "key by key" not in caplog.text  # the bulk query did the reading
    cache.close()


def test_a_batch_of_answers_is_stored_as_set_stores_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Answers committed together (one query for the stored keys, one insert for the
    rest) leave the directory as diskcache's ``set`` would: the same values, count and
    volume, a large value in a file of its own, and a replaced value's old file gone."""
    caplog.set_level("DEBUG", logger="fieldwise.cache")
    big = CachedAnswer('{"text": "' + "x" * 100_000 + '"}', {}, None, "m", None, (), 1)
    first = {f"k{n}": answer(n) for n in range(600)} | {"big": big, "replaced": big}
    second = {f"k{n}": answer(n + 1000) for n in range(0, 600, 7)} | {"replaced": answer(1)}

    async def commit_together(cache: ResultCache, answers: dict[str, CachedAnswer]) -> None:
        for key, value in answers.items():  # in a loop: queued, then one commit
            cache.set(key, value)
        cache.flush()

    bulk = ResultCache(tmp_path / "bulk")
    for answers in (first, second):
        asyncio.run(commit_together(bulk, answers))
    plain = diskcache.Cache(tmp_path / "plain")
    for answers in (first, second):
        for key, value in answers.items():
            bulk_value = (value.raw, value.usage, value.cost, value.model, value.provider,
                          tuple(value.repairs), value.attempts)  # fmt: skip
            plain.set(key, bulk_value)
    stored = diskcache.Cache(tmp_path / "bulk")
    assert len(stored) == len(plain) == 602
    assert stored.volume() == plain.volume()
    assert all(stored.get(key) == plain.get(key) for key in plain)
    files = sorted(p for p in (tmp_path / "bulk").rglob("*.val"))
    assert len(files) == 1  # "big"; the file "replaced" had is gone
    assert bulk.get("replaced") == answer(1) and bulk.get("big") == big
    assert "key by key" not in caplog.text
    stored.close()
    plain.close()
    bulk.close()


# -- an unusable directory, and the user's folders -----------------------------------------


@pytest.mark.parametrize("damage", ["a file in its place", "a damaged database"])
def test_an_unusable_cache_costs_no_answer(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    from fieldwise import Extractor
    from fieldwise.testing import FakeLLM
    from tests.models import Person

    directory = tmp_path / "cache"
    if damage == "a file in its place":
        directory.write_text("not a folder")
    else:
        directory.mkdir()
        (directory / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    with FakeLLM() as fake, Extractor(base_url=fake.base_url, cache_dir=str(directory)) as ex:
        assert ex.run("Ada", Person).cached is False
        assert ex.run("Ada", Person).cached is False  # no cache, and no second warning
        assert all(item.ok for item in ex.run_many(["Bob", "Cy"], Person))  # batches too
        assert len(fake.requests) == 4
    warnings = [r.message for r in caplog.records if "going on without a cache" in r.message]
    assert len(warnings) == 1 and str(directory) in warnings[0]


def test_an_existing_folder_keeps_its_permissions_and_a_new_one_is_private(
    tmp_path: Path,
) -> None:
    existing = tmp_path / "home"
    existing.mkdir(mode=0o755)
    ResultCache(existing).close()
    assert existing.stat().st_mode & 0o777 == 0o755
    created = tmp_path / "new" / "cache"
    ResultCache(created).close()
    assert created.stat().st_mode & 0o777 == 0o700


def test_the_cache_command_creates_nothing_and_counts_only_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldwise.cli import main

    missing = tmp_path / "typo" / "cache"
    assert main(["cache", "stats", "--dir", str(missing)]) == 1
    assert "no cache directory" in capsys.readouterr().err and not missing.exists()
    fresh = tmp_path / "fresh-install"  # the default directory, before any extraction
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIELDWISE_CACHE_DIR", str(fresh))
        assert main(["cache", "stats"]) == 0
        assert '"entries": 0' in capsys.readouterr().out and not fresh.exists()
    cache = ResultCache(tmp_path / "c")
    cache.set("k1", answer(1))
    cache.set_meta("prices", {"m": (1.0, 2.0)})
    cache.close()
    assert main(["cache", "clear", "--dir", str(tmp_path / "c")]) == 0
    assert "Removed 1 cached answers" in capsys.readouterr().out


def test_an_answer_from_asyncio_run_is_on_disk_when_run_returns(tmp_path: Path) -> None:
    """``asyncio.run`` closes its loop before the queued commit's timer fires; the commit
    happens as the loop shuts down, not at interpreter exit (which a SIGTERM never
    reaches)."""
    cache = ResultCache(tmp_path)

    async def one() -> None:
        cache.set("k1", answer(1))

    asyncio.run(one())
    with diskcache.Cache(str(tmp_path)) as other:  # its own connection: only what is committed
        assert "k1" in other
    cache.close()


def test_answers_after_close_still_reach_the_disk(tmp_path: Path) -> None:
    from fieldwise import Extractor
    from fieldwise.testing import FakeLLM
    from tests.models import Person

    with FakeLLM() as fake:
        ex = Extractor(base_url=fake.base_url, cache_dir=str(tmp_path))
        ex.run("Ada", Person)
        ex.close()
        asyncio.run(ex.arun("Bob", Person))  # used again after close: the cache reopens
        ex.close()
    with diskcache.Cache(str(tmp_path)) as other:
        assert len(other) == 2
