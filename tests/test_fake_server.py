"""FakeLLM: the schema sampler, every reply kind over real HTTP, recording, and process mode."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
import json_repair
import jsonschema
import pytest
from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    IPvAnyAddress,
    IPvAnyNetwork,
    StringConstraints,
)

from fieldwise.schema import compile_schema
from fieldwise.testing import FakeLLM, RecordedRequest, Reply, answer_with, reply, sample

# -- the sampler ----------------------------------------------------------------------------


class Address(BaseModel):
    street: str
    city: str
    zip: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str = Field(min_length=3, max_length=5)
    age: int = Field(ge=18, le=150)
    score: float = Field(gt=0, lt=1)
    step: float = Field(multiple_of=0.25, ge=2)
    email: EmailStr
    id: UUID
    born: dt.date
    seen: dt.datetime
    wakes: dt.time
    kind: Literal["a", "b"]
    tags: list[str] = Field(min_length=2, max_length=3)
    address: Address | None
    parent: Person | None = None
    children: list[Person] = []


class Tree(BaseModel):
    label: str
    children: list[Tree]


HAND_WRITTEN: list[dict[str, Any]] = [
    {"type": "object", "properties": {}, "additionalProperties": False},
    {"type": ["string", "null"]},
    {"type": ["null", "integer"], "minimum": 5},
    {"const": "fixed"},
    {"enum": [3, 4]},
    {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
    {"type": "integer", "maximum": -3},
    {"type": "integer", "minimum": 7, "multipleOf": 5},
    {"type": "number", "minimum": -2.5, "maximum": -1.5},
    {"type": "number", "multipleOf": 0.1, "minimum": 0.25},
    {"type": "string", "format": "ipv4"},
    {"type": "string", "format": "hostname"},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "date"},
    {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
    {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
    {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
    {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"required": ["b"]}]},
    {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "v": {"type": "integer"},
                    "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["v", "next"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/Node",
    },
]


def _validate(schema: dict[str, Any], instance: Any) -> None:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(instance)


@pytest.mark.parametrize("schema", HAND_WRITTEN, ids=lambda s: json.dumps(s)[:40])
def test_sample_is_valid_for_hand_written_schemas(schema: dict[str, Any]) -> None:
    instance = sample(schema)
    _validate(schema, instance)
    assert sample(schema) == instance  # deterministic


@pytest.mark.parametrize("model", [Person, Tree, Address])
def test_sample_is_valid_for_pydantic_and_strict_schemas(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    instance = sample(schema)
    _validate(schema, instance)
    model.model_validate(instance)
    compiled = compile_schema(model)
    wire = sample(compiled.schema)
    _validate(compiled.schema, wire)
    # a lowered constraint (maxLength...) is read back from the description
    assert isinstance(compiled.decode(json.dumps(wire)), model)


def test_sample_stops_recursion_at_optional_and_empty() -> None:
    tree = sample(Tree.model_json_schema())
    assert tree == {"label": "example", "children": [{"label": "example", "children": []}]}
    person = sample(Person.model_json_schema())
    assert "parent" not in person["parent"]  # optional: left out once recursion starts
    strict = sample(compile_schema(Person).schema)
    assert strict["parent"]["parent"] is None  # strict: every key present, nullable → null


class Coded(BaseModel):
    sku: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}-\d{4}$")]


class Strong(BaseModel):
    model_config = ConfigDict(regex_engine="python-re")  # look-around patterns

    password: Annotated[str, StringConstraints(pattern=r"^(?=.*[A-Z])(?=.*\d)(?!.*\s).{8,}$")]
    code: Annotated[str, StringConstraints(pattern=r"^(?!000)\d{3}-[a-z]{2,4}$", min_length=7)]


# What the compiler moves out of the strict subset into descriptions (lengths, tuple
# positions, unique items, look-around patterns, formats) must still hold in the answer.
USER_TYPES: dict[str, Any] = {
    "min_length": Annotated[str, StringConstraints(min_length=8)],
    "exact_length": Annotated[str, StringConstraints(min_length=8, max_length=8)],
    "max_length": list[Annotated[str, StringConstraints(max_length=3)]],
    "optional_min_length": Annotated[str, StringConstraints(min_length=10)] | None,
    "tuple": tuple[int, str],
    "tuple_of_models": tuple[Coded, int | None, Literal["x", "y"], str],
    "nested_tuple": tuple[tuple[int, str], str],
    "pattern": Coded,
    "patterns": Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$|^(foo|bar)\d{2}$")],
    "pattern_and_length": Annotated[str, StringConstraints(pattern=r"^[A-Z]+$", min_length=9)],
    "look_around": Strong,
    "unique_set": Annotated[set[int], Field(min_length=3)],
    "dict_min_length": Annotated[dict[str, int], Field(min_length=2)],
    "url": AnyUrl,
    "ip": IPvAnyAddress,
    "network": IPvAnyNetwork,
}


@pytest.mark.parametrize("mode", ["json_schema", "tools"])
def test_default_answer_validates_against_the_users_own_type(
    fake_llm: FakeLLM, mode: Literal["json_schema", "tools"]
) -> None:
    from fieldwise import Extractor

    failed: dict[str, str] = {}
    with Extractor(
        base_url=fake_llm.base_url, api_key="test", cache=False, mode=mode, max_retries=0
    ) as ex:
        for name, tp in USER_TYPES.items():
            try:
                ex.run("x", tp)
            except Exception as exc:
                failed[name] = str(exc)
    assert failed == {}


# -- replies over HTTP ------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
SCHEMA_BODY: dict[str, Any] = {
    "model": "fake/model",
    "messages": [{"role": "user", "content": "Ada, 36"}],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "P", "strict": True, "schema": SCHEMA},
    },
}
TOOL_BODY: dict[str, Any] = {
    "model": "fake/model",
    "messages": [{"role": "user", "content": "Ada, 36"}],
    "tools": [{"type": "function", "function": {"name": "person", "parameters": SCHEMA}}],
    "tool_choice": {"type": "function", "function": {"name": "person"}},
}


@pytest.fixture
def client(fake_llm: FakeLLM) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_llm.base_url, timeout=10) as http:
        yield http


def post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/chat/completions", json=body)


def message(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["choices"][0]["message"]
    return result


def test_default_answer_follows_the_request_schema(client: httpx.Client) -> None:
    answer = post(client, SCHEMA_BODY).json()
    assert answer["id"].startswith("gen-")
    assert answer["model"] == "fake/model" and answer["provider"] == "FakeProvider"
    choice = answer["choices"][0]
    assert choice["finish_reason"] == choice["native_finish_reason"] == "stop"
    assert set(choice["message"]) == {"role", "content", "reasoning", "refusal", "tool_calls"}
    _validate(SCHEMA, json.loads(choice["message"]["content"]))


def test_default_answer_in_tool_mode_is_a_tool_call(client: httpx.Client) -> None:
    answer = post(client, TOOL_BODY).json()["choices"][0]
    assert answer["finish_reason"] == "tool_calls"
    call = answer["message"]["tool_calls"][0]
    assert call["function"]["name"] == "person"
    _validate(SCHEMA, json.loads(call["function"]["arguments"]))


def test_json_object_mode_reads_the_fenced_schema_in_the_system_message(
    client: httpx.Client,
) -> None:
    system = f"Answer as JSON.\n```json\n{json.dumps(SCHEMA)}\n```\nNothing else."
    body = {
        "model": "fake/model",
        "response_format": {"type": "json_object"},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "x"}],
    }
    _validate(SCHEMA, json.loads(message(post(client, body))["content"]))
    body["messages"] = [{"role": "user", "content": "no schema"}]
    assert json.loads(message(post(client, body))["content"]) == {}


def test_content_replies(fake_llm: FakeLLM, client: httpx.Client) -> None:
    fake_llm.script(
        reply.json({"name": "Ada", "age": 36}),
        reply.text('{"name": "Ada",}'),
        reply.malformed(),
        reply.valid(),
        reply.json({"x": 1}),
    )
    assert json.loads(message(post(client, SCHEMA_BODY))["content"]) == {"name": "Ada", "age": 36}
    assert message(post(client, SCHEMA_BODY))["content"] == '{"name": "Ada",}'
    garbage = message(post(client, SCHEMA_BODY))["content"]
    assert json_repair.loads(garbage) in ("", None, [], {})
    _validate(SCHEMA, json.loads(message(post(client, SCHEMA_BODY))["content"]))
    # content replies follow the request's mode: tool arguments when a tool is forced
    call = message(post(client, TOOL_BODY))["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"x": 1}


def test_output_failure_replies(fake_llm: FakeLLM, client: httpx.Client) -> None:
    fake_llm.script(
        reply.empty(reasoning="Let me think: {json}"),
        reply.truncated(),
        reply.truncated('{"name": "A'),
        reply.refusal("No."),
        reply.tool_call({"name": "Ada"}),
    )
    empty = message(post(client, SCHEMA_BODY))
    assert empty["content"] == "" and empty["reasoning"] == "Let me think: {json}"
    cut = post(client, SCHEMA_BODY).json()["choices"][0]
    assert cut["finish_reason"] == "length"
    with pytest.raises(ValueError):
        json.loads(cut["message"]["content"])
    assert message(post(client, SCHEMA_BODY))["content"] == '{"name": "A'
    refused = message(post(client, SCHEMA_BODY))
    assert refused["refusal"] == "No." and refused["content"] is None
    call = message(post(client, SCHEMA_BODY))["tool_calls"][0]["function"]
    assert json.loads(call["arguments"]) == {"name": "Ada"}


def test_http_error_reply(fake_llm: FakeLLM, client: httpx.Client) -> None:
    fake_llm.script(
        reply.http_error(429, "slow down", retry_after=2, metadata={"k": "v"}),
        reply.http_error(503, headers={"retry-after-ms": "250"}),
        reply.http_error(400, code="bad_thing", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
    )
    limited = post(client, SCHEMA_BODY)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json() == {
        "error": {"code": 429, "message": "slow down", "metadata": {"k": "v"}}
    }
    unavailable = post(client, SCHEMA_BODY)
    assert unavailable.status_code == 503 and unavailable.headers["retry-after-ms"] == "250"
    assert unavailable.json()["error"]["message"] == "Service Unavailable"
    bad = post(client, SCHEMA_BODY)
    assert bad.json()["error"]["code"] == "bad_thing"
    assert bad.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_errors_inside_a_200_answer(fake_llm: FakeLLM, client: httpx.Client) -> None:
    fake_llm.script(reply.error_in_body(502, "upstream died"), reply.finish_error("cut off"))
    in_body = post(client, SCHEMA_BODY)
    assert in_body.status_code == 200
    assert in_body.json()["error"] == {"code": 502, "message": "upstream died"}
    finished = post(client, SCHEMA_BODY).json()["choices"][0]
    assert finished["finish_reason"] == "error"
    assert finished["error"] == {"code": 502, "message": "cut off"}


def test_slow_and_drop(fake_llm: FakeLLM, client: httpx.Client) -> None:
    fake_llm.script(reply.slow(5), reply.drop(), reply.slow(0.01, then=reply.json({"a": 1})))
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=SCHEMA_BODY, timeout=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, SCHEMA_BODY)
    assert json.loads(message(post(client, SCHEMA_BODY))["content"]) == {"a": 1}
    assert len(fake_llm.requests) == 3


def test_overrides_and_usage(client: httpx.Client) -> None:
    with FakeLLM(prices={"other/model": (0.5, 1.0)}) as fake:
        fake.script(
            reply.json({"a": 1}, usage={"prompt_tokens": 7}, model="m/x", provider="P"),
            reply.json({"a": 1}, usage=False),
            reply.text("x" * 40),
        )
        with httpx.Client(base_url=fake.base_url) as http:
            first = post(http, SCHEMA_BODY).json()
            assert first["usage"] == {"prompt_tokens": 7}
            assert (first["model"], first["provider"]) == ("m/x", "P")
            assert "usage" not in post(http, SCHEMA_BODY).json()
            raw = json.dumps({**SCHEMA_BODY, "model": "other/model"}).encode()
            answer = http.post(
                "/chat/completions", content=raw, headers={"content-type": "application/json"}
            ).json()
        usage = answer["usage"]
        assert answer["model"] == "other/model"
        assert usage["prompt_tokens"] == len(raw) // 4 and usage["completion_tokens"] == 10
        assert usage["total_tokens"] == usage["prompt_tokens"] + 10
        assert usage["cost"] == pytest.approx(usage["prompt_tokens"] * 0.5 + 10 * 1.0)
        models = httpx.get(fake.base_url + "/models").json()["data"]
    assert {m["id"]: m["pricing"] for m in models} == {
        "fake/model": {"prompt": "0.000001", "completion": "0.000002"},
        "other/model": {"prompt": "0.5", "completion": "1"},
    }
    assert "structured_outputs" in models[0]["supported_parameters"]
    assert models[0]["context_length"] > 0


def test_a_model_set_after_construction_is_answered_and_listed() -> None:
    with FakeLLM() as fake, httpx.Client(base_url=fake.base_url) as http:
        fake.model = "acme/other"
        answer = post(http, {**SCHEMA_BODY, "model": "acme/other"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "acme/other" and answer.json()["usage"]["cost"] > 0
        models = http.get("/models").json()["data"]
    assert "acme/other" in {m["id"] for m in models}


def test_an_ipv6_host_is_bracketed_in_the_base_url() -> None:
    try:
        fake = FakeLLM(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with fake:
        assert fake.base_url == f"http://[::1]:{fake.port}/v1"
        assert httpx.get(fake.base_url + "/models").status_code == 200


def test_send_cost_false_leaves_cost_out() -> None:
    with FakeLLM(send_cost=False) as fake, httpx.Client(base_url=fake.base_url) as http:
        usage = post(http, SCHEMA_BODY).json()["usage"]
    assert "cost" not in usage and usage["completion_tokens"] > 0


def sse_events(response: httpx.Response) -> tuple[list[str], list[Any]]:
    lines = list(response.iter_lines())
    comments = [line for line in lines if line.startswith(":")]
    data = [line[6:] for line in lines if line.startswith("data: ")]
    return comments, [d if d == "[DONE]" else json.loads(d) for d in data]


def test_streaming_answer(fake_llm: FakeLLM, client: httpx.Client) -> None:
    fake_llm.latency = 0.01
    with client.stream("POST", "/chat/completions", json={**SCHEMA_BODY, "stream": True}) as r:
        assert r.headers["content-type"] == "text/event-stream"
        comments, events = sse_events(r)
    assert comments == [": OPENROUTER PROCESSING"]
    assert events[-1] == "[DONE]"
    usage_chunk, final = events[-2], events[-3]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    assert final["choices"][0]["finish_reason"] == "stop"
    pieces = [e["choices"][0]["delta"].get("content") or "" for e in events[:-3]]
    assert len([p for p in pieces if p]) > 1
    _validate(SCHEMA, json.loads("".join(pieces)))


def test_a_trickled_stream_sends_its_pieces_one_by_one(fake_llm: FakeLLM) -> None:
    """``reply.trickle``: the client has the first piece while the rest is still to come,
    so stopping the fake then cuts the answer (sent at once, it would be whole)."""
    from fieldwise import APIConnectionError, Extractor

    class Named(BaseModel):
        name: str

    fake_llm.script(reply.trickle(1.0, reply.json({"name": "Ada Lovelace"})))
    ex = Extractor(base_url=fake_llm.base_url, cache=False, network_retries=0)
    pieces = iter(ex.stream("x", Named))
    next(pieces)  # the first partial, while the fake still holds the rest
    fake_llm.stop()
    with pytest.raises(APIConnectionError):
        list(pieces)
    assert reply.trickle(1).then is None  # valid() by default, as reply.slow


def test_streaming_tool_call_reasoning_and_mid_stream_error(
    fake_llm: FakeLLM, client: httpx.Client
) -> None:
    fake_llm.script(
        reply.valid(), reply.empty(reasoning="hmm " * 10), reply.stream_error(5, "boom")
    )
    with client.stream("POST", "/chat/completions", json={**TOOL_BODY, "stream": True}) as r:
        _, events = sse_events(r)
    deltas = [e["choices"][0]["delta"] for e in events[:-3]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls and calls[0]["function"]["name"] == "person"
    _validate(SCHEMA, json.loads("".join(c["function"]["arguments"] for c in calls)))
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"

    with client.stream("POST", "/chat/completions", json={**SCHEMA_BODY, "stream": True}) as r:
        _, events = sse_events(r)
    thoughts = [e["choices"][0]["delta"].get("reasoning") for e in events[:-3]]
    assert "".join(t for t in thoughts if t) == "hmm " * 10

    with client.stream("POST", "/chat/completions", json={**SCHEMA_BODY, "stream": True}) as r:
        _, events = sse_events(r)
    assert "[DONE]" not in events
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]) == '{"nam'
    assert events[-1]["error"] == {"code": 502, "message": "boom"}
    assert events[-1]["choices"][0]["finish_reason"] == "error"


def test_script_order_handler_and_reset(fake_llm: FakeLLM, client: httpx.Client) -> None:
    seen: list[RecordedRequest] = []

    def handler(request: RecordedRequest) -> Reply | None:
        seen.append(request)
        if request.body["messages"][0]["content"] == "boom":
            raise RuntimeError("handler bug")
        return reply.json({"from": "handler"}) if len(seen) == 1 else None

    fake_llm.handler = handler
    fake_llm.script(reply.json({"n": 1}), reply.json({"n": 2}))
    assert fake_llm.pending == 2
    contents = [json.loads(message(post(client, SCHEMA_BODY))["content"]) for _ in range(4)]
    assert contents[:3] == [{"n": 1}, {"n": 2}, {"from": "handler"}]
    _validate(SCHEMA, contents[3])  # handler returned None: the default answer
    broken = post(client, {**SCHEMA_BODY, "messages": [{"role": "user", "content": "boom"}]})
    assert broken.status_code == 500 and "handler bug" in broken.json()["error"]["message"]
    fake_llm.script(reply.drop())
    fake_llm.reset()
    assert fake_llm.requests == [] and fake_llm.pending == 0


def test_requests_are_recorded(fake_llm: FakeLLM, client: httpx.Client) -> None:
    post(client, SCHEMA_BODY)
    client.get("/models?x=1", headers={"X-Custom": "Yes"})
    chat, models = fake_llm.requests
    assert (chat.method, chat.path, chat.body) == ("POST", "/v1/chat/completions", SCHEMA_BODY)
    assert chat.headers["content-type"] == "application/json"
    assert (models.method, models.path, models.body) == ("GET", "/v1/models?x=1", None)
    assert models.headers["x-custom"] == "Yes"


def test_bad_requests_get_openrouter_errors(client: httpx.Client) -> None:
    assert client.get("/nowhere").status_code == 404
    assert client.get("/chat/completions").status_code == 405
    bad = client.post("/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and "error" in bad.json()


def test_keep_alive_pipelined_and_split_requests(fake_llm: FakeLLM) -> None:
    body = json.dumps(SCHEMA_BODY).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    port = int(fake_llm.base_url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head[:10])
        sock.sendall(head[10:] + body[:5])
        sock.sendall(body[5:] + head + body)  # the second request right behind the first
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 2 or not received.endswith(b"}"):
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert len(fake_llm.requests) == 2 and fake_llm.connections == 1


def _exchange(port: int, data: bytes, answers: int = 1, end: bytes = b"}") -> bytes:
    """Send ``data`` on a new connection; read until ``answers`` answers came back, the last
    ending with ``end``, or the connection ends."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        while received.count(b"HTTP/1.1 ") < answers or not received.endswith(end):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def _request(body: bytes, *headers: str) -> bytes:
    head = ["POST /v1/chat/completions HTTP/1.1", "Host: x", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_head_is_answered_with_headers_only(fake_llm: FakeLLM) -> None:
    models = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    got = _exchange(fake_llm.port, models.replace(b"GET", b"HEAD") + models, 2)
    head, rest = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: " in head
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no body in between: the next answer
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert len(rest.split(b"\r\n\r\n", 1)[1]) == length
    assert [r.method for r in fake_llm.requests] == ["HEAD", "GET"]


def test_chunked_request_bodies_are_read(fake_llm: FakeLLM) -> None:
    body = json.dumps(SCHEMA_BODY).encode()
    chunked = b"%x;note=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (
        10,
        body[:10],
        len(body) - 10,
        body[10:],
    )
    twice = _request(chunked, "Transfer-Encoding: chunked") * 2  # keep-alive stays in step
    assert _exchange(fake_llm.port, twice, 2).count(b"HTTP/1.1 200 OK") == 2
    assert [r.body for r in fake_llm.requests] == [SCHEMA_BODY, SCHEMA_BODY]
    bad = _exchange(fake_llm.port, _request(b"zz\r\n", "Transfer-Encoding: chunked"), 2)
    assert bad.startswith(b"HTTP/1.1 400 ") and bad.count(b"HTTP/1.1") == 1  # and closed


def test_expect_100_continue_is_answered_before_the_body(fake_llm: FakeLLM) -> None:
    body = json.dumps(SCHEMA_BODY).encode()
    head = _request(b"", f"Content-Length: {len(body)}", "Expect: 100-continue")
    with socket.create_connection(("127.0.0.1", fake_llm.port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        received = b""
        while not received.endswith(b"}"):
            received += sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert fake_llm.requests[-1].body == SCHEMA_BODY


def test_a_negative_content_length_is_refused(fake_llm: FakeLLM) -> None:
    body = json.dumps(SCHEMA_BODY).encode()
    valid = _request(body, f"Content-Length: {len(body)}")
    got = _exchange(fake_llm.port, _request(b"", "Content-Length: -5") + valid, 2)
    assert got.startswith(b"HTTP/1.1 400 ") and got.count(b"HTTP/1.1") == 1  # and closed
    assert fake_llm.requests == []


def test_empty_lines_before_a_request_are_ignored(fake_llm: FakeLLM) -> None:
    body = json.dumps(SCHEMA_BODY).encode()
    request = _request(body, f"Content-Length: {len(body)}")
    got = _exchange(fake_llm.port, b"\r\n" + request + b"\r\n" + request, 2)
    assert got.count(b"HTTP/1.1 200 OK") == 2


def test_stop_drops_a_client_that_stopped_reading() -> None:
    fake = FakeLLM().start()
    body = json.dumps({**SCHEMA_BODY, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        fake.script(reply.text("x" * 20_000_000))  # far more than the socket buffers hold
        sock.sendall(_request(body, f"Content-Length: {len(body)}"))
        time.sleep(0.5)
        started = time.monotonic()
        fake.stop()  # must not wait for the client to read the rest
        assert time.monotonic() - started < 5
        try:  # the server's socket is closed: what is in flight drains, then the end
            while sock.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass


@pytest.mark.anyio
async def test_concurrent_keep_alive_clients() -> None:
    with FakeLLM(latency=0.05) as fake:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            answers = await asyncio.gather(
                *(http.post("/chat/completions", json=SCHEMA_BODY) for _ in range(64))
            )
        assert all(a.status_code == 200 for a in answers)
        assert len(fake.requests) == 64


def test_start_stop_and_no_leaked_thread() -> None:
    fake = FakeLLM()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    before = threading.active_count()
    with fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert "127.0.0.1" in repr(fake)
        httpx.get(fake.base_url + "/models")
    assert threading.active_count() == before
    fake.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{fake.port}/v1/models")


def test_busy_port_is_reported() -> None:
    with FakeLLM() as fake, pytest.raises(OSError):
        FakeLLM(port=fake.port).start()


def test_runs_as_a_separate_process() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldwise.testing", "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        answer = httpx.post(url + "/chat/completions", json=SCHEMA_BODY, timeout=10)
        _validate(SCHEMA, json.loads(answer.json()["choices"][0]["message"]["content"]))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# -- answer_with: answers from a function of the input, through the real client --------------


class Entry(BaseModel):
    name: str
    size: int = Field(alias="Size")


def test_answer_with_answers_each_input_and_fails_the_ones_it_says(fake_llm: FakeLLM) -> None:
    from fieldwise import Extractor
    from fieldwise.exceptions import BadRequestError, ProviderError

    calls: list[str] = []

    def answer(text: str) -> Any:
        calls.append(text)
        if text == "upstream":
            return ProviderError("upstream failed", status_code=503, code="busy")
        if text == "bug":
            return ValueError("no such row")
        if text == "raw":
            return '{"name": "raw", "Size": 1}'
        if text == "default":
            return None
        if text == "model":
            return Entry(name="m", Size=2)
        if text == "scripted":
            return reply.json({"name": "scripted", "Size": 3})
        return {"name": text.upper(), "Size": len(text)}

    answer_with(fake_llm, answer)
    texts = ["ada", "upstream", "bug", "raw", "default", "model", "scripted", "grace"]
    # default network_retries: the error replies must still be sent once each (no retry)
    with Extractor(base_url=fake_llm.base_url, api_key="test", cache=False) as ex:
        items = list(ex.run_many(texts, Entry, concurrency=8))
    assert sorted(calls) == sorted(texts) and len(fake_llm.requests) == len(texts)
    values = {item.input: item.result.value for item in items if item.result is not None}
    assert values["ada"] == Entry(name="ADA", Size=3) and values["grace"].size == 5
    assert values["raw"] == Entry(name="raw", Size=1) and values["model"].size == 2
    assert values["scripted"].size == 3 and isinstance(values["default"], Entry)
    errors = {item.input: item.error for item in items if item.error is not None}
    assert set(errors) == {"upstream", "bug"}
    upstream = errors["upstream"]
    assert isinstance(upstream, ProviderError) and upstream.status_code == 503
    assert upstream.code == "busy" and ": upstream failed." in str(upstream)
    bug = errors["bug"]
    assert isinstance(bug, BadRequestError) and bug.status_code == 422
    assert ": ValueError: no such row." in str(bug)


def test_answer_with_gives_a_reask_the_original_input(fake_llm: FakeLLM) -> None:
    from fieldwise import Extractor
    from fieldwise.exceptions import ExtractionError

    calls: list[str] = []

    def answer(text: str) -> Any:
        calls.append(text)
        return {"name": text, "Size": "many"}  # never validates: re-asked until max_retries

    answer_with(fake_llm, answer)
    with (
        Extractor(base_url=fake_llm.base_url, api_key="test", cache=False, max_retries=2) as ex,
        pytest.raises(ExtractionError),
    ):
        ex.run("the input", Entry)
    assert calls == ["the input"] * 3
    last = fake_llm.requests[-1].body["messages"]
    assert len(last) == 6 and last[-1]["content"] != "the input"  # the feedback, not the input


@pytest.mark.parametrize("mode", ["json_schema", "tools"])
def test_answer_with_gives_the_input_after_a_scripted_answer(
    fake_llm: FakeLLM, mode: Literal["json_schema", "tools"]
) -> None:
    from fieldwise import Extractor

    calls: list[str] = []

    def answer(text: str) -> Any:
        calls.append(text)
        return {"name": text.upper(), "Size": 1}

    answer_with(fake_llm, answer)
    fake_llm.script(reply.malformed())  # the first answer is scripted; the re-ask is not
    with Extractor(
        base_url=fake_llm.base_url, api_key="test", cache=False, mode=mode, max_retries=2
    ) as ex:
        assert ex.run("ada", Entry).value.name == "ADA"
        fake_llm.script(reply.json({"name": "x", "Size": "many"}), reply.malformed())
        assert ex.run("grace", Entry).value.name == "GRACE"  # the second re-ask's answer
    assert calls == ["ada", "grace"]


def test_answer_with_gives_the_input_beside_few_shot_examples(fake_llm: FakeLLM) -> None:
    from fieldwise import Extractor

    calls: list[str] = []

    def answer(text: str) -> Any:
        calls.append(text)
        return {"name": text.upper(), "Size": len(text)}

    answer_with(fake_llm, answer)
    with Extractor(base_url=fake_llm.base_url, api_key="test", cache=False) as ex:
        ex.run("bob", Entry)  # the example's input was itself asked before
        result = ex.run("carol", Entry, examples=[("bob", Entry(name="BOB", Size=3))])
    assert calls == ["bob", "carol"] and result.value == Entry(name="CAROL", Size=5)


def test_answering_extractor_records_what_its_batches_were_given(
    answering_extractor: Any, fake_llm: FakeLLM
) -> None:
    from fieldwise.testing import RecordingExtractor

    ex = answering_extractor(lambda text: {"name": text, "Size": 1})
    assert isinstance(ex, RecordingExtractor) and ex.inputs_type is None and ex.seen == []
    texts = (t for t in ["a", "b", "a"])
    got = [item.value.name for item in ex.run_many(texts, Entry, concurrency=2, max_cost=9.0)]
    assert got == ["a", "b", "a"] and ex.seen == ["a", "b", "a"]
    assert ex.inputs_type is type(texts) and ex.options["max_cost"] == 9.0
    assert ex.options["concurrency"] == 2 and ex.network_retries == 0
    assert len(fake_llm.requests) == 2  # identical inputs in one batch: one call


def test_a_cut_answer_ends_early_without_an_end_marker(
    fake_llm: FakeLLM, client: httpx.Client
) -> None:
    fake_llm.script(reply.cut(8))
    with client.stream("POST", "/chat/completions", json={**SCHEMA_BODY, "stream": True}) as r:
        _, events = sse_events(r)
    assert "[DONE]" not in events
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == '{"name":'
    fake_llm.script(reply.cut(8))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, SCHEMA_BODY)
    assert post(client, SCHEMA_BODY).json()["choices"][0]["finish_reason"] == "stop"


def test_wait_for_requests_returns_once_they_arrived_or_says_how_many(
    fake_llm: FakeLLM, client: httpx.Client
) -> None:
    post(client, SCHEMA_BODY)
    assert len(fake_llm.wait_for_requests(1)) == 1
    with pytest.raises(TimeoutError, match="1 request"):
        fake_llm.wait_for_requests(2, timeout=0.05)
