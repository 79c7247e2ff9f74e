"""Streaming through the public API (``Extractor.stream``/``astream``) against the fake.

The fake streams each answer in a few pieces, so a partial value sees the answer cut at a
few places; the answers here are written so that those cuts fall inside the shapes under
test (an entry of a ``dict`` field, a number).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, BaseModel, Field
from typing_extensions import TypedDict

from fieldwise import APIConnectionError, BadRequestError, Extractor
from fieldwise.schema import compile_schema
from fieldwise.testing import FakeLLM, reply
from fieldwise.transport import Transport

SECRET = "sk-or-v1-TESTSECRETKEY-0123456789"


@pytest.fixture
def ex(fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Extractor]:
    extractor = Extractor(
        base_url=fake_llm.base_url,
        api_key=SECRET,
        cache=False,
        cache_dir=str(tmp_path / "cache"),
        backoff_base=0.01,
        network_retries=0,
    )
    yield extractor
    extractor.close()


class Item(BaseModel):
    name: str
    qty: int


class Order(BaseModel):
    title: str
    totals: dict[str, int]
    by_sku: dict[str, Item]
    items: list[Item]
    note: str


class Name(BaseModel):
    name: str
    bio: str


def wire(target: Any, value: Any) -> str:
    return compile_schema(target).encode(value)


# -- dict fields -----------------------------------------------------------------------------


def test_partials_keep_coming_after_a_dict_field_which_they_show_as_a_mapping(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    order = Order(
        title="Order 7",
        totals={f"C{i}": 100 + i for i in range(12)},
        by_sku={f"s{i}": Item(name=f"part {i}", qty=i + 1) for i in range(6)},
        items=[Item(name="bolt", qty=3)],
        note="deliver to the back door, please " * 3,
    )
    fake_llm.script(reply.text(wire(Order, order)))
    *partials, final = ex.stream("an order", Order)
    assert final == order
    assert partials and all(type(p).__name__ == "PartialOrder" for p in partials)
    for partial in partials:
        assert partial.totals is None or partial.totals.items() <= order.totals.items()
        for sku, item in (partial.by_sku or {}).items():
            assert type(item).__name__ == "PartialItem"
            assert order.by_sku[sku].name.startswith(item.name or "")
    # the fields after the dicts arrive in partials too, not only in the final value
    assert any(p.note for p in partials)
    assert partials[-1].totals == order.totals and partials[-1].items[0].qty == 3


def test_a_dict_target_streams_mappings(ex: Extractor, fake_llm: FakeLLM) -> None:
    value = {f"key{i}": i * 1000 for i in range(20)}
    fake_llm.script(reply.text(wire(dict[str, int], value)))
    *partials, final = ex.stream("numbers", dict[str, int])
    assert final == value
    assert partials and all(isinstance(p, dict) for p in partials)
    assert all(p.items() <= value.items() for p in partials)
    assert any(0 < len(p) < len(value) for p in partials)


class Meta(TypedDict):
    tags: dict[str, str]


class Tagged(BaseModel):
    meta: Meta
    summary: str


def test_a_typed_dict_field_streams_as_a_dict_and_the_fields_after_it_too(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    """A TypedDict's partial is an all-optional TypedDict, a dict inside it read from its
    wire entries; the fields after it still stream."""
    value = Tagged(meta={"tags": {"a": "b"}}, summary="a long summary of the text " * 4)
    fake_llm.script(reply.text(wire(Tagged, value)))
    *partials, final = ex.stream("text", Tagged)
    assert final == value
    assert any(p.meta == {"tags": {"a": "b"}} for p in partials)
    assert any(p.summary and p.summary != value.summary for p in partials)


# -- aliases ---------------------------------------------------------------------------------


class Aliased(BaseModel):
    first_name: str = Field(validation_alias="fname")
    last_name: str = Field(validation_alias=AliasChoices("lname", "surname"))
    notes: str


def test_partials_read_fields_by_their_wire_names(ex: Extractor, fake_llm: FakeLLM) -> None:
    value = Aliased.model_validate(
        {"fname": "Ada", "lname": "Lovelace", "notes": "wrote the first program " * 3}
    )
    text = wire(Aliased, value)
    assert '"fname"' in text and '"lname"' in text
    fake_llm.script(reply.text(text))
    *partials, final = ex.stream("Ada", Aliased)
    assert final == value
    assert any(p.first_name == "Ada" and p.last_name == "Lovelace" for p in partials)


# -- numbers cut at the end of a piece -------------------------------------------------------


class Readings(BaseModel):
    values: list[int]
    ratio: float
    total: int


def test_partials_never_show_a_number_cut_short(ex: Extractor, fake_llm: FakeLLM) -> None:
    value = Readings(
        values=[1234567890123 + i for i in range(8)], ratio=3.14159265358979, total=98765432109
    )
    text = json.dumps(value.model_dump())
    fake_llm.script(reply.text(text))
    *partials, final = ex.stream("readings", Readings)
    assert final == value
    assert partials
    for partial in partials:
        got = partial.values or []
        assert got == value.values[: len(got)]
        assert partial.ratio in (None, value.ratio)
        assert partial.total in (None, value.total)


def test_a_wrapped_number_is_not_shown_cut_short(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.text('{"value": 1234567890123456789}'))
    *partials, final = ex.stream("n", int)
    assert final == 1234567890123456789
    assert all(p == final for p in partials)


# -- fenced answers --------------------------------------------------------------------------


def test_an_answer_in_a_json_fence_streams_partials(ex: Extractor, fake_llm: FakeLLM) -> None:
    value = Name(name="Ada Lovelace", bio="mathematician and writer " * 3)
    fake_llm.script(reply.text("```json\n" + value.model_dump_json() + "\n```"))
    *partials, final = ex.stream("Ada", Name)
    assert final == value
    assert any(p.name == "Ada Lovelace" for p in partials)


def test_a_fence_split_across_chunks_still_streams_partials() -> None:
    """The first chunk may hold only part of the opening fence (two backticks)."""
    from fieldwise._sse import ChatChunk
    from fieldwise.streaming import StreamAssembler

    partials = []
    for pieces in (["```", "json\n"], ["``", "`json\n"], ["`", "``json", "\n"]):
        assembler = StreamAssembler(compile_schema(Name), tools=False)
        fed = [*pieces, '{"name": "Ada', '", "bio": "x', 'y"}\n```']
        found = [assembler.feed(ChatChunk(content=piece)) for piece in fed]
        partials.append([p.name for p in found if p is not None])
    assert partials[1] == partials[2] == partials[0] and "Ada" in partials[0]


# -- errors and usage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "requests"),
    # a cut stream was answered in part: it counts too, as a stream left early does
    [(reply.http_error(400), 1), (reply.cut(15), 2)],
)
def test_an_error_mid_stream_carries_the_usage_of_earlier_attempts(
    ex: Extractor, fake_llm: FakeLLM, failure: Any, requests: int
) -> None:
    fake_llm.script(reply.json({"name": 1, "bio": "x"}), failure)
    with pytest.raises((BadRequestError, APIConnectionError)) as caught:
        list(ex.stream("Ada", Name))
    paid = caught.value.usage
    assert paid is not None and paid.requests == requests and paid.total_tokens > 0
    assert paid == ex.usage


@pytest.mark.anyio
async def test_an_error_mid_astream_carries_the_usage_of_earlier_attempts(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    fake_llm.script(reply.json({"name": 1, "bio": "x"}), reply.http_error(400))
    with pytest.raises(BadRequestError) as caught:
        [item async for item in ex.astream("Ada", Name)]
    paid = caught.value.usage
    assert paid is not None and paid.requests == 1 and paid == ex.usage


def test_a_stream_left_early_counts_its_request(ex: Extractor, fake_llm: FakeLLM) -> None:
    stream = ex.stream("Ada", Name)
    assert isinstance(stream, Generator)
    next(stream)
    stream.close()
    assert ex.usage.requests == 1
    assert ex.usage.cost is None  # the answer's size is unknown: so is its cost


def test_a_stream_left_during_a_re_ask_counts_both_requests(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    fake_llm.script(reply.json({"name": 1, "bio": "x"}), reply.valid())
    stream = ex.stream("Ada", Name)
    assert isinstance(stream, Generator)
    for _ in stream:
        if len(fake_llm.requests) == 2:
            break
    stream.close()
    assert ex.usage.requests == 2


def test_a_whole_stream_counts_its_request_once(ex: Extractor, fake_llm: FakeLLM) -> None:
    list(ex.stream("Ada", Name))
    assert ex.usage.requests == 1 and ex.usage.cost is not None


def test_a_cut_stream_counts_its_request_as_a_stream_left_at_the_same_point(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    """The cut request was sent and answered in part: it counts, and the error says so."""
    fake_llm.script(reply.cut(20))
    seen = 0
    with pytest.raises(APIConnectionError) as caught:
        for _ in ex.stream("Ada", Name):
            seen += 1
    assert seen  # the cut came after partials
    paid = caught.value.usage
    assert paid is not None and paid.requests == 1 and paid == ex.usage
    with Extractor(base_url=fake_llm.base_url, api_key=SECRET, cache=False) as left:
        stream = left.stream("Ada", Name)
        assert isinstance(stream, Generator)
        for _ in range(seen):
            next(stream)
        stream.close()
        assert left.usage.requests == paid.requests and left.usage.cost == paid.cost


@pytest.mark.anyio
async def test_a_cut_astream_counts_its_request(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.cut(20))
    with pytest.raises(APIConnectionError) as caught:
        [item async for item in ex.astream("Ada", Name)]
    paid = caught.value.usage
    assert paid is not None and paid.requests == 1 and paid == ex.usage


@pytest.mark.parametrize("price", [(0.0, 0.0), (1.0, 2.0)])
def test_a_stream_left_early_costs_nothing_where_every_token_is_free(
    fake_llm: FakeLLM, price: tuple[float, float]
) -> None:
    """Its size is unknown, and so is its cost, unless the price is zero (a local model's)."""
    with Extractor(
        base_url=fake_llm.base_url,
        api_key=SECRET,
        cache=False,
        model="some/model",
        prices={"some/model": price},
    ) as free:
        stream = free.stream("Ada", Name)
        assert isinstance(stream, Generator)
        next(stream)
        stream.close()
        assert free.usage.requests == 1
        assert free.usage.cost == (0.0 if price == (0.0, 0.0) else None)


def test_after_a_re_ask_the_partials_start_again_from_the_new_answer(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    """As documented (docs/architecture.md): the partials of an answer that failed
    validation were shown; those of the re-ask's answer follow, starting again."""
    first = {"name": "Ada", "bio": 12345}  # bio is not a string: re-asked
    fake_llm.script(reply.json(first), reply.json({"name": "Ada Lovelace", "bio": "maths"}))
    *partials, final = ex.stream("Ada", Name)
    assert final == Name(name="Ada Lovelace", bio="maths") and len(fake_llm.requests) == 2
    names = [p.name for p in partials]
    restart = names.index(None, names.index("Ada"))  # the new answer's first partial
    assert "Ada" in names[:restart] and names[-1] == "Ada Lovelace"


@pytest.mark.anyio
async def test_an_astream_left_early_counts_its_request(ex: Extractor, fake_llm: FakeLLM) -> None:
    stream = ex.astream("Ada", Name)
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()
    assert ex.usage.requests == 1


@pytest.mark.anyio
async def test_astream_fetches_the_price_list_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []
    get_json = Transport.get_json

    def spy(self: Transport, path: str) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return get_json(self, path)

    monkeypatch.setattr(Transport, "get_json", spy)
    with FakeLLM(send_cost=False, model="fake/model", prices={"fake/model": (1e-6, 2e-6)}) as fake:
        ex = Extractor(
            base_url=fake.base_url,
            model="fake/model",
            profile="openrouter",
            api_key=SECRET,
            cache=False,
            cache_dir=str(tmp_path),
        )
        items = [item async for item in ex.astream("Ada 36", Name)]
        await ex.aclose()
    assert isinstance(items[-1], Name)
    assert on_loop == [False]
    expected = ex.usage.prompt_tokens * 1e-6 + ex.usage.completion_tokens * 2e-6
    assert ex.usage.cost == pytest.approx(expected)


# -- tools mode ------------------------------------------------------------------------------


def test_a_streamed_tool_call_is_re_asked_as_run_re_asks_it(fake_llm: FakeLLM) -> None:
    ex = Extractor(base_url=fake_llm.base_url, api_key=SECRET, cache=False, mode="tools")
    asked = []
    for go in (lambda: ex.run("Ada", Name), lambda: list(ex.stream("Ada", Name))):
        fake_llm.reset()
        fake_llm.script(reply.tool_call({"name": 1, "bio": "x"}), reply.valid())
        go()
        asked.append(fake_llm.requests[1].body["messages"][-2:])
    ex.close()
    ran, streamed = asked
    answer, feedback = streamed
    call_id = answer["tool_calls"][0]["id"]
    assert call_id and feedback == {**ran[1], "tool_call_id": call_id}
    ran_call = ran[0]["tool_calls"][0]
    assert answer == {**ran[0], "tool_calls": [{**ran_call, "id": call_id}]}


def test_a_streamed_tool_call_keeps_the_servers_call_id_in_the_re_ask(fake_llm: FakeLLM) -> None:
    ex = Extractor(base_url=fake_llm.base_url, api_key=SECRET, cache=False, mode="tools")
    asked = []
    for go in (lambda: ex.run("Ada", Name), lambda: list(ex.stream("Ada", Name))):
        fake_llm.reset()
        fake_llm.script(reply.tool_call({"name": 1, "bio": "x"}), reply.valid())
        go()
        asked.append(fake_llm.requests[1].body["messages"][-2:])
    ex.close()
    ran, streamed = asked
    answer, feedback = streamed
    assert answer["tool_calls"][0]["id"] == "call_fake_0"  # the fake's, not an invented one
    assert feedback["tool_call_id"] == "call_fake_0"
    assert streamed == ran


def test_a_tool_call_without_an_id_gets_the_same_invented_one_streamed_or_not() -> None:
    """A server that names no tool call id: the re-ask needs one; a plain answer and the
    same answer streamed get the same, stable one (nine letters and digits)."""
    from fieldwise._sse import ChatChunk
    from fieldwise.answers import tool_call_id
    from fieldwise.responses import ChatResponse
    from fieldwise.streaming import StreamAssembler

    assembler = StreamAssembler(compile_schema(Name), tools=True)
    for piece in ('{"name": "Ada", ', '"bio": "x"}'):
        assembler.feed(ChatChunk(tool_arguments=piece, id="gen-1"))
    streamed = tool_call_id(assembler.response())
    plain = ChatResponse(
        content=None,
        reasoning=None,
        refusal=None,
        tool_arguments='{"name": "Ada", "bio": "x"}',
        finish_reason="tool_calls",
        usage=None,
        model=None,
        provider=None,
        id="gen-1",
        raw={},
    )
    assert streamed == tool_call_id(plain) == tool_call_id(plain)
    assert len(streamed) == 9 and streamed.isalnum()
