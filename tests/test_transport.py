"""Transport against FakeLLM over real HTTP: typed errors, retries, streaming, async, secrets."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import itertools
import json
import logging
import random
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldwise import exceptions as E
from fieldwise._retry import Failure, RetryPolicy, parse_retry_after
from fieldwise._sse import LineSplitter
from fieldwise.testing import FakeLLM, RecordedRequest, Reply, reply
from fieldwise.transport import ChatChunk, ChatResponse, Transport, parse_response

KEY = "fw-test-key-4f9a1c77e2"  # no "sk-" prefix: only register_secret can hide it
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}
BODY: dict[str, Any] = {
    "model": "vendor/some-model",
    "messages": [{"role": "user", "content": "Ada"}],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "P", "strict": True, "schema": SCHEMA},
    },
}
TOOL_BODY: dict[str, Any] = {
    "model": "vendor/some-model",
    "messages": [{"role": "user", "content": "Ada"}],
    "tools": [{"type": "function", "function": {"name": "p", "parameters": SCHEMA}}],
    "tool_choice": {"type": "function", "function": {"name": "p"}},
}


class Side:
    """Runs one transport call through the sync or the async API (async: its own loop)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def chat(self, transport: Transport, body: dict[str, Any]) -> ChatResponse:
        if self.name == "sync":
            return transport.chat(body)
        return asyncio.run(transport.achat(body))

    def stream(
        self, transport: Transport, body: dict[str, Any], into: list[ChatChunk] | None = None
    ) -> list[ChatChunk]:
        """The stream's chunks, also appended to ``into`` as they come (kept on an error)."""
        chunks = [] if into is None else into
        if self.name == "sync":
            for chunk in transport.stream(body):
                chunks.append(chunk)
            return chunks

        async def collect() -> list[ChatChunk]:
            async for chunk in transport.astream(body):
                chunks.append(chunk)
            return chunks

        return asyncio.run(collect())

    def get_json(self, transport: Transport, path: str) -> Any:
        if self.name == "sync":
            return transport.get_json(path)
        return asyncio.run(transport.aget_json(path))


@pytest.fixture(params=["sync", "async"])
def side(request: pytest.FixtureRequest) -> Side:
    return Side(request.param)


@pytest.fixture
def transport(fake_llm: FakeLLM) -> Iterator[Transport]:
    with Transport(fake_llm.base_url, KEY, backoff_base=0.01, timeout=10) as t:
        yield t


# -- status → exception -----------------------------------------------------------------------

CASES: list[tuple[Reply, type[E.FieldwiseError], int, str]] = [
    (reply.http_error(400, "bad field"), E.BadRequestError, 1, "bad field"),
    (reply.http_error(422, "unprocessable"), E.BadRequestError, 1, "unprocessable"),
    (
        reply.http_error(400, "This model's maximum context length is 8192 tokens"),
        E.ContextLengthError,
        1,
        "longer context",
    ),
    (reply.http_error(413, "Payload Too Large"), E.ContextLengthError, 1, "Shorten"),
    (
        reply.http_error(401, "No auth credentials found"),
        E.AuthenticationError,
        1,
        "OPENAI_API_KEY",  # the variable a key for an endpoint other than OpenRouter is in
    ),
    (reply.http_error(402, "Insufficient credits"), E.InsufficientCreditsError, 1, "credits"),
    (
        reply.http_error(403, "flagged", metadata={"reasons": ["violence", "hate"]}),
        E.ModerationError,
        1,
        "violence, hate",
    ),
    (reply.http_error(404, "Model not found"), E.BadRequestError, 1, "vendor/some-model"),
    (
        reply.http_error(404, "No endpoints found that can handle the requested parameters."),
        E.BadRequestError,
        1,
        "supports all the requested parameters",
    ),
    (reply.http_error(429, "Rate limit exceeded"), E.RateLimitError, 3, "rate_limit="),
    (reply.http_error(408, "Request Timeout"), E.ProviderError, 3, "provider={'order'"),
    (reply.http_error(409, "Conflict"), E.ProviderError, 3, "Conflict"),
    (reply.http_error(500, "Internal"), E.ProviderError, 3, "try again later"),
    (
        reply.http_error(
            502,
            "Provider returned error",
            metadata={"raw": "upstream 500", "provider_name": "Acme"},
        ),
        E.ProviderError,
        3,
        "upstream 500",
    ),
    (reply.http_error(503, "No instances available"), E.ProviderError, 3, "No instances"),
    (reply.http_error(529, "Overloaded"), E.ProviderError, 3, "Overloaded"),
]


@pytest.mark.parametrize(("answer", "kind", "requests", "says"), CASES)
def test_status_maps_to_typed_error(
    fake_llm: FakeLLM,
    transport: Transport,
    answer: Reply,
    kind: type[E.FieldwiseError],
    requests: int,
    says: str,
    side: Side,
) -> None:
    fake_llm.script(answer, answer, answer)
    with pytest.raises(kind) as caught:
        side.chat(transport, BODY)
    assert type(caught.value) is kind
    assert len(fake_llm.requests) == requests
    assert says.lower() in str(caught.value).lower()
    if isinstance(caught.value, E.APIError):
        assert caught.value.status_code == answer.status
        assert caught.value.body == {
            "error": {
                "code": answer.code,
                "message": answer.value,
                **({"metadata": dict(answer.metadata)} if answer.metadata else {}),
            }
        }
    if requests > 1:
        assert f"after {requests} attempts" in str(caught.value)


def test_provider_name_from_metadata(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.http_error(400, "nope", metadata={"provider_name": "Acme"}))
    with pytest.raises(E.BadRequestError) as caught:
        side.chat(transport, BODY)
    assert caught.value.provider == "Acme" and caught.value.code == 400


# -- retries ----------------------------------------------------------------------------------


def test_retry_then_success(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.http_error(503), reply.http_error(429, retry_after=0))
    response = side.chat(transport, BODY)
    assert response.content == '{"name": "example"}'
    assert len(fake_llm.requests) == 3
    assert all(r.body == BODY for r in fake_llm.requests)  # the very same request, resent


def test_retry_after_is_honoured(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.http_error(429, retry_after=0.3))
    started = time.monotonic()
    assert side.chat(transport, BODY).content
    assert time.monotonic() - started >= 0.29  # never earlier than asked (no upper bound)
    assert len(fake_llm.requests) == 2


def test_retry_after_ms_and_http_date() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": future}) or 0) <= 30
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    for endless in ("inf", "nan", "1e400", "-inf"):  # not a wait: backoff decides
        assert parse_retry_after({"retry-after": endless}) is None
        assert parse_retry_after({"retry-after-ms": endless}) is None
    unzoned = email.utils.formatdate(time.time() + 30).rsplit(" ", 1)[0] + " -0000"
    assert 25 < (parse_retry_after({"retry-after": unzoned}) or 0) <= 30  # GMT, not local


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(retries=10, backoff_base=0.5, backoff_max=8.0)
    failure = Failure(E.ProviderError, "x", "", True)
    rng = random.Random(1)
    for attempt in range(10):
        delays = [policy.delay(failure, attempt, rng) for _ in range(200)]
        cap = min(8.0, 0.5 * 2**attempt)
        assert all(d is not None and 0 <= d <= cap for d in delays)
        assert max(d for d in delays if d is not None) > cap / 2
    assert policy.delay(failure, 10, rng) is None
    assert policy.delay(Failure(E.ProviderError, "x", "", False), 0, rng) is None


@pytest.mark.parametrize(
    ("url", "named", "not_named"),
    [
        ("https://openrouter.ai/api/v1/chat/completions", "OPENROUTER_API_KEY", "OPENAI_API_KEY"),
        ("http://127.0.0.1:8000/v1/chat/completions", "OPENAI_API_KEY", "OPENROUTER"),
    ],
)
def test_advice_names_the_key_and_credits_of_the_endpoint_called(
    url: str, named: str, not_named: str
) -> None:
    """A 401 names the variable the key for that endpoint is read from; a 402 points at
    OpenRouter's credits page only for OpenRouter."""
    from fieldwise._retry import failure_from_status

    unauthorized = str(failure_from_status(401, {}, b"", url=url, model="m").error(1))
    assert named in unauthorized and not_named not in unauthorized
    no_credits = str(failure_from_status(402, {}, b"", url=url, model="m").error(1))
    assert ("openrouter.ai/settings" in no_credits) is (named == "OPENROUTER_API_KEY")


def test_overlong_retry_after_raises_at_once(fake_llm: FakeLLM, side: Side) -> None:
    with Transport(fake_llm.base_url, KEY, max_retry_after=5, backoff_base=0.01) as transport:
        fake_llm.script(reply.http_error(429, "slow down", retry_after=120))
        with pytest.raises(E.RateLimitError) as caught:
            side.chat(transport, BODY)
    assert caught.value.retry_after == 120
    assert "max_retry_after=5" in str(caught.value)
    assert len(fake_llm.requests) == 1


def test_x_should_retry_header_wins(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.http_error(503, headers={"x-should-retry": "false"}))
    with pytest.raises(E.ProviderError):
        side.chat(transport, BODY)
    assert len(fake_llm.requests) == 1


def test_no_retries_when_disabled(fake_llm: FakeLLM, side: Side) -> None:
    with Transport(fake_llm.base_url, None, network_retries=0) as transport:
        fake_llm.script(reply.http_error(503))
        with pytest.raises(E.ProviderError) as caught:
            side.chat(transport, BODY)
    assert len(fake_llm.requests) == 1 and "attempts" not in str(caught.value)


def test_dropped_connection_is_retried(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.drop(), reply.drop())
    assert side.chat(transport, BODY).finish_reason == "stop"
    assert len(fake_llm.requests) == 3
    fake_llm.script(reply.drop(), reply.drop(), reply.drop())
    with pytest.raises(E.APIConnectionError) as caught:
        side.chat(transport, BODY)
    assert type(caught.value) is E.APIConnectionError
    assert "after 3 attempts" in str(caught.value) and "base_url" in str(caught.value)


@pytest.mark.parametrize("streamed", [False, True])
def test_an_endless_answer_is_cut_off_not_read_into_memory(
    fake_llm: FakeLLM, transport: Transport, side: Side, streamed: bool
) -> None:
    """An answer past MAX_ANSWER_BYTES is a broken endpoint: reading stops there, the error
    says so and the request is not repeated (another try would send as much again)."""
    from fieldwise._answer_size import MAX_ANSWER_BYTES

    fake_llm.script(reply.text("x" * (MAX_ANSWER_BYTES + 1)))
    with pytest.raises(E.ProviderError) as caught:
        if streamed:
            side.stream(transport, BODY)
        else:
            side.chat(transport, BODY)
    assert f"passed {MAX_ANSWER_BYTES} bytes" in str(caught.value)
    assert "base_url" in str(caught.value)
    assert len(fake_llm.requests) == 1
    assert side.chat(transport, BODY).finish_reason == "stop"  # the transport still works


def test_a_connection_reset_mid_answer_reads_alike_on_both_paths(side: Side) -> None:
    """A server that sends half an answer and resets the connection: retried, then the
    same typed error and wording from httpx (sync) and aiohttp (async)."""
    import socket
    import struct

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    served: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            # Counted before answering: the client may see the reset and raise before
            # this thread runs again, so a count taken after close() races the assert.
            served.append(1)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"id": "partial'
            )
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # with linger 0: a reset, not a clean end

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            Transport(
                f"http://127.0.0.1:{port}/v1", KEY, network_retries=1, backoff_base=0.01
            ) as transport,
            pytest.raises(E.APIConnectionError) as caught,
        ):
            side.chat(transport, BODY)
    finally:
        server.close()
    assert "closed without a complete answer" in str(caught.value)
    assert "after 2 attempts" in str(caught.value) and len(served) == 2


def test_unreachable_endpoint(side: Side) -> None:
    with FakeLLM() as fake:
        url = fake.base_url
    with (
        Transport(url, KEY, network_retries=1, backoff_base=0.01) as transport,
        pytest.raises(E.APIConnectionError) as caught,
    ):
        side.chat(transport, BODY)
    assert "Could not reach" in str(caught.value)


def test_slow_answer_times_out_after_retries(fake_llm: FakeLLM, side: Side) -> None:
    fake_llm.script(reply.slow(30), reply.slow(30), reply.slow(30))
    with (
        Transport(fake_llm.base_url, KEY, timeout=0.2, backoff_base=0.01) as transport,
        pytest.raises(E.APITimeoutError) as caught,
    ):
        side.chat(transport, BODY)
    assert len(fake_llm.wait_for_requests(3)) == 3
    assert "timeout=0.2" in str(caught.value) and "Increase timeout=" in str(caught.value)


def test_error_inside_a_200_body(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.error_in_body(502, "upstream died"))
    assert side.chat(transport, BODY).content
    assert len(fake_llm.requests) == 2
    fake_llm.script(reply.error_in_body(400, "bad schema"))
    with pytest.raises(E.BadRequestError) as caught:
        side.chat(transport, BODY)
    assert "answered HTTP 200" in str(caught.value) and len(fake_llm.requests) == 3
    fake_llm.script(reply.error_in_body("context_length_exceeded", "too long"))
    with pytest.raises(E.ContextLengthError):
        side.chat(transport, BODY)
    fake_llm.script(*[reply.error_in_body("rate_limit_exceeded", "slow")] * 3)
    with pytest.raises(E.RateLimitError):
        side.chat(transport, BODY)
    assert len(fake_llm.requests) == 7


def test_finish_reason_error(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(reply.finish_error("cut"))
    assert side.chat(transport, BODY).finish_reason == "stop"
    assert len(fake_llm.requests) == 2
    fake_llm.script(*[reply.finish_error("generation failed")] * 3)
    with pytest.raises(E.ProviderError) as caught:
        side.chat(transport, BODY)
    assert "generation failed" in str(caught.value) and len(fake_llm.requests) == 5


def test_answer_that_is_not_a_completion_is_not_retried() -> None:
    for payload in (["a list"], {"object": "something else"}, "<html>"):
        failure = parse_response(payload, url="http://x/v1/chat/completions", model=None)
        assert isinstance(failure, Failure) and not failure.retryable
        error = failure.error(1)
        assert isinstance(error, E.ProviderError) and "base_url" in str(error)


# -- responses --------------------------------------------------------------------------------


def test_chat_response_fields(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    fake_llm.script(
        reply.empty(reasoning="thinking"),
        reply.refusal("no"),
        reply.truncated('{"na'),
        reply.json({"name": "Ada"}, model="m/answered", provider="Acme"),
    )
    empty = side.chat(transport, BODY)
    assert empty.content == "" and empty.reasoning == "thinking"
    refused = side.chat(transport, BODY)
    assert refused.refusal == "no" and refused.content is None
    cut = side.chat(transport, BODY)
    assert (cut.content, cut.finish_reason) == ('{"na', "length")
    ok = side.chat(transport, BODY)
    assert (ok.model, ok.provider) == ("m/answered", "Acme")
    assert ok.id is not None and ok.id.startswith("gen-")
    assert ok.usage is not None and ok.usage["cost"] > 0
    assert ok.raw["choices"][0]["message"]["content"] == ok.content
    tool = side.chat(transport, TOOL_BODY)
    assert tool.tool_arguments == '{"name": "example"}' and tool.finish_reason == "tool_calls"


def test_reasoning_content_is_read_too() -> None:
    payload = {
        "choices": [
            {"message": {"content": "x", "reasoning_content": "why"}, "finish_reason": "stop"}
        ]
    }
    parsed = parse_response(payload, url="u", model=None)
    assert isinstance(parsed, ChatResponse) and parsed.reasoning == "why"


def test_headers_sent(fake_llm: FakeLLM, side: Side) -> None:
    with Transport(fake_llm.base_url, KEY, headers={"X-Title": "tests"}) as transport:
        side.chat(transport, BODY)
    with Transport(fake_llm.base_url, None) as anonymous:
        side.chat(anonymous, BODY)
    keyed, anon = fake_llm.requests
    assert keyed.headers["authorization"] == f"Bearer {KEY}"
    assert keyed.headers["x-title"] == "tests"
    assert keyed.headers["content-type"] == "application/json"
    assert "authorization" not in anon.headers


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(fake_llm: FakeLLM, side: Side, status: int) -> None:
    with FakeLLM() as elsewhere:
        target = elsewhere.base_url + "/chat/completions"
        fake_llm.script(reply.http_error(status, "moved", headers={"Location": target}))
        with (
            Transport(fake_llm.base_url, KEY, network_retries=0) as transport,
            pytest.raises(E.BadRequestError) as caught,
        ):
            side.chat(transport, BODY)
        assert elsewhere.requests == []  # the key never went to another address
    assert f"HTTP {status}" in str(caught.value) and "base_url" in str(caught.value)


def test_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake_llm: FakeLLM, side: Side
) -> None:
    """A base_url that is not loopback goes through HTTP(S)_PROXY on both paths; the fake
    plays the proxy (an absolute-form request line for plain HTTP)."""
    host = "fieldwise-proxy-test.invalid"  # never resolved: the proxy is asked instead
    monkeypatch.setenv("HTTP_PROXY", fake_llm.base_url.rsplit("/v1", 1)[0])
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Transport(f"http://{host}/v1", KEY, network_retries=0) as transport:
        assert side.chat(transport, BODY).content
    assert fake_llm.requests[-1].headers["host"] == host
    monkeypatch.setenv("NO_PROXY", host)
    with (  # exempt: resolved directly, and fails
        Transport(f"http://{host}/v1", KEY, network_retries=0) as transport,
        pytest.raises(E.APIConnectionError),
    ):
        side.chat(transport, BODY)
    assert len(fake_llm.requests) == 1


def test_a_socks_proxy_is_refused_clearly_on_the_async_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with (
        Transport("https://api.example.invalid/v1", KEY) as transport,
        pytest.raises(E.ConfigurationError, match="http:// proxy"),
    ):
        asyncio.run(transport.achat(BODY))


def test_get_json(fake_llm: FakeLLM, transport: Transport, side: Side) -> None:
    models = side.get_json(transport, "/models")
    assert models["data"][0]["id"] == "fake/model"
    assert side.get_json(transport, "models") == models
    with pytest.raises(E.BadRequestError):
        side.get_json(transport, "/nowhere")


def test_bad_base_url() -> None:
    with pytest.raises(E.ConfigurationError):
        Transport("localhost:8000/v1", KEY)


def test_threads_share_one_transport(fake_llm: FakeLLM, transport: Transport) -> None:
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: transport.chat(BODY), range(64)))
    assert all(r.content for r in results) and len(fake_llm.requests) == 64


# -- streaming --------------------------------------------------------------------------------


def assemble(chunks: list[ChatChunk]) -> tuple[str, str, dict[str, Any] | None, str | None]:
    content = "".join(c.content or "" for c in chunks)
    arguments = "".join(c.tool_arguments or "" for c in chunks)
    usage = next((c.usage for c in chunks if c.usage), None)
    finish = next((c.finish_reason for c in chunks if c.finish_reason), None)
    return content, arguments, usage, finish


def test_stream_assembles_content_and_usage(
    fake_llm: FakeLLM, transport: Transport, side: Side
) -> None:
    fake_llm.latency = 0.02  # the keep-alive comment arrives before the content
    chunks = side.stream(transport, BODY)
    content, _, usage, finish = assemble(chunks)
    assert content == '{"name": "example"}' and finish == "stop"
    assert usage is not None and usage["total_tokens"] > 0
    assert len([c for c in chunks if c.content]) > 1
    assert chunks[-1].usage is not None and chunks[-1].model == "fake/model"
    assert fake_llm.requests[0].body == {**BODY, "stream": True}
    assert fake_llm.requests[0].headers["accept"] == "text/event-stream"


def test_stream_tool_call_and_reasoning(
    fake_llm: FakeLLM, transport: Transport, side: Side
) -> None:
    _, arguments, _, finish = assemble(side.stream(transport, TOOL_BODY))
    assert arguments == '{"name": "example"}' and finish == "tool_calls"
    fake_llm.script(reply.empty(reasoning="step by step"))
    chunks = side.stream(transport, BODY)
    assert "".join(c.reasoning or "" for c in chunks) == "step by step"


def test_stream_error_mid_stream_is_typed_and_not_retried(
    fake_llm: FakeLLM, transport: Transport
) -> None:
    fake_llm.script(reply.stream_error(6, "provider disconnected"))
    received: list[ChatChunk] = []
    with pytest.raises(E.ProviderError) as caught:
        for chunk in transport.stream(BODY):
            received.append(chunk)
    assert "provider disconnected" in str(caught.value)
    assert assemble(received)[0] == '{"name'
    assert len(fake_llm.requests) == 1


def test_stream_failures_before_content_are_retried(
    fake_llm: FakeLLM, transport: Transport, side: Side
) -> None:
    fake_llm.script(reply.http_error(429, retry_after=0), reply.error_in_body(502, "x"))
    assert assemble(side.stream(transport, BODY))[0] == '{"name": "example"}'
    fake_llm.script(reply.drop())
    assert assemble(side.stream(transport, BODY))[0] == '{"name": "example"}'
    assert len(fake_llm.requests) == 5
    fake_llm.script(reply.http_error(401, "bad key"))
    with pytest.raises(E.AuthenticationError):
        side.stream(transport, BODY)


def test_a_stream_cut_short_without_an_end_marker_is_a_dropped_connection(
    fake_llm: FakeLLM, transport: Transport, side: Side
) -> None:
    """A stream that ends cleanly with neither ``[DONE]`` nor a finish_reason is a cut
    connection: retried while nothing was yielded, else a typed connection error; never
    handed on as a whole answer."""
    fake_llm.script(reply.cut(0), reply.valid())
    content, _, _, finish = assemble(side.stream(transport, BODY))
    assert content == '{"name": "example"}' and finish == "stop"
    assert len(fake_llm.requests) == 2
    fake_llm.script(reply.cut(6))
    received: list[ChatChunk] = []
    with pytest.raises(E.APIConnectionError, match="cut mid-answer"):
        side.stream(transport, BODY, received)
    assert assemble(received)[0] == '{"name'
    assert len(fake_llm.requests) == 3


def test_a_plain_answer_cut_short_is_retried(
    fake_llm: FakeLLM, transport: Transport, side: Side
) -> None:
    fake_llm.script(reply.cut(12))
    assert side.chat(transport, BODY).content == '{"name": "example"}'
    assert len(fake_llm.requests) == 2


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"


def _stream_from_raw_server(side: Side, payload: bytes) -> list[ChatChunk]:
    """What the transport makes of ``payload`` sent as one stream's body by a bare
    loopback server (for endings and shapes the fake does not send)."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(payload) + payload
        )
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        with Transport(url, KEY, network_retries=0) as transport:
            return side.stream(transport, BODY)
    finally:
        server.close()


def test_stream_deltas_whose_content_is_a_list_of_parts_are_text(side: Side) -> None:
    """Some servers send ``delta.content`` as text parts, as they do ``message.content``."""
    payload = (
        _event({"content": [{"type": "text", "text": '{"name": '}]})
        + _event({"content": [{"type": "text", "text": '"Ada"}'}]}, "stop")
        + b"data: [DONE]\n\n"
    )
    assert assemble(_stream_from_raw_server(side, payload))[0] == '{"name": "Ada"}'


_LAST = {
    "done-no-blank-line": _event({"content": '"Ada"}'}) + b"data: [DONE]\n",
    "done-no-newline": _event({"content": '"Ada"}'}) + b"data: [DONE]",
    "finish-no-blank-line": _event({"content": '"Ada"}'}, "stop")[:-1],
    "finish-no-newline": _event({"content": '"Ada"}'}, "stop")[:-2],
}


@pytest.mark.parametrize("ending", list(_LAST))
def test_a_streams_last_event_counts_without_the_blank_line_after_it(
    side: Side, ending: str
) -> None:
    """A server that closes right after its last ``data:`` line (no blank line) has still
    ended its answer: [DONE] or the finish_reason in that last event counts."""
    payload = _event({"content": '{"name": '}) + _LAST[ending]
    assert assemble(_stream_from_raw_server(side, payload))[0] == '{"name": "Ada"}'


def test_connections_are_kept_alive(fake_llm: FakeLLM, transport: Transport) -> None:
    for _ in range(3):
        assert assemble(list(transport.stream(BODY)))[0]  # read to the end after [DONE]
        transport.chat(BODY)
    assert len(fake_llm.requests) == 6 and fake_llm.connections == 1


# -- async ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_chat_retries_and_errors(fake_llm: FakeLLM, transport: Transport) -> None:
    fake_llm.script(reply.http_error(500), reply.drop())
    assert (await transport.achat(BODY)).content == '{"name": "example"}'
    assert len(fake_llm.requests) == 3
    fake_llm.script(reply.http_error(402, "no credits"))
    with pytest.raises(E.InsufficientCreditsError):
        await transport.achat(BODY)
    assert (await transport.aget_json("/models"))["data"]
    await transport.aclose()


@pytest.mark.anyio
async def test_async_stream(fake_llm: FakeLLM, transport: Transport) -> None:
    fake_llm.script(reply.http_error(503), reply.valid(), reply.stream_error(3, "boom"))
    chunks = [chunk async for chunk in transport.astream(BODY)]
    assert assemble(chunks)[0] == '{"name": "example"}'
    with pytest.raises(E.ProviderError):
        async for _ in transport.astream(BODY):
            pass
    assert len(fake_llm.requests) == 3


@pytest.mark.anyio
async def test_async_stream_error_mid_stream_early_exit_and_keep_alive(
    fake_llm: FakeLLM, transport: Transport
) -> None:
    fake_llm.script(reply.stream_error(6, "provider disconnected"))
    received: list[ChatChunk] = []
    with pytest.raises(E.ProviderError) as caught:
        async for chunk in transport.astream(BODY):
            received.append(chunk)
    assert "provider disconnected" in str(caught.value)
    assert assemble(received)[0] == '{"name' and len(fake_llm.requests) == 1
    stream = transport.astream(BODY)
    async for _ in stream:  # the caller leaves after the first chunk
        break
    await stream.aclose()
    before = fake_llm.connections
    for _ in range(3):
        assert assemble([c async for c in transport.astream(BODY)])[0]
        assert (await transport.achat(BODY)).content
    assert fake_llm.connections - before <= 1  # read to the end after [DONE]: reused


@given(
    st.lists(
        st.tuples(st.text(alphabet="ab é:", max_size=6), st.sampled_from(["\n", "\r\n", "\r"])),
        max_size=8,
    ),
    st.text(alphabet="ab", max_size=3),
    st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=20),
)
def test_line_splitter_agrees_with_splitlines(
    lines: list[tuple[str, str]], tail: str, cuts: list[int]
) -> None:
    data = ("".join(text + end for text, end in lines) + tail).encode()
    splitter, got, at = LineSplitter(), [], 0
    for size in itertools.cycle(cuts):
        if at >= len(data):
            break
        got += splitter.feed(data[at : at + size])
        at += size
    assert got + splitter.end() == [line.decode() for line in data.splitlines()] + [""]


def test_line_splitter_handles_any_chunking() -> None:
    text = b'data: {"a": "\xc3\xa9"}\r\n\r\n: keep-alive\rdata: x\n\ndata: ' + b"y" * 100_000
    expected = [
        'data: {"a": "\u00e9"}',
        "",
        ": keep-alive",
        "data: x",
        "",
        "data: " + "y" * 100_000,
    ]
    for size in (1, 2, 3, 7, 64, len(text)):
        splitter = LineSplitter()
        lines = [
            line for i in range(0, len(text), size) for line in splitter.feed(text[i : i + size])
        ]
        assert lines + splitter.end() == [*expected, ""], size


@pytest.mark.anyio
async def test_async_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.slow(30), reply.slow(30))
    async with Transport(fake_llm.base_url, KEY, timeout=0.2, network_retries=1) as transport:
        with pytest.raises(E.APITimeoutError):
            await transport.achat(BODY)
    assert len(fake_llm.wait_for_requests(2)) == 2


@pytest.mark.anyio
async def test_many_in_flight(fake_llm: FakeLLM, transport: Transport) -> None:
    fake_llm.latency = 0.02
    answers = await asyncio.gather(*(transport.achat(BODY) for _ in range(64)))
    assert all(a.content for a in answers) and len(fake_llm.requests) == 64


def test_two_asyncio_runs_share_one_transport(fake_llm: FakeLLM, transport: Transport) -> None:
    async def call() -> ChatResponse:
        first = await transport.achat(BODY)
        chunks = [c async for c in transport.astream(BODY)]
        assert assemble(chunks)[0] == first.content
        return first

    gc.collect()  # what earlier tests left for the collector warns now, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(call()).content == asyncio.run(call()).content
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert len(fake_llm.requests) == 4
    transport.chat(BODY)  # and the sync side still works
    transport.close()
    transport.close()


def test_async_from_another_thread(fake_llm: FakeLLM, transport: Transport) -> None:
    results: list[str | None] = []
    worker = threading.Thread(
        target=lambda: results.append(asyncio.run(transport.achat(BODY)).content)
    )
    worker.start()
    worker.join()
    assert results == ['{"name": "example"}']


# -- secrets ----------------------------------------------------------------------------------


def test_api_key_never_leaks(
    fake_llm: FakeLLM, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    def echo_key(request: RecordedRequest) -> Reply:
        auth = request.headers.get("authorization", "")
        return reply.http_error(503, f"cannot use {auth} right now", metadata={"raw": auth})

    caplog.set_level(logging.DEBUG)
    fake_llm.handler = echo_key
    with pytest.raises(E.ProviderError) as caught:
        transport.chat(BODY)
    fake_llm.handler = None
    fake_llm.script(reply.http_error(401, f"key {KEY} revoked"))
    with pytest.raises(E.AuthenticationError) as auth_error:
        list(transport.stream(BODY))
    for error in (caught.value, auth_error.value):
        assert KEY not in str(error) and KEY not in repr(error)
        assert KEY not in repr(error.body) and "[REDACTED]" in str(error)
    assert KEY not in repr(transport) and "<set>" in repr(transport)
    assert caplog.records and KEY not in caplog.text
    assert any("retry" in r.getMessage() for r in caplog.records if r.name == "fieldwise.transport")
    assert len(fake_llm.requests) == 4


def test_credentials_in_the_url_are_basic_auth_on_both_paths_and_never_shown(
    fake_llm: FakeLLM, side: Side, caplog: pytest.LogCaptureFixture
) -> None:
    """``http://user:password@host/v1`` (a reverse proxy with basic auth): both paths send
    the same Basic header to the clean URL, the URL's credentials winning over the key as
    with curl and httpx; the password shows in no error, repr or log."""
    import base64

    from fieldwise import Extractor

    password = "pr0xy:pass@w0rd"  # a colon and an @, percent-encoded in the URL
    url = fake_llm.base_url.replace("http://", "http://alice:pr0xy%3Apass%40w0rd@")
    caplog.set_level(logging.DEBUG)
    with Transport(url, KEY, backoff_base=0.01, network_retries=0) as transport:
        side.chat(transport, BODY)
        assert password not in repr(transport)
    sent = fake_llm.requests[-1]
    expected = base64.b64encode(f"alice:{password}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected}"
    assert sent.path.endswith("/chat/completions")

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    closed = f"http://alice:pr0xy%3Apass%40w0rd@127.0.0.1:{port}/v1"
    with (
        Transport(closed, KEY, network_retries=0) as transport,
        pytest.raises(E.APIConnectionError) as caught,
    ):
        side.chat(transport, BODY)
    extractor = Extractor(base_url=closed, api_key=KEY, model="m", cache=False)
    for text in (str(caught.value), repr(extractor), caplog.text):
        assert "pr0xy" not in text and expected not in text
    token_only = Extractor(base_url="http://T0KEN-4u7h@127.0.0.1:9/v1", model="m", cache=False)
    assert "T0KEN" not in repr(token_only)


def test_encoded_body_is_the_same_json_with_a_reused_response_format() -> None:
    from fieldwise.transport import encode_body

    schema = {"type": "json_schema", "json_schema": {"name": "P", "strict": True, "schema": {}}}
    for text in ("first", "sécond \udc80"):
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": text}],
            "response_format": schema,
        }
        assert json.loads(encode_body(body)) == body
    assert json.loads(encode_body({"response_format": schema})) == {"response_format": schema}
