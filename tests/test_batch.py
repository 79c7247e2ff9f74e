"""run_many / arun_many through the public API, against the loopback fake server."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldwise import (
    BudgetExceededError,
    ConfigurationError,
    Extractor,
    ProviderError,
    RateLimitError,
)
from fieldwise.testing import FakeLLM, reply
from tests.models import Person


def answer_with_name(request: Any) -> Any:
    """Echo the input back as the name, so order can be checked."""
    text = request.body["messages"][-1]["content"]
    if text == "bad":
        return reply.http_error(500, message="boom")
    return reply.json({"name": text, "age": 1, "city": None})


@pytest.fixture
def ex(fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Extractor]:
    fake_llm.handler = answer_with_name
    extractor = Extractor(
        base_url=fake_llm.base_url, cache_dir=str(tmp_path), backoff_base=0.01, network_retries=0
    )
    yield extractor
    extractor.close()


def test_results_in_input_order_with_per_item_errors(ex: Extractor, fake_llm: FakeLLM) -> None:
    inputs = [f"row{i}" for i in range(40)]
    inputs[7] = "bad"
    batch = ex.run_many(inputs, Person, concurrency=8)
    items = list(batch)
    assert [item.index for item in items] == list(range(40))
    assert items[7].error is not None and isinstance(items[7].error, ProviderError)
    assert [i.value.name for i in items if i.ok] == [x for x in inputs if x != "bad"]
    summary = batch.summary
    assert (summary.done, summary.failed, summary.skipped) == (39, 1, 0)
    assert summary.usage.requests == 39 and summary.cost and summary.wall_time > 0


def test_a_resumed_run_serves_the_cached_prefix_then_calls_for_the_rest(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    inputs = [f"row{i}" for i in range(10)]
    list(ex.run_many(inputs[:5] + inputs[8:], Person))  # a run that "crashed" at row 5
    fake_llm.reset()
    threads: list[bool] = []
    batch = ex.run_many(inputs, Person, concurrency=4)
    items = []
    for item in batch:
        threads.append(any(t.name == "fieldwise-batch" for t in threading.enumerate()))
        items.append(item)
    assert [i.index for i in items] == list(range(10))
    assert [i.value.name for i in items] == inputs
    assert [i.result.cached for i in items if i.result] == [True] * 5 + [False] * 3 + [True] * 2
    assert threads[:5] == [False] * 5  # the cached prefix needs no event loop thread
    assert len(fake_llm.requests) == 3
    assert (batch.summary.done, batch.summary.cached, batch.summary.usage.requests) == (10, 7, 3)


def test_leaving_during_the_cached_prefix_reads_no_further(ex: Extractor) -> None:
    list(ex.run_many(["a", "b", "c"], Person))
    read: list[str] = []

    def inputs() -> Iterator[str]:
        for text in ["a", "b", "c", "d"]:
            read.append(text)
            yield text

    for item in ex.run_many(inputs(), Person):
        assert item.value.name == "a"
        break
    assert read == ["a"]
    assert ex.run("d", Person).value.name == "d"  # the extractor is still usable


def test_identical_inputs_are_extracted_once(ex: Extractor, fake_llm: FakeLLM) -> None:
    batch = ex.run_many(["same"] * 10 + ["other"], Person, concurrency=4)
    items = batch.results()
    assert all(item.ok for item in items)
    assert len(fake_llm.requests) == 2
    assert batch.summary.done == 11 and batch.summary.usage.requests == 2


def test_rerun_is_served_from_cache(ex: Extractor, fake_llm: FakeLLM) -> None:
    inputs = [f"row{i}" for i in range(20)]
    list(ex.run_many(inputs, Person))
    again = ex.run_many(inputs, Person)
    list(again)
    assert len(fake_llm.requests) == 20
    assert again.summary.cached == 20 and again.summary.usage.requests == 0
    assert again.summary.cost == 0.0  # a re-run from the cache is known to cost nothing


def test_progress_callback_sees_running_totals(ex: Extractor) -> None:
    seen: list[int] = []
    list(
        ex.run_many([f"r{i}" for i in range(5)], Person, on_progress=lambda s: seen.append(s.total))
    )
    assert seen == [1, 2, 3, 4, 5]


def test_max_cost_stops_before_exceeding(ex: Extractor, fake_llm: FakeLLM) -> None:
    one = ex.run("probe", Person, seed=99).cost
    assert one is not None
    batch = ex.run_many([f"r{i}" for i in range(50)], Person, concurrency=2, max_cost=one * 5.5)
    items = list(batch)
    assert len(items) == 50
    skipped = [i for i in items if isinstance(i.error, BudgetExceededError)]
    assert skipped and batch.summary.stopped == "max_cost"
    assert batch.summary.cost is not None and batch.summary.cost <= one * 5.5


def test_inputs_are_consumed_lazily(ex: Extractor) -> None:
    pulled: list[int] = []

    def rows() -> Iterator[str]:
        for i in range(10_000):
            pulled.append(i)
            yield f"row{i}"

    batch = ex.run_many(rows(), Person, concurrency=4)
    iterator = iter(batch)
    next(iterator)
    assert len(pulled) < 200  # only a window ahead, not the whole input
    for _ in iterator:
        break


def test_memory_stays_flat_over_many_items(ex: Extractor) -> None:
    def rows(n: int) -> Iterator[str]:
        return (f"row{i}" for i in range(n))

    list(ex.run_many(rows(200), Person, concurrency=16))  # warm up pools and caches
    tracemalloc.start()
    for _ in ex.run_many(rows(1500), Person, concurrency=16):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_rate_limited_items_back_off_and_succeed(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(reply.http_error(429, message="slow", retry_after=0))
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0, backoff_base=0.01)
    items = list(ex.run_many(["a", "b", "c"], Person, concurrency=1))
    assert all(item.ok for item in items)
    assert len(fake_llm.requests) == 4


def test_a_retry_after_longer_than_the_transport_waits_fails_the_item(fake_llm: FakeLLM) -> None:
    """``run`` refuses to wait 100 s (over MAX_RETRY_AFTER): so does the batch, instead of
    pausing every worker for it."""
    fake_llm.script(reply.http_error(429, retry_after=100))
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=1)
    (item,) = list(ex.run_many(["a"], Person))
    assert isinstance(item.error, RateLimitError) and "did not wait" in str(item.error)
    assert len(fake_llm.requests) == 1


def test_max_retry_after_is_the_extractors_for_calls_and_batches(fake_llm: FakeLLM) -> None:
    """``Extractor(max_retry_after=...)``, named by the advice of a refused wait, sets the
    longest wait a call takes and the batch's too."""
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=1, max_retry_after=0.2)
    fake_llm.script(reply.http_error(429, retry_after=1))
    (item,) = list(ex.run_many(["a"], Person))
    assert isinstance(item.error, RateLimitError) and "max_retry_after=0.2" in str(item.error)
    assert len(fake_llm.requests) == 1
    patient = Extractor(base_url=fake_llm.base_url, cache=False, max_retry_after=120)
    fake_llm.script(reply.http_error(429, retry_after=0.3))
    (item,) = list(patient.run_many(["b"], Person))
    assert item.ok and len(fake_llm.requests) == 3
    with pytest.raises(ConfigurationError):
        Extractor(base_url=fake_llm.base_url, max_retry_after=float("nan"))


@pytest.mark.parametrize("then", ["server_error", "rate_limited"])
def test_paid_attempts_before_an_api_error_are_in_the_batch_totals(
    fake_llm: FakeLLM, then: str
) -> None:
    """An invalid answer (paid) is re-asked and the re-ask fails: the summary and the budget
    still count the paid answer, whether the item fails or starts over after a 429."""
    failure = (
        reply.http_error(500, headers={"x-should-retry": "false"})
        if then == "server_error"
        else reply.http_error(429, retry_after=0)
    )
    fake_llm.script(reply.json({"wrong": 1}), failure)
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    batch = ex.run_many(["a"], Person, max_cost=1.0)
    (item,) = list(batch)
    assert item.ok is (then == "rate_limited")
    assert ex.usage.requests == (1 if then == "server_error" else 2)
    assert batch.summary.usage.total_tokens == ex.usage.total_tokens > 0
    assert batch.summary.cost == pytest.approx(ex.usage.cost)
    if then == "server_error":
        assert isinstance(item.error, ProviderError) and item.error.usage is not None
        assert item.error.usage.requests == 1


def test_a_round_retried_after_a_429_does_not_lower_the_mean_cost_of_an_item(
    fake_llm: FakeLLM,
) -> None:
    """Item 1 pays for two answers (an invalid one, a 429 on its re-ask, then a valid one
    on the next round): 2.0 for one item. Counting the retried round as an item would make
    the mean 1.0 and start item 2 against a budget of 3.5 (2.0 + 1.0); it is 2.0."""
    usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20, "cost": 1.0}
    fake_llm.script(
        reply.json({"wrong": 1}, usage=usage),
        reply.http_error(429, retry_after=0),
        reply.json({"name": "a", "age": 1, "city": None}, usage=usage),
        reply.json({"name": "b", "age": 1, "city": None}, usage=usage),
    )
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    first, second = list(ex.run_many(["a", "b"], Person, concurrency=1, max_cost=3.5))
    assert first.ok and first.result is not None and first.result.cost == 1.0
    assert isinstance(second.error, BudgetExceededError)
    assert len(fake_llm.requests) == 3


@pytest.mark.anyio
async def test_arun_many(ex: Extractor) -> None:
    batch = ex.arun_many([f"row{i}" for i in range(12)], Person, concurrency=4)
    names = [item.value.name async for item in batch]
    assert names == [f"row{i}" for i in range(12)]
    assert batch.summary.done == 12


def test_leaving_early_cancels_and_returns(fake_llm: FakeLLM) -> None:
    fake_llm.handler = None
    fake_llm.latency = 0.2
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    batch = ex.run_many([f"row{i}" for i in range(9)], Person, concurrency=1)
    iterator = iter(batch)
    assert next(iterator).ok
    iterator.close()  # what `break` or an exception in the loop body does
    sent = len(fake_llm.requests)
    assert sent <= 3  # the rest were never started
    batch.close()  # idempotent


@pytest.mark.anyio
async def test_aclose_after_leaving_async_for_early_cancels_the_calls_in_flight(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.latency = 0.2
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    batch = ex.arun_many([f"row{i}" for i in range(100)], Person, concurrency=4)
    async for item in batch:
        assert item.ok
        break
    await batch.aclose()
    await asyncio.sleep(0.3)  # requests written just before the close reach the fake
    sent = len(fake_llm.requests)
    assert sent <= 2 * 4  # in flight at the break, and those started as they finished
    await asyncio.sleep(0.4)  # what kept running would have sent ~8 more by now
    assert len(fake_llm.requests) == sent
    assert [item async for item in batch] == []  # closed: nothing more
    await ex.aclose()


@pytest.mark.anyio
async def test_the_first_item_then_the_rest_from_one_batch(ex: Extractor) -> None:
    """anext(aiter(batch)) for the first item, then a loop for the rest: one iterator."""
    batch = ex.arun_many([f"row{i}" for i in range(6)], Person, concurrency=2)
    first = await anext(aiter(batch))
    rest = [item.value.name async for item in batch]
    assert first.value.name == "row0" and rest == [f"row{i}" for i in range(1, 6)]
    assert batch.summary.done == 6


@pytest.mark.anyio
async def test_aclose_from_another_task_ends_the_loop(fake_llm: FakeLLM) -> None:
    fake_llm.latency = 0.05
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    batch = ex.arun_many([f"row{i}" for i in range(200)], Person, concurrency=4)
    seen: list[int] = []

    async def consume() -> None:
        async for item in batch:
            seen.append(item.index)

    consumer = asyncio.create_task(consume())
    while len(seen) < 3:
        await asyncio.sleep(0.01)
    await batch.aclose()  # a stop button: the consumer's loop ends, no error
    await asyncio.wait_for(consumer, timeout=10)
    assert 3 <= len(seen) < 200
    await ex.aclose()


@pytest.mark.anyio
async def test_async_with_closes_the_batch(fake_llm: FakeLLM) -> None:
    fake_llm.latency = 0.2
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    async with ex.arun_many([f"row{i}" for i in range(100)], Person, concurrency=4) as batch:
        iterator = aiter(batch)  # held here, so only leaving the block closes it
        assert (await anext(iterator)).ok
    await asyncio.sleep(0.3)  # requests written just before the close reach the fake
    sent = len(fake_llm.requests)
    await asyncio.sleep(0.4)
    assert len(fake_llm.requests) == sent <= 2 * 4 and batch.summary.done == 1
    await ex.aclose()


def test_an_exception_in_the_loop_body_does_not_hang(ex: Extractor) -> None:
    with pytest.raises(KeyError):
        for _item in ex.run_many([f"row{i}" for i in range(50)], Person, concurrency=2):
            raise KeyError("consumer failed")


def test_a_bad_input_fails_its_own_item_only(ex: Extractor) -> None:
    items = list(ex.run_many(["row0", b"bytes", "row2"], Person))  # type: ignore[list-item]
    assert [i.ok for i in items] == [True, False, True]
    assert type(items[1].error).__name__ == "UnsupportedInputError"


def test_a_bad_input_among_cached_ones_fails_alone(ex: Extractor, fake_llm: FakeLLM) -> None:
    """The cached prefix reads inputs and their cache entries in chunks: an input that
    cannot be prepared fails its own item, and the cached ones read with it stay cached."""
    list(ex.run_many(["row0", "row2", "row3"], Person))
    calls = len(fake_llm.requests)
    inputs: list[Any] = ["row0", b"bytes", "row2", "row3", "new", "row0"]
    items = list(ex.run_many(inputs, Person))
    assert [i.ok for i in items] == [True, False, True, True, True, True]
    assert type(items[1].error).__name__ == "UnsupportedInputError"
    assert [i.result.cached for i in items if i.result] == [True, True, True, False, True]
    assert [i.value.name for i in items if i.ok] == ["row0", "row2", "row3", "new", "row0"]
    assert len(fake_llm.requests) == calls + 1


def test_a_misspelt_option_is_refused_not_ignored(ex: Extractor) -> None:
    with pytest.raises(TypeError, match="instructon"):
        ex.run_many(["a"], Person, instructon="typo")
