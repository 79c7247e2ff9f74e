"""Documents longer than ``max_chars`` are split, extracted per chunk and merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from fieldwise import ConfigurationError, Document, Extractor
from fieldwise.testing import FakeLLM, reply


class Minutes(BaseModel):
    title: str | None
    attendees: list[str]


def per_page_answer(request: Any) -> Any:
    text = request.body["messages"][-1]["content"]
    if "page one" in text:
        return reply.json({"title": "Board meeting", "attendees": ["Ada", "Bob"]})
    return reply.json({"title": "Other title", "attendees": ["Bob", "Cy"]})


def make_document() -> Document:
    return Document.from_pages(["page one. " * 30, "page two. " * 30], name="minutes.txt")


def test_long_document_is_split_and_merged(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.handler = per_page_answer
    ex = Extractor(base_url=fake_llm.base_url, max_chars=400, cache_dir=str(tmp_path))
    result = ex.run(make_document(), Minutes)
    assert len(fake_llm.requests) == 2
    assert result.value == Minutes(title="Board meeting", attendees=["Ada", "Bob", "Cy"])
    assert [c.path for c in result.conflicts] == ["title"]
    assert result.usage.requests == 2 and result.attempts == 2
    again = ex.run(make_document(), Minutes)
    assert again.cached and again.cost == 0 and len(fake_llm.requests) == 2


@pytest.mark.anyio
async def test_long_document_async(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.handler = per_page_answer
    ex = Extractor(base_url=fake_llm.base_url, max_chars=400, cache=False)
    result = await ex.arun(make_document(), Minutes)
    assert result.value.attendees == ["Ada", "Bob", "Cy"]


def test_short_document_is_one_call(fake_llm: FakeLLM) -> None:
    ex = Extractor(base_url=fake_llm.base_url, max_chars=100_000, cache=False)
    ex.run(make_document(), Minutes)
    assert len(fake_llm.requests) == 1
    assert "page two" in fake_llm.requests[0].body["messages"][-1]["content"]


def test_chunks_times_samples(fake_llm: FakeLLM) -> None:
    fake_llm.handler = per_page_answer
    ex = Extractor(base_url=fake_llm.base_url, max_chars=400, samples=3, cache=False)
    result = ex.run(make_document(), Minutes)
    assert len(fake_llm.requests) == 6  # 2 chunks x 3 samples
    assert result.value.attendees == ["Ada", "Bob", "Cy"]
    assert result.usage.requests == 6


class Totals(BaseModel):
    number: str | None = None
    total: float = 0.0  # not nullable: null on the wire means "the default"
    paid: bool = False


def test_a_default_from_one_chunk_does_not_beat_a_value_from_another(fake_llm: FakeLLM) -> None:
    def answer(request: Any) -> Any:
        if "INV-7" in request.body["messages"][-1]["content"]:
            return reply.json({"number": "INV-7", "total": None, "paid": None})
        return reply.json({"number": None, "total": 32.99, "paid": True})

    fake_llm.handler = answer
    doc = Document.from_pages(["Invoice INV-7. " + "filler. " * 40, "Total 32.99, paid. " * 20])
    ex = Extractor(base_url=fake_llm.base_url, max_chars=400, cache=False)
    result = ex.run(doc, Totals)
    assert len(fake_llm.requests) == 2
    assert result.value == Totals(number="INV-7", total=32.99, paid=True)
    # the default a chunk stood for is reported: it may have meant it
    assert [(c.path, c.kept, c.others) for c in result.conflicts] == [
        ("total", 32.99, (0.0,)),
        ("paid", True, (False,)),
    ]


class Place(BaseModel):
    name: str | None
    city: str | None


@pytest.mark.anyio
@pytest.mark.parametrize("side", ["sync", "async"])
async def test_grounding_of_a_long_document_counts_from_its_start(
    fake_llm: FakeLLM, side: str
) -> None:
    def answer(request: Any) -> Any:
        if "Ada Lovelace" in request.body["messages"][-1]["content"]:
            return reply.json({"name": "Ada Lovelace", "city": None})
        return reply.json({"name": None, "city": "Atlantis"})  # in neither chunk

    fake_llm.handler = answer
    first = "Ada Lovelace wrote notes. " + "filler. " * 40
    doc = Document.from_pages([first, "She lived in London. " * 20])
    ex = Extractor(base_url=fake_llm.base_url, max_chars=400, cache=False, grounding=True)
    result = ex.run(doc, Place) if side == "sync" else await ex.arun(doc, Place)
    assert result.value == Place(name="Ada Lovelace", city="Atlantis")
    assert result.evidence == {"name": (0, 12)}
    assert result.ungrounded == {"city": "Atlantis"}
    london = [r for r in fake_llm.requests if "London" in r.body["messages"][1]["content"]]
    assert len(london) > 1 and "Atlantis" in str(london[-1].body["messages"][2:])  # re-asked


@pytest.mark.anyio
async def test_a_long_document_of_one_chunk_sends_that_chunk_on_both_paths(
    fake_llm: FakeLLM,
) -> None:
    doc = Document("Ada Lovelace, London." + " \n" * 300)
    ex = Extractor(base_url=fake_llm.base_url, max_chars=100, cache=False)
    ex.run(doc, Place)
    await ex.arun(doc, Place)
    sent = [r.body["messages"][-1]["content"] for r in fake_llm.requests]
    assert sent[0] == sent[1] and "Ada Lovelace, London." in sent[0] and len(sent[0]) < 200


@pytest.mark.anyio
async def test_a_blank_long_document_is_one_call_not_a_crash(fake_llm: FakeLLM) -> None:
    doc = Document(" \n" * 300)
    ex = Extractor(base_url=fake_llm.base_url, max_chars=100, cache=False)
    fake_llm.script(
        reply.json({"name": None, "city": None}), reply.json({"name": None, "city": None})
    )
    assert ex.run(doc, Place).value == Place(name=None, city=None)
    assert (await ex.arun(doc, Place)).value == Place(name=None, city=None)
    assert len(fake_llm.requests) == 2


def test_stream_refuses_what_run_would_split_or_sample(fake_llm: FakeLLM) -> None:
    long = Extractor(base_url=fake_llm.base_url, max_chars=400, cache=False)
    with pytest.raises(ConfigurationError, match="max_chars=400"):
        long.stream(make_document(), Minutes)
    with pytest.raises(ConfigurationError, match="max_chars=400"):
        long.astream(make_document(), Minutes)
    sampled = Extractor(base_url=fake_llm.base_url, samples=3, cache=False)
    with pytest.raises(ConfigurationError, match="samples=3"):
        sampled.stream("Ada", Minutes)
    assert fake_llm.requests == []
    assert list(long.stream("short text", Minutes))  # one call: streamed as before
