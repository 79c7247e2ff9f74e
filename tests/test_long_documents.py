"""Documents longer than ``max_chars`` are split, extracted per chunk and merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from fieldwise import Document, Extractor
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
