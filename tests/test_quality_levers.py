"""Grounding check (evidence spans, re-ask on invented values) and self-consistency."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from fieldwise import Extractor
from fieldwise.testing import FakeLLM, reply


class Contact(BaseModel):
    name: str
    city: str | None
    kind: Literal["person", "company"]
    phones: list[str]


TEXT = "Call Ada  Lovelace in london on 555-0100 or 555-0199."


def test_grounded_values_get_evidence_spans(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(
        reply.json(
            {"name": "ada lovelace", "city": "London", "kind": "person", "phones": ["555-0100"]}
        )
    )
    ex = Extractor(base_url=fake_llm.base_url, grounding=True, cache_dir=str(tmp_path))
    result = ex.run(TEXT, Contact)
    assert result.attempts == 1
    start, end = result.evidence["name"]
    assert TEXT[start:end] == "Ada  Lovelace"
    assert TEXT[slice(*result.evidence["city"])] == "london"
    assert TEXT[slice(*result.evidence["phones[0]"])] == "555-0100"
    assert "kind" not in result.evidence  # a category, not a quote
    again = ex.run(TEXT, Contact)
    assert again.cached and again.evidence == result.evidence


def test_invented_values_trigger_a_reask_naming_them(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply.json({"name": "Ada Lovelace", "city": "Paris", "kind": "person", "phones": []}),
        reply.json({"name": "Ada Lovelace", "city": "london", "kind": "person", "phones": []}),
    )
    ex = Extractor(base_url=fake_llm.base_url, grounding=True, cache=False)
    result = ex.run(TEXT, Contact)
    assert result.value.city == "london" and result.attempts == 2
    feedback = fake_llm.requests[1].body["messages"][-1]["content"]
    assert "city: 'Paris'" in feedback and "do not occur in the input" in feedback


def test_grounding_off_by_default(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply.json({"name": "Ada Lovelace", "city": "Paris", "kind": "person", "phones": []})
    )
    result = Extractor(base_url=fake_llm.base_url, cache=False).run(TEXT, Contact)
    assert result.attempts == 1 and result.evidence == {}


def test_samples_vote_per_field_and_report_confidence(fake_llm: FakeLLM) -> None:
    answers = iter(
        [
            {"name": "Ada Lovelace", "city": "London", "kind": "person", "phones": ["1"]},
            {"name": "Ada Lovelace", "city": "Paris", "kind": "person", "phones": ["1"]},
            {"name": "Ada", "city": "London", "kind": "company", "phones": ["1"]},
        ]
    )

    def handler(request: Any) -> Any:
        return reply.json(next(answers))

    fake_llm.handler = handler
    ex = Extractor(base_url=fake_llm.base_url, samples=3, seed=10, cache=False)
    result = ex.run(TEXT, Contact)
    assert result.value == Contact(name="Ada Lovelace", city="London", kind="person", phones=["1"])
    assert result.confidence["name"] == 2 / 3 and result.confidence["phones"] == 1.0
    bodies = [r.body for r in fake_llm.requests]
    assert sorted(b["seed"] for b in bodies) == [10, 11, 12]
    assert all(b["temperature"] > 0 for b in bodies)
    assert result.usage.requests == 3
