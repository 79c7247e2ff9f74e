"""Grounding check (evidence spans, re-ask on invented values) and self-consistency."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
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


class Quote(BaseModel):
    value: str


def _grounded(fake: FakeLLM, text: str, value: str) -> tuple[int, int] | None:
    """The evidence span of ``value`` extracted from ``text``, or None when it was found
    ungrounded (the model says ``value`` and nothing else)."""
    fake.script(*[reply.json({"value": value})] * 2)
    ex = Extractor(base_url=fake.base_url, grounding=True, cache=False, max_retries=1)
    result = ex.run(text, Quote)
    return result.evidence.get("value")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Purchase order PO-555, due soon", "PO-55"),  # a number cut short
        ("Ship to: Bucharest, Romania", "Oman"),  # a word inside another
        ("Invoice INV2024001", "INV2024"),
        ("Contact: Jonathan Smith", "Jon"),
        ("Guest: Ren\u00e9e Martin", "Ren\u00e9"),  # an accent is part of its letter
        ("Guest: Andr\u00e9e", "Andre"),
        ("\u0938\u0940\u0924\u093e \u0926\u0947\u0935\u0940", "\u0924\u093e"),  # Hindi vowel signs
        (
            "\u10d0\u10ee\u10d0\u10da\u10d8\u10d7\u10d1\u10d8\u10da\u10d8\u10e1\u10d8",
            "\u10d7\u10d1\u10d8\u10da\u10d8\u10e1\u10d8",
        ),  # Georgian has spaces
    ],
)
def test_a_value_found_only_inside_a_longer_word_is_not_grounded(
    fake_llm: FakeLLM, text: str, value: str
) -> None:
    assert _grounded(fake_llm, text, value) is None


@pytest.mark.parametrize(
    ("text", "value", "span_text"),
    [
        ("Name: Jane Gri\ufb03n, Ltd", "Jane Griffin", "Jane Gri\ufb03n"),  # a PDF ligature
        ("Mr O\u2019Brien called", "O'Brien", "O\u2019Brien"),  # a curly apostrophe
        ("the Interna-\n  tional Trade Office", "International Trade", "Interna-\n  tional Trade"),
        ("we co\u2011operate \u2014 always", "co-operate", "co\u2011operate"),
        ("Herr Mu\u0308ller, Berlin", "M\u00fcller", "Mu\u0308ller"),  # composed vs not
        ("Price\u00a0list: 5 EUR", "price list", "Price\u00a0list"),
        ("Smith-Jones & Co", "Smith", "Smith"),
        ("a well-\nknown fact", "well-known", "well-\nknown"),
        ("Guest: Ren\u00e9 Martin", "Ren\u00e9", "Ren\u00e9"),
        ("\u6771\u4eac\u90fd\u6e2f\u533a", "\u6771\u4eac", "\u6771\u4eac"),  # no spaces in CJK
        ("ACME\u682a\u5f0f\u4f1a\u793e", "ACME", "ACME"),
    ],
)
def test_a_value_typeset_differently_is_grounded_with_its_span_in_the_input(
    fake_llm: FakeLLM, text: str, value: str, span_text: str
) -> None:
    span = _grounded(fake_llm, text, value)
    assert span is not None and text[span[0] : span[1]] == span_text


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
