"""The extraction loop through the public API, against the loopback fake server."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fieldwise
from fieldwise import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    EmptyOutputError,
    ExtractionError,
    Extractor,
    InsufficientCreditsError,
    ModerationError,
    ProviderError,
    RateLimitError,
    RefusalError,
    TruncatedOutputError,
)
from fieldwise.testing import FakeLLM, reply
from tests.models import Invoice, Person, Tagged

SECRET = "sk-or-v1-TESTSECRETKEY-0123456789"


@pytest.fixture
def ex(fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Extractor]:
    extractor = Extractor(
        base_url=fake_llm.base_url,
        api_key=SECRET,
        cache_dir=str(tmp_path / "cache"),
        backoff_base=0.01,
    )
    yield extractor
    extractor.close()


def user_messages(request: Any) -> list[dict[str, Any]]:
    return [m for m in request.body["messages"] if m["role"] == "user"]


def test_extract_returns_validated_instance(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"name": "Ada", "age": 36, "city": "London"}))
    person = ex.extract("Ada, 36, lives in London.", Person)
    assert person == Person(name="Ada", age=36, city="London")
    body = fake_llm.requests[-1].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["seed"] == 0 and body["temperature"] == 0.0
    assert body["messages"][-1] == {"role": "user", "content": "Ada, 36, lives in London."}


def test_result_carries_usage_cost_and_metadata(ex: Extractor, fake_llm: FakeLLM) -> None:
    result = ex.run("Ada, 36", Person)
    assert isinstance(result.value, Person)
    assert result.attempts == 1 and result.cached is False
    assert result.usage.total_tokens > 0 and result.usage.requests == 1
    assert result.cost is not None and result.cost > 0  # the fake sends usage.cost
    assert result.model and result.provider
    assert json.loads(result.raw) == result.value.model_dump(mode="json")
    assert ex.usage.total_tokens == result.usage.total_tokens


def test_default_answer_for_a_realistic_invoice(ex: Extractor) -> None:
    invoice = ex.extract("Invoice 7 from ACME …", Invoice)
    assert isinstance(invoice, Invoice) and invoice.currency in ("USD", "EUR", "GBP")


def test_reask_with_errors_then_success(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        reply.json({"name": "Ada", "age": "thirty-six"}),
        reply.json({"name": "Ada", "age": 36, "city": None}),
    )
    result = ex.run("Ada, thirty-six", Person)
    assert result.value.age == 36 and result.attempts == 2
    second = fake_llm.requests[1].body["messages"]
    assert second[-2]["role"] == "assistant" and "thirty-six" in second[-2]["content"]
    assert second[-1]["role"] == "user" and "age" in second[-1]["content"]
    assert "errors.pydantic.dev" not in second[-1]["content"]
    assert result.usage.requests == 2


def test_constraint_lowered_from_schema_is_still_enforced(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"tags": ["one"]}), reply.json({"tags": ["one", "two"]}))
    assert ex.extract("tags", Tagged).tags == ["one", "two"]
    assert "tags" in fake_llm.requests[1].body["messages"][-1]["content"]


def test_out_of_reasks_raises_extraction_error_with_every_attempt(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.script(*[reply.json({"name": "Ada", "age": "x"})] * 3)
    ex = Extractor(base_url=fake_llm.base_url, max_retries=2, cache_dir=str(tmp_path))
    with ex, pytest.raises(ExtractionError) as caught:
        ex.run("Ada", Person)
    error = caught.value
    assert len(error.attempts) == 3 and all("age" in str(a.errors) for a in error.attempts)
    assert error.usage is not None and error.usage.requests == 3
    assert "max_retries" in str(error)


def test_near_json_is_repaired_and_reported(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.text('```json\n{"name": "Ada", "age": 36, "city": null,}\n```'))
    result = ex.run("Ada 36", Person)
    assert result.value == Person(name="Ada", age=36) and result.repairs
    assert result.attempts == 1


def test_garbage_triggers_a_reask(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.malformed(), reply.json({"name": "Ada", "age": 36, "city": None}))
    assert ex.run("Ada 36", Person).attempts == 2


def test_empty_content_with_reasoning_names_it(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.empty(reasoning='{"name": "Ada", "age": 36}'))
    with pytest.raises(EmptyOutputError, match="reasoning"):
        ex.run("Ada 36", Person)


def test_empty_content_without_reasoning(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.empty())
    with pytest.raises(EmptyOutputError, match="empty content"):
        ex.run("Ada 36", Person)


def test_truncated_output(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.truncated())
    with pytest.raises(TruncatedOutputError, match="max_tokens"):
        ex.run("Ada 36", Person)


def test_a_streamed_refusal_is_a_refusal(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.refusal("I won't."))
    with pytest.raises(RefusalError, match="I won't"):
        list(ex.stream("Ada", Person))


def test_refusal(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.refusal("I can't help with that."))
    with pytest.raises(RefusalError, match="can't help"):
        ex.run("Ada 36", Person)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (403, ModerationError),
        (404, BadRequestError),
        (429, RateLimitError),
        (500, ProviderError),
        (502, ProviderError),
        (503, ProviderError),
    ],
)
def test_http_errors_become_typed_errors(
    ex: Extractor, fake_llm: FakeLLM, status: int, error_type: type[Exception]
) -> None:
    fake_llm.script(*[reply.http_error(status, message=f"boom {status}")] * 3)
    with pytest.raises(error_type) as caught:
        ex.run("Ada 36", Person)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_context_length_error(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.http_error(400, message="This model's maximum context length is 8192"))
    with pytest.raises(ContextLengthError):
        ex.run("Ada 36", Person)


def test_network_faults_are_retried_and_never_reach_the_prompt(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    ex = Extractor(
        base_url=fake_llm.base_url, network_retries=3, backoff_base=0.01, cache_dir=str(tmp_path)
    )
    fake_llm.script(
        reply.http_error(429, message="slow down", retry_after=0),
        reply.http_error(503, message="overloaded"),
        reply.drop(),
        reply.json({"name": "Ada", "age": 36, "city": None}),
    )
    result = ex.run("Ada 36", Person)
    assert result.attempts == 1 and len(fake_llm.requests) == 4
    bodies = [r.body for r in fake_llm.requests]
    assert all(b == bodies[0] for b in bodies)  # nothing about the faults was added


def test_error_inside_200_body_is_a_provider_error(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(*[reply.error_in_body(502, "upstream died")] * 3)
    with pytest.raises(ProviderError, match="upstream died"):
        ex.run("Ada 36", Person)


def test_cache_hit_is_free_and_marked(ex: Extractor, fake_llm: FakeLLM) -> None:
    first = ex.run("Ada 36", Person)
    second = ex.run("Ada 36", Person)
    assert len(fake_llm.requests) == 1
    assert second.cached and second.cost == 0 and second.value == first.value
    # the usage of a hit is what the call spent: nothing, and known to be nothing (the
    # result's cost and its usage's agree)
    assert second.usage.requests == 0 and second.usage.cost == 0.0
    assert second.usage.total_tokens == 0
    assert ex.usage.requests == 1


def test_seed_is_part_of_the_cache_key(ex: Extractor, fake_llm: FakeLLM) -> None:
    ex.run("Ada 36", Person)
    ex.run("Ada 36", Person, seed=1)
    assert len(fake_llm.requests) == 2 and fake_llm.requests[1].body["seed"] == 1


def test_only_validated_answers_are_cached(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(*[reply.json({"name": "Ada", "age": "x"})] * 3)
    with pytest.raises(ExtractionError):
        ex.run("Ada 36", Person)
    fake_llm.script(reply.json({"name": "Ada", "age": 36, "city": None}))
    assert ex.run("Ada 36", Person).cached is False


def test_cache_modes(fake_llm: FakeLLM, tmp_path: Path) -> None:
    def make(mode: Any) -> Extractor:
        return Extractor(base_url=fake_llm.base_url, cache=mode, cache_dir=str(tmp_path))

    make("read_only").run("Ada", Person)
    make(True).run("Ada", Person)  # read_only wrote nothing
    assert len(fake_llm.requests) == 2
    assert make(True).run("Ada", Person).cached
    make("refresh").run("Ada", Person)  # refresh ignores the hit
    assert len(fake_llm.requests) == 3
    make(False).run("Ada", Person)
    assert len(fake_llm.requests) == 4


def test_api_key_never_reaches_the_cache_files(ex: Extractor, tmp_path: Path) -> None:
    ex.run("Ada 36", Person)
    ex.close()
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()
    mode = os.stat(tmp_path / "cache").st_mode & 0o777
    assert mode == 0o700


def test_api_key_is_sent_as_bearer_and_hidden_from_repr(ex: Extractor, fake_llm: FakeLLM) -> None:
    ex.run("Ada 36", Person)
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(ex)


def test_list_target_is_wrapped_and_unwrapped(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"value": [{"name": "Ada", "age": 36, "city": None}]}))
    people = ex.extract("Ada 36", list[Person])
    assert people == [Person(name="Ada", age=36)]
    schema = fake_llm.requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["type"] == "object" and "value" in schema["properties"]


def test_content_parts_and_examples_are_sent_without_mutating_inputs(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    parts = [
        {"type": "text", "text": "Who is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    examples = [("Bob, 40, Paris", Person(name="Bob", age=40, city="Paris"))]
    before = (copy.deepcopy(parts), copy.deepcopy(examples))
    ex.run(parts, Person, examples=examples)
    assert (parts, examples) == before
    messages = fake_llm.requests[0].body["messages"]
    assert messages[1] == {"role": "user", "content": "Bob, 40, Paris"}
    assert json.loads(messages[2]["content"]) == {"name": "Bob", "age": 40, "city": "Paris"}
    assert messages[3]["content"] == parts


def test_instructions_are_appended_to_the_system_prompt(ex: Extractor, fake_llm: FakeLLM) -> None:
    ex.run("Ada 36", Person, instructions="Names in upper case.")
    assert fake_llm.requests[0].body["messages"][0]["content"].endswith("Names in upper case.")


def test_json_object_mode_puts_the_schema_in_the_prompt(fake_llm: FakeLLM) -> None:
    ex = Extractor(base_url=fake_llm.base_url, mode="json_object", cache=False)
    assert isinstance(ex.extract("Ada 36", Person), Person)
    body = fake_llm.requests[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert '"additionalProperties":false' in body["messages"][0]["content"]


def test_tools_mode_forces_one_function(fake_llm: FakeLLM) -> None:
    ex = Extractor(base_url=fake_llm.base_url, mode="tools", cache=False)
    fake_llm.script(
        reply.tool_call({"name": "Ada", "age": "x", "city": None}),
        reply.tool_call({"name": "Ada", "age": 36, "city": None}),
    )
    assert ex.run("Ada 36", Person).value.age == 36
    body = fake_llm.requests[0].body
    assert body["tool_choice"]["function"]["name"] == body["tools"][0]["function"]["name"]
    assert "response_format" not in body
    reask = fake_llm.requests[1].body["messages"]
    assert reask[-2]["tool_calls"][0]["function"]["arguments"]
    assert reask[-1]["role"] == "tool"


def test_generic_profile_sends_only_standard_fields(ex: Extractor, fake_llm: FakeLLM) -> None:
    ex.run("Ada 36", Person)
    body = fake_llm.requests[0].body
    assert "provider" not in body and "reasoning" not in body


@pytest.mark.parametrize(
    ("reasoning", "sent"), [("high", "high"), ({"effort": "low"}, "low"), (False, None)]
)
def test_generic_profile_sends_an_effort_as_reasoning_effort(
    fake_llm: FakeLLM, reasoning: Any, sent: str | None
) -> None:
    ex = Extractor(base_url=fake_llm.base_url, cache=False, reasoning=reasoning)
    ex.run("Ada 36", Person)
    assert fake_llm.requests[0].body.get("reasoning_effort") == sent


@pytest.mark.parametrize(
    "reasoning", [True, {"max_tokens": 100}, {"effort": "low", "exclude": True}]
)
def test_generic_profile_refuses_openrouters_reasoning_settings(
    fake_llm: FakeLLM, reasoning: Any
) -> None:
    """What a generic server cannot take is refused before any call, as provider= is,
    never silently dropped."""
    with pytest.raises(ConfigurationError, match="reasoning_effort"):
        Extractor(base_url=fake_llm.base_url, cache=False, reasoning=reasoning)
    assert fake_llm.requests == []


def test_openrouter_profile_sends_routing_and_reasoning_off(fake_llm: FakeLLM) -> None:
    ex = Extractor(
        base_url=fake_llm.base_url,
        profile="openrouter",
        api_key=SECRET,
        provider={"order": ["fireworks"]},
        cache=False,
    )
    ex.run("Ada 36", Person)
    request = fake_llm.requests[0]
    assert request.body["provider"] == {"require_parameters": True, "order": ["fireworks"]}
    assert request.body["reasoning"] == {"enabled": False}
    assert request.headers["x-openrouter-title"] == "fieldwise"


def test_error_advice_follows_the_endpoints_profile(fake_llm: FakeLLM) -> None:
    """profile='openrouter' on any URL (a gateway, a proxy): the key it sends is
    OPENROUTER_API_KEY's, and a 401 or 402 says so."""
    ex = Extractor(base_url=fake_llm.base_url, profile="openrouter", api_key=SECRET, cache=False)
    fake_llm.script(reply.http_error(401), reply.http_error(402), reply.error_in_body(401, "no"))
    with pytest.raises(AuthenticationError, match="OPENROUTER_API_KEY"):
        ex.run("Ada", Person)
    with pytest.raises(InsufficientCreditsError, match=r"openrouter\.ai/settings/credits"):
        ex.run("Ada", Person)
    with pytest.raises(AuthenticationError, match="OPENROUTER_API_KEY"):  # inside a 200 body
        ex.run("Ada", Person)


def test_openrouter_without_key_fails_before_any_call() -> None:
    ex = Extractor(profile="openrouter", cache=False)
    with pytest.raises(ConfigurationError, match="OPENROUTER_API_KEY") as caught:
        ex.run("Ada 36", Person)
    # the local model is installed in this environment: the advice is to use it, in the
    # spelling of the command line and of code, not to pull it again
    assert "--model local" in str(caught.value) and "model='local'" in str(caught.value)
    assert "local pull" not in str(caught.value)


def test_price_table_when_endpoint_sends_no_cost(tmp_path: Path) -> None:
    with FakeLLM(send_cost=False) as fake:
        ex = Extractor(base_url=fake.base_url, model="m", prices={"m": (1.0, 2.0)}, cache=False)
        result = ex.run("Ada 36", Person)
        expected = (result.usage.prompt_tokens * 1.0 + result.usage.completion_tokens * 2.0) / 1e6
        assert result.cost == pytest.approx(expected)
        unknown = Extractor(base_url=fake.base_url, model="other", cache=False)
        assert unknown.run("Ada 36", Person).cost is None


def test_module_level_extract_uses_environment(fake_llm: FakeLLM, monkeypatch: Any) -> None:
    monkeypatch.setenv("FIELDWISE_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("FIELDWISE_MODEL", "env/model")
    fake_llm.script(reply.json({"name": "Ada", "age": 36, "city": None}))
    assert fieldwise.extract("Ada 36", Person, cache=False) == Person(name="Ada", age=36)
    assert fake_llm.requests[0].body["model"] == "env/model"


@pytest.mark.anyio
async def test_async_extract(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"name": "Ada", "age": 36, "city": None}))
    assert await ex.aextract("Ada 36", Person) == Person(name="Ada", age=36)
    result = await ex.arun("Ada 36", Person)
    assert result.cached


def test_stream_yields_partials_then_the_validated_value(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"name": "Ada Lovelace", "age": 36, "city": "London"}))
    items = list(ex.stream("Ada", Person))
    assert items[-1] == Person(name="Ada Lovelace", age=36, city="London")
    partials = items[:-1]
    assert partials and all(type(p).__name__ == "PartialPerson" for p in partials)
    assert fake_llm.requests[0].body["stream"] is True
    assert ex.usage.total_tokens > 0


def test_a_stream_cut_mid_answer_is_not_repaired_re_asked_or_cached(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    """Half an answer from a cut connection would repair into a valid Person (``city`` is
    optional): it must fail as a connection error, and the next call must ask again."""
    fake_llm.script(reply.cut(26), reply.json({"name": "Ada", "age": 36, "city": "London"}))
    with pytest.raises(APIConnectionError, match="cut mid-answer"):
        list(ex.stream("Ada", Person))
    assert len(fake_llm.requests) == 1
    assert ex.run("Ada", Person).value.city == "London"
    assert (
        len(fake_llm.requests) == 2
        and fake_llm.requests[1].body["messages"] == (fake_llm.requests[0].body["messages"])
    )


@pytest.mark.anyio
async def test_async_stream(ex: Extractor, fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"name": "Ada", "age": 36, "city": None}))
    items = [item async for item in ex.astream("Ada", Person)]
    assert items[-1] == Person(name="Ada", age=36)


def test_openrouter_prices_fetched_once_and_kept_on_disk(tmp_path: Path) -> None:
    with FakeLLM(send_cost=False, model="fake/model", prices={"fake/model": (1e-6, 2e-6)}) as fake:
        for _ in range(2):
            ex = Extractor(
                base_url=fake.base_url,
                model="fake/model",
                profile="openrouter",
                api_key=SECRET,
                cache=False,
                cache_dir=str(tmp_path),
            )
            result = ex.run("Ada 36", Person)
            expected = result.usage.prompt_tokens * 1e-6 + result.usage.completion_tokens * 2e-6
            assert result.cost == pytest.approx(expected)
            ex.close()
        model_lists = [r for r in fake.requests if r.path.endswith("/models")]
        assert len(model_lists) == 1


@pytest.mark.anyio
async def test_async_calls_price_from_the_remote_list_fetched_off_the_loop(
    tmp_path: Path,
) -> None:
    """The price list is fetched once, in a worker thread (a blocking call on the event
    loop would stall every other request of a service meanwhile), and prices the answer."""
    with FakeLLM(send_cost=False, model="fake/model", prices={"fake/model": (1e-6, 2e-6)}) as fake:
        ex = Extractor(
            base_url=fake.base_url,
            model="fake/model",
            profile="openrouter",
            api_key=SECRET,
            cache=False,
            cache_dir=str(tmp_path),
        )
        results = [await ex.arun("Ada 36", Person), await ex.arun("Bob 7", Person)]
        await ex.aclose()
        for result in results:
            expected = result.usage.prompt_tokens * 1e-6 + result.usage.completion_tokens * 2e-6
            assert result.cost == pytest.approx(expected)
        assert len([r for r in fake.requests if r.path.endswith("/models")]) == 1


def test_check_reaches_the_endpoint(ex: Extractor, fake_llm: FakeLLM) -> None:
    listing = ex.check()
    assert listing["data"][0]["id"] == "fake/model"
    assert fake_llm.requests[0].path == "/v1/models"


def test_check_reports_an_unreachable_endpoint() -> None:
    ex = Extractor(base_url="http://127.0.0.1:9/v1", network_retries=0, cache=False)
    with pytest.raises(fieldwise.APIConnectionError):
        ex.check()


def test_lone_surrogate_in_input_is_sent_escaped(ex: Extractor, fake_llm: FakeLLM) -> None:
    ex.run("Ada \udc80 36", Person)
    assert fake_llm.requests[0].body["messages"][-1]["content"] == "Ada \udc80 36"


def test_loopback_endpoint_ignores_proxy_settings(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    assert isinstance(ex.extract("Ada 36", Person), Person)
