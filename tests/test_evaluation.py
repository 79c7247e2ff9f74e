"""Field-level evaluation (``evaluate``, ``normalise``, ``score_fields``) and the
``fieldwise eval`` command, against the loopback fake server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from fieldwise.cli import main
from fieldwise.evaluation import evaluate, normalise, score_fields
from fieldwise.testing import FakeLLM, RecordingExtractor, answer_with

MODELS = """
from pydantic import BaseModel

class Person(BaseModel):
    name: str
    age: int
"""


class Contact(BaseModel):
    name: str
    email: str | None = None
    phone: str | None = None


class Line(BaseModel):
    description: str
    quantity: int


class Aliased(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    full_name: str = Field(alias="fullName")
    lines: list[Line] = Field(default_factory=list, alias="orderLines")


@pytest.fixture
def gold_and_schema(tmp_path: Path) -> tuple[Path, str]:
    models = tmp_path / "models.py"
    models.write_text(MODELS)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"input": "Ada is 36", "expected": {"name": "Ada", "age": 36}}) + "\n"
    )
    return gold, f"{models}:Person"


# --- evaluate -------------------------------------------------------------------------------


def test_a_failed_item_scores_zero_even_where_the_gold_is_null(
    answering_extractor: Callable[..., RecordingExtractor],
) -> None:
    """A null in the gold must not be credited to an item that produced nothing."""
    ex = answering_extractor(
        lambda text: RuntimeError("down") if text == "fails" else {"name": "Bob"},
        max_retries=0,
    )
    gold = [
        ("fails", {"name": "Ada", "email": None, "phone": None}),
        ("works", {"name": "Bob", "email": None, "phone": None}),
    ]
    report = evaluate(gold, Contact, ex)
    assert report.schema_valid == 0.5 and report.exact_object == 0.5
    assert report.fields == {"name": 0.5, "email": 0.5, "phone": 0.5}
    assert [failure["index"] for failure in report.failures] == [0]
    # the same rule for score_fields' own callers (the benchmark's bare baseline)
    nothing = score_fields({"a": None, "b": {"c": None}, "tags": []}, None)
    assert nothing == {"a": 0.0, "b.c": 0.0, "tags": 0.0}
    # while a nested object the answer left null still matches its null-expected leaves
    assert score_fields({"b": {"c": None}}, {"b": None}) == {"b.c": 1.0}


def test_gold_keyed_by_alias_or_by_name_both_score(
    answering_extractor: Callable[..., RecordingExtractor],
) -> None:
    answer = {"fullName": "Ada", "orderLines": [{"description": "Pen", "quantity": 2}]}
    ex = answering_extractor(lambda text: answer)
    by_alias = {"fullName": "Ada", "orderLines": [{"description": "pen", "quantity": 2}]}
    by_name = {"full_name": "Ada", "lines": [{"description": "Pen", "quantity": 2}]}
    report = evaluate([("a", by_alias), ("b", by_name)], Aliased, ex)
    assert report.exact_object == 1.0
    assert report.fields == {"fullName": 1.0, "orderLines": 1.0, "full_name": 1.0, "lines": 1.0}


# --- normalise and score_fields ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1234567890123456789", "1234567890123456788"),  # IDs beyond a float's precision
        (1234567890123456789, 1234567890123456788),
        ("1234567890123456789", 1234567890123456788),
        ("1,2", "12"),  # a comma that is not a thousands separator
        ("0612345678", "612345678"),  # a leading zero is part of the value
        ("0.12345678901234567891", "0.12345678901234567892"),
        ("1 2", "12"),
    ],
)
def test_different_values_do_not_normalise_alike(a: Any, b: Any) -> None:
    assert normalise(a) != normalise(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1,200", 1200.0),
        ("1,234,567.5", 1234567.5),
        ("36", 36),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("1234567890123456789", 1234567890123456789),
        (0.1 + 0.2, "0.3"),
        ("  Ada   Lovelace ", "ada lovelace"),
        ("2024-01-02T10:00:00Z", "2024-01-02T10:00:00+00:00"),
        ("2024-01-02T10:00:00Z", dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC)),
        ("2024-01-02", dt.date(2024, 1, 2)),
    ],
)
def test_equal_values_normalise_alike(a: Any, b: Any) -> None:
    assert normalise(a) == normalise(b)


def test_list_items_ignore_keys_the_gold_omits_as_fields_do() -> None:
    want = {"lines": [{"d": "x", "q": 1}], "a": {"b": 1}}
    got = {"lines": [{"d": "X", "q": 1, "extra": None}], "a": {"b": 1, "c": 2}}
    assert score_fields(want, got) == {"lines": 1.0, "a.b": 1.0}
    # a null in a gold item matches a key the answer left out, as it does for a field
    assert score_fields({"lines": [{"d": "x", "note": None}]}, {"lines": [{"d": "x"}]}) == {
        "lines": 1.0
    }
    assert score_fields({"lines": [{"d": "x", "q": 1}]}, {"lines": [{"d": "x"}]}) == {"lines": 0.0}


def test_list_items_pair_off_for_the_best_score() -> None:
    """With loose item matches the first fit can take the item another needed."""
    want = {"lines": [{"d": "x"}, {"d": "x", "q": 2}]}
    got = {"lines": [{"d": "x", "q": 2}, {"d": "x", "q": 3}]}
    assert score_fields(want, got) == {"lines": 1.0}
    assert score_fields({"tags": ["a", "a", "b"]}, {"tags": ["A", "b", "c"]}) == {"tags": 2 / 3}


# --- the eval command ------------------------------------------------------------------------


def test_eval_compare_with_an_unknown_key_is_a_usage_error(
    fake_llm: FakeLLM,
    gold_and_schema: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    gold, schema = gold_and_schema
    args = ["eval", str(gold), "--schema", schema, "--base-url", fake_llm.base_url]
    code = main([*args, "--compare", "max_retries=1", "max_retry=0"])
    err = capsys.readouterr().err
    assert code == 2 and "max_retry" in err and "max_retries" in err and "temperature" in err
    assert fake_llm.requests == []  # checked before the first configuration ran
    assert main([*args, "--compare", "no pairs here"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_eval_compare_values_may_contain_commas(
    fake_llm: FakeLLM,
    gold_and_schema: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    gold, schema = gold_and_schema
    answer_with(fake_llm, lambda text: {"name": "Ada", "age": 36})
    code = main(
        [
            "eval",
            str(gold),
            "--schema",
            schema,
            "--base-url",
            fake_llm.base_url,
            "--no-cache",
            "--json",
            "--compare",
            "instructions=Be exact, no guessing",
            "temperature=0.5, instructions=Copy, do not invent,max_retries=0",
        ]
    )
    assert code == 0
    configs = json.loads(capsys.readouterr().out)["configs"]
    assert all(report["exact_object"] == 1.0 for report in configs.values())
    first, second = (request.body for request in fake_llm.requests)
    assert "Be exact, no guessing" in first["messages"][0]["content"]
    assert "Copy, do not invent" in second["messages"][0]["content"]
    assert second["temperature"] == 0.5


def test_eval_counts_cached_answers_at_what_they_cost_when_made(
    gold_and_schema: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``max_retries`` is not in the cache key, so the second configuration reuses the
    first's answers: it still reports their tokens and cost (what the configuration costs),
    and says how many came from the cache."""
    gold, schema = gold_and_schema
    monkeypatch.setenv("FIELDWISE_CACHE_DIR", str(tmp_path / "cache"))
    with FakeLLM() as fake:
        answer_with(fake, lambda text: {"name": "Ada", "age": 36})
        args = ["eval", str(gold), "--schema", schema, "--base-url", fake.base_url, "--json"]
        code = main([*args, "--compare", "max_retries=0", "max_retries=2"])
        assert len(fake.requests) == 1
    assert code == 0
    first, second = json.loads(capsys.readouterr().out)["configs"].values()
    assert first["from_cache"] == 0 and second["from_cache"] == 1
    assert second["tokens"] == first["tokens"] > 0
    assert second["cost"] == first["cost"] and first["cost"] is not None and first["cost"] > 0


def test_a_result_of_several_cached_calls_says_what_they_cost_when_made(tmp_path: Path) -> None:
    """Samples and chunks combine several calls' results; answered again from the cache,
    the combined result's original_usage is what those calls cost (what eval counts)."""
    from fieldwise import Document, Extractor

    long = Document(text="Ada is 38. " * 20 + "\n\n" + "More text here. " * 20)
    with FakeLLM() as fake:
        answer_with(fake, lambda text: {"name": "Ada", "email": None, "phone": None})
        for options, data in (
            ({"samples": 3, "temperature": 0.7}, "Ada"),
            ({"max_chars": 150}, long),
        ):
            ex = Extractor(base_url=fake.base_url, cache_dir=str(tmp_path), **options)
            first, again = ex.run(data, Contact), ex.run(data, Contact)
            assert again.cached and again.original_usage is not None
            assert again.original_usage.total_tokens >= first.usage.total_tokens > 0
