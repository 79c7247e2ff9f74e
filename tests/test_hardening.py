"""Edge cases found in review: usage on failures, keys, grounding, bad inputs, budgets."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from fieldwise import (
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    ExtractionError,
    Extractor,
    FieldwiseError,
    UnsupportedInputError,
)
from fieldwise.cli import main
from fieldwise.testing import FakeLLM, reply
from tests.models import Person


class Ticket(BaseModel):
    title: str
    tags: list[Literal["urgent", "low"]]


def make(fake: FakeLLM, **options: Any) -> Extractor:
    return Extractor(
        base_url=fake.base_url, cache=False, network_retries=0, backoff_base=0.01, **options
    )


def test_usage_of_earlier_attempts_counts_when_a_later_request_fails(fake_llm: FakeLLM) -> None:
    ex = make(fake_llm)
    fake_llm.script(reply.json({"name": "Ada", "age": "x"}), reply.http_error(400, message="no"))
    with pytest.raises(BadRequestError):
        ex.run("Ada", Person)
    assert ex.usage.requests == 1 and ex.usage.total_tokens > 0


def test_a_partly_unknown_cost_is_unknown_not_the_known_part(fake_llm: FakeLLM) -> None:
    ex = make(fake_llm)
    fake_llm.script(
        reply.json({"name": "Ada", "age": "x"}),
        reply.json({"name": "Ada", "age": 3, "city": None}, usage=False),
    )
    result = ex.run("Ada", Person)
    assert result.usage.requests == 2 and result.cost is None and ex.usage.cost is None


def test_an_openai_key_is_never_sent_to_openrouter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret-000111")
    ex = Extractor(model="openai/gpt-4o-mini", cache=False)
    with pytest.raises(ConfigurationError, match="OPENROUTER_API_KEY"):
        ex.run("Ada", Person)


def test_values_still_ungrounded_after_the_reasks_are_reported(fake_llm: FakeLLM) -> None:
    ex = make(fake_llm, grounding=True, max_retries=1)
    fake_llm.script(*[reply.json({"name": "Bob", "age": 3, "city": None})] * 2)
    result = ex.run("Alice wrote this, aged 3", Person)
    assert result.attempts == 2 and result.ungrounded == {"name": "Bob"}


def test_literal_items_in_lists_are_not_checked_for_grounding(fake_llm: FakeLLM) -> None:
    ex = make(fake_llm, grounding=True)
    fake_llm.script(reply.json({"title": "printer on fire", "tags": ["urgent"]}))
    result = ex.run("The printer on fire, please handle asap", Ticket)
    assert result.attempts == 1 and result.ungrounded == {} and len(fake_llm.requests) == 1


def test_samples_with_grounding_report_the_voted_values_evidence(fake_llm: FakeLLM) -> None:
    answers = iter(["Alice", "Bob", "Bob"])
    fake_llm.handler = lambda request: reply.json({"name": next(answers), "age": 1, "city": None})
    result = make(fake_llm, grounding=True, samples=3, max_retries=0).run(
        "Alice and Bob, 1", Person
    )
    text = "Alice and Bob, 1"
    assert result.value.name == "Bob" and text[slice(*result.evidence["name"])] == "Bob"
    assert '"Bob"' in result.raw


def test_malformed_usage_and_list_content_do_not_escape_untyped(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply.json(
            {"name": "Ada", "age": 36, "city": None},
            usage={"prompt_tokens": "n/a", "cost": "free", "prompt_tokens_details": [1]},
        )
    )
    result = make(fake_llm, model="unpriced/model").run("Ada 36", Person)
    assert result.usage.prompt_tokens == 0 and result.cost is None


def test_a_lone_surrogate_in_the_answer_is_re_asked(fake_llm: FakeLLM) -> None:
    """Half an emoji (``\\ud83d``) parses as JSON but is not text: invalid output, re-asked
    with a message saying so, not a raw pydantic error."""
    fake_llm.script(reply.text('{"name": "Zo\\ud83d", "age": 3, "city": null}'))
    result = make(fake_llm).run("Zoe, 3", Person)
    assert result.value.name == "example" and result.attempts == 2
    assert "surrogate" in fake_llm.requests[1].body["messages"][-1]["content"]


@pytest.mark.parametrize("bad", [b"bytes", None, 42, [{"type": "video"}]])
def test_inputs_that_cannot_be_sent_are_typed_errors(fake_llm: FakeLLM, bad: Any) -> None:
    with pytest.raises(UnsupportedInputError):
        make(fake_llm).run(bad, Person)
    assert not fake_llm.requests


def test_bad_options_are_configuration_errors(fake_llm: FakeLLM) -> None:
    with pytest.raises(ConfigurationError):
        make(fake_llm, rate_limit=-1)
    with pytest.raises(ConfigurationError):
        make(fake_llm).run_many(["a"], Person, concurrency=0)


def test_examples_for_a_typeddict_target(fake_llm: FakeLLM) -> None:
    """A TypedDict refuses isinstance checks; its examples are dicts, validated as such."""
    from typing_extensions import TypedDict

    class Pet(TypedDict):
        name: str
        legs: int

    fake_llm.script(reply.json({"value": {"name": "Rex", "legs": 4}}))
    result = make(fake_llm).run(
        "Rex, 4 legs", Pet, examples=[("Tom, 4", {"name": "Tom", "legs": 4})]
    )
    assert result.value == {"name": "Rex", "legs": 4}
    assert '"Tom"' in fake_llm.requests[0].body["messages"][2]["content"]


def test_examples_may_be_dicts_and_are_validated(fake_llm: FakeLLM) -> None:
    ex = make(fake_llm)
    ex.run("Ada 36", Person, examples=[("Bob, 40", {"name": "Bob", "age": 40})])
    assert '"age":40' in fake_llm.requests[0].body["messages"][2]["content"].replace(" ", "")
    with pytest.raises(ConfigurationError, match=r"examples\[0\]"):
        ex.run("Ada 36", Person, examples=[("Bob", {"name": "Bob", "age": "forty"})])


def test_max_cost_with_an_unknown_cost_stops_instead_of_guessing(tmp_path: Path) -> None:
    with FakeLLM(send_cost=False) as fake:
        ex = Extractor(base_url=fake.base_url, model="unpriced/model", cache=False)
        batch = ex.run_many([f"r{i}" for i in range(5)], Person, concurrency=1, max_cost=1.0)
        items = list(batch)
    assert items[0].ok
    assert all(isinstance(i.error, BudgetExceededError) for i in items[1:])
    assert batch.summary.stopped == "cost_unknown" and len(fake.requests) == 1


def test_cli_missing_input_file_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "m.py"
    schema.write_text("from pydantic import BaseModel\nclass P(BaseModel):\n    name: str\n")
    assert main(["extract", str(tmp_path / "missing.txt"), "--schema", f"{schema}:P"]) == 1
    err = capsys.readouterr().err
    assert "missing.txt" in err and "Traceback" not in err


def _error_classes(base: type[BaseException]) -> list[type[BaseException]]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_error_classes(sub)]
    return found


def test_errors_survive_pickling_as_process_pools_send_them(fake_llm: FakeLLM) -> None:
    """A worker process sends its exception to the parent pickled; one that cannot be
    rebuilt breaks the whole pool (``BrokenProcessPool``) instead of failing one item."""
    fake_llm.script(*[reply.json({"name": "Ada", "age": "x"})] * 2)
    with make(fake_llm, max_retries=1) as ex, pytest.raises(ExtractionError) as caught:
        ex.run("Ada", Person)
    error = caught.value
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ExtractionError and str(copy) == str(error)
    assert [(a.raw, a.errors) for a in copy.attempts] == [(a.raw, a.errors) for a in error.attempts]
    assert copy.usage == error.usage and copy.usage is not None

    import fieldwise_documents  # noqa: F401  (the plugins' errors are FieldwiseErrors too)
    import fieldwise_local._errors  # noqa: F401

    for cls in _error_classes(FieldwiseError):
        made = cls("what went wrong")
        made.usage = error.usage
        again = pickle.loads(pickle.dumps(made))
        assert type(again) is cls and str(again) == str(made), cls
        assert vars(again) == vars(made), cls
