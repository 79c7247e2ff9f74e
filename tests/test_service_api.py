"""The service's endpoints, error statuses, authentication and access log, in-process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from fieldwise import ConfigurationError, DocumentLoader, Extractor, compile_schema, hookimpl
from fieldwise.plugins import register_plugin
from fieldwise.service import create_app
from fieldwise.service.errors import MAX_RETRY_AFTER
from fieldwise.testing import FakeLLM, reply
from tests.test_service_support import (
    API_KEY,
    BASE,
    SCHEMAS,
    SERVICE_TOKEN,
    Contact,
    Invoice,
    access_lines,
    assert_error,
    client_for,
    multipart,
    no_secret_logged,
)

# Fixtures (imported under their own names, so pytest finds them here):
from tests.test_service_support import (
    _no_service_token as _no_service_token,
)
from tests.test_service_support import (
    client as client,
)
from tests.test_service_support import (
    extractor as extractor,
)
from tests.test_service_support import (
    notes_loader as notes_loader,
)

pytestmark = pytest.mark.anyio


# -- probes and schemas ----------------------------------------------------------------------


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_asks_the_model_endpoint_once_per_ttl(
    client: httpx.AsyncClient, fake_llm: FakeLLM
) -> None:
    first = await client.get("/readyz")
    second = await client.get("/readyz")
    assert first.status_code == second.status_code == 200
    assert first.json() == {"status": "ready", "model": "fake/model"}
    assert [r.path for r in fake_llm.requests].count("/v1/models") == 1


async def test_readyz_is_503_when_the_endpoint_is_unreachable(tmp_path: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ex = Extractor(
        model="m",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=API_KEY,
        cache_dir=str(tmp_path),
        network_retries=0,
    )
    async with client_for(create_app(SCHEMAS, ex)) as c:
        response = await c.get("/readyz")
    await ex.aclose()
    error = assert_error(response, 503, "not_ready")
    assert API_KEY not in error["message"]
    assert f"127.0.0.1:{port}" not in error["message"]  # where it lives is not the client's


async def test_readyz_is_503_whatever_the_probe_raises(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a FieldwiseError (a transport bug, an HTTP client refusing the request), with
    # the key and a URL's password in its text.
    async def broken() -> None:
        raise RuntimeError(f"refused http://user:URLPASSWORD@upstream.test/v1 ({API_KEY})")

    monkeypatch.setattr(extractor, "acheck", broken)
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        first = await c.get("/readyz")
        second = await c.get("/readyz")
    for response in (first, second):
        error = assert_error(response, 503, "not_ready")
        assert API_KEY not in error["message"] and "URLPASSWORD" not in error["message"]


async def test_list_schemas_gives_each_compiled_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/schemas")
    assert response.status_code == 200
    listed = {s["name"]: s["schema"] for s in response.json()["schemas"]}
    assert listed == {
        "Invoice": compile_schema(Invoice).schema,
        "Contact": compile_schema(Contact).schema,
    }


async def test_get_one_schema_and_an_unknown_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/schemas/Contact")
    assert response.status_code == 200
    assert response.json() == {"name": "Contact", "schema": compile_schema(Contact).schema}
    error = assert_error(await client.get("/v1/schemas/Nope"), 404, "unknown_schema")
    assert "Contact" in error["message"]


def test_create_app_rejects_bad_registrations() -> None:
    ex = Extractor(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError):
        create_app([], ex)
    with pytest.raises(ConfigurationError):
        create_app({"bad name!": Contact}, ex)
    with pytest.raises(ConfigurationError):
        create_app({"x": dict}, ex)  # type: ignore[dict-item]
    app = create_app({"person": Contact}, ex)
    assert "/v1/extract/person" in app.openapi()["paths"]


# -- extraction ------------------------------------------------------------------------------


async def test_extract_returns_the_value_usage_and_provenance(
    client: httpx.AsyncClient, fake_llm: FakeLLM
) -> None:
    fake_llm.script(reply.json({"name": "Ada Lovelace", "email": "ada@example.org"}))
    response = await client.post("/v1/extract/Contact", json={"text": "Ada, ada@example.org"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"name": "Ada Lovelace", "email": "ada@example.org"}
    assert body["cached"] is False
    assert body["model"] == "fake/model"
    assert body["attempts"] == 1
    assert body["usage"]["total_tokens"] > 0 and body["usage"]["requests"] == 1
    assert isinstance(body["cost"], float)


async def test_the_second_identical_request_is_a_cache_hit(
    client: httpx.AsyncClient, fake_llm: FakeLLM
) -> None:
    payload = {"text": "Invoice 7: 2 pens at 1.50, total 3.00"}
    first = await client.post("/v1/extract/Invoice", json=payload)
    second = await client.post("/v1/extract/Invoice", json=payload)
    assert first.status_code == second.status_code == 200
    assert second.json()["cached"] is True and second.json()["cost"] == 0
    assert second.json()["data"] == first.json()["data"]
    Invoice.model_validate(first.json()["data"])
    assert len([r for r in fake_llm.requests if r.path.endswith("/chat/completions")]) == 1


async def test_instructions_and_seed_reach_the_model(
    client: httpx.AsyncClient, fake_llm: FakeLLM
) -> None:
    response = await client.post(
        "/v1/extract/Contact",
        json={"text": "Grace", "instructions": "Names in capitals.", "seed": 7},
    )
    assert response.status_code == 200
    sent = fake_llm.requests[-1].body
    assert sent["seed"] == 7
    assert "Names in capitals." in str(sent["messages"])


@pytest.mark.parametrize("variant", ["bare", "charset", "vendor", "utf-16"])
async def test_every_json_request_gets_the_same_answer(
    extractor: Extractor, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture, variant: str
) -> None:
    """Valid JSON requests take the service's shortcut past FastAPI's routing; a body
    pydantic's JSON parser refuses (UTF-16, which ``json.loads`` reads) goes on to
    FastAPI's route. The answer and its log line must not tell them apart."""
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    fake_llm.script(reply.json({"name": "Ada", "email": None}))
    text = {"text": "Ada", "seed": 3}
    content = json.dumps(text).encode("utf-16" if variant == "utf-16" else "utf-8")
    headers = {
        "bare": {"content-type": "application/json"},
        "charset": {"content-type": "Application/JSON; charset=utf-8"},
        "vendor": {"content-type": "application/vnd.api+json"},
        "utf-16": {"content-type": "application/json"},
    }[variant]
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post("/v1/extract/Contact", content=content, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] == {"name": "Ada", "email": None}
    assert (body["cached"], body["attempts"], body["model"]) == (False, 1, "fake/model")
    assert fake_llm.requests[-1].body["seed"] == 3
    (line,) = access_lines(caplog)
    assert (line["status"], line["schema"], line["cached"]) == (200, "Contact", False)
    assert line["total_tokens"] == body["usage"]["total_tokens"] and line["error"] is None


async def test_mounted_under_a_prefix(extractor: Extractor, fake_llm: FakeLLM) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/forms", app=create_app(SCHEMAS, extractor))])
    async with client_for(outer) as c:  # type: ignore[arg-type]
        ok = await c.post("/forms/v1/extract/Contact", json={"text": "Ada"})
        unknown = await c.post("/forms/v1/extract/Nope", json={"text": "Ada"})
        outside = await c.post("/v1/extract/Contact", json={"text": "Ada"})
    assert ok.status_code == 200 and ok.json()["data"]["name"]
    assert_error(unknown, 404, "unknown_schema")
    assert outside.status_code == 404
    assert len([r for r in fake_llm.requests if r.path.endswith("/chat/completions")]) == 1


class UnreadBody:
    """A streamed request body that records whether the service pulled any of it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pulled = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.pulled = True
        yield self.data


def mounted_at_api(app: FastAPI) -> httpx.AsyncClient:
    """A client of ``app`` mounted at ``/api`` inside another application."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/api", app=app)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url=BASE)


def behind_root_path_api(app: FastAPI) -> httpx.AsyncClient:
    """A client of ``app`` served with ``root_path="/api"`` (``uvicorn --root-path /api``)."""
    transport = httpx.ASGITransport(app=app, root_path="/api")
    return httpx.AsyncClient(transport=transport, base_url=BASE)


@pytest.mark.parametrize("client_of", [mounted_at_api, behind_root_path_api])
async def test_the_token_is_required_however_the_app_is_mounted(
    extractor: Extractor,
    fake_llm: FakeLLM,
    notes_loader: None,
    client_of: Callable[[FastAPI], httpx.AsyncClient],
) -> None:
    app = create_app(SCHEMAS, extractor, token=SERVICE_TOKEN)
    body, ctype = multipart("a.note", b"Ada")
    streamed = UnreadBody(b'{"text": "Ada"}')
    async with client_of(app) as c:
        refused = [
            await c.post("/api/v1/extract/Contact", json={"text": "Ada"}),  # the shortcut
            await c.post("/api/v1/extract/Contact", content=b'{"text": "Ada"}'),  # the route
            await c.post(
                "/api/v1/extract/Contact/file", content=body, headers={"content-type": ctype}
            ),
            await c.get("/api/v1/schemas"),
            await c.get("/api/v1/schemas/Contact"),
            await c.post("/api/v1/extract/Nope", json={"text": "Ada"}),
            await c.post(
                "/api/v1/extract/Contact",
                content=streamed,
                headers={"content-type": "application/json"},
            ),
        ]
        public = await c.get("/api/healthz")
        c.headers["authorization"] = f"Bearer {SERVICE_TOKEN}"
        ok = await c.post("/api/v1/extract/Contact", json={"text": "Ada"})
        listed = await c.get("/api/v1/schemas")
    for response in refused:
        assert_error(response, 401, "unauthorized")
    assert not streamed.pulled  # refused before any of the body was read
    assert public.status_code == 200
    assert ok.status_code == 200 and listed.status_code == 200
    chats = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 1  # the authenticated request only


async def test_a_non_ascii_token_sent_as_utf8_is_accepted(extractor: Extractor) -> None:
    token = "tökén-SERVICESECRET-ü"
    app = create_app(SCHEMAS, extractor, token=token)
    async with client_for(app) as c:
        utf8 = await c.get("/v1/schemas", headers={b"authorization": f"Bearer {token}".encode()})
        extracted = await c.post(
            "/v1/extract/Contact",
            json={"text": "Ada"},
            headers={b"authorization": f"Bearer {token}".encode()},
        )
        other_bytes = await c.get(
            "/v1/schemas", headers={b"authorization": f"Bearer {token}".encode("latin-1")}
        )
    assert utf8.status_code == 200 and extracted.status_code == 200
    assert_error(other_bytes, 401, "unauthorized")


async def test_unknown_schema_is_404_for_both_routes(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/v1/extract/Nope", json={"text": "x"}), 404, "unknown_schema")
    body, ctype = multipart("a.note", b"x")
    response = await client.post(
        "/v1/extract/Nope/file", content=body, headers={"content-type": ctype}
    )
    assert_error(response, 404, "unknown_schema")
    assert_error(await client.get("/nowhere"), 404, "not_found")
    assert_error(await client.get("/v1/extract/Contact"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("kwargs", "status", "type_", "field"),
    [
        ({"json": {}}, 422, "validation_error", "text"),
        ({"json": {"text": ""}}, 422, "validation_error", "text"),
        ({"json": {"text": "x", "seed": -1}}, 422, "validation_error", "seed"),
        ({"json": {"text": "x", "colour": "red"}}, 422, "validation_error", "colour"),
        ({"json": ["text"]}, 422, "validation_error", None),
        (
            {"content": b'{"text": ', "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
            None,
        ),
        (
            {"content": b"text=x", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
            None,
        ),
    ],
)
async def test_bad_requests(
    client: httpx.AsyncClient,
    kwargs: dict[str, Any],
    status: int,
    type_: str,
    field: str | None,
) -> None:
    error = assert_error(await client.post("/v1/extract/Contact", **kwargs), status, type_)
    assert error.get("field") == field


@pytest.mark.parametrize(
    ("replies", "status", "type_"),
    [
        ([reply.http_error(429, retry_after=3)], 429, "upstream_rate_limited"),
        ([reply.http_error(500)], 502, "upstream_error"),
        ([reply.http_error(401)], 502, "upstream_error"),
        ([reply.http_error(402)], 502, "upstream_error"),
        ([reply.http_error(400, "maximum context length exceeded")], 400, "input_too_long"),
        ([reply.http_error(403)], 400, "input_flagged"),
        ([reply.refusal()], 502, "unusable_output"),
        ([reply.truncated()], 502, "unusable_output"),
        ([reply.json({"email": 1}), reply.json({"email": 2})], 502, "extraction_failed"),
        ([reply.drop()], 502, "upstream_unreachable"),
    ],
)
async def test_upstream_failures_map_to_statuses(
    client: httpx.AsyncClient, fake_llm: FakeLLM, replies: list[Any], status: int, type_: str
) -> None:
    fake_llm.script(*replies)
    response = await client.post("/v1/extract/Contact", json={"text": "someone"})
    error = assert_error(response, status, type_)
    assert API_KEY not in response.text
    assert fake_llm.base_url.split("//")[1] not in response.text  # nor where it lives
    if status == 429:
        assert response.headers["retry-after"] == "3"
    if type_ == "extraction_failed":
        assert error["field"] == "name"


@pytest.mark.parametrize(
    "retry_after", ["inf", "1e400", "-inf", "nan", "1e30", "Wed, 21 Oct 2099 07:28:00 GMT"]
)
async def test_an_upstream_retry_after_of_any_size_gives_a_sane_one(
    client: httpx.AsyncClient, fake_llm: FakeLLM, retry_after: str
) -> None:
    fake_llm.script(reply.http_error(429, retry_after=retry_after))
    response = await client.post("/v1/extract/Contact", json={"text": "someone"})
    assert_error(response, 429, "upstream_rate_limited")
    seconds = response.headers["retry-after"]
    assert seconds.isdigit() and 1 <= int(seconds) <= MAX_RETRY_AFTER


async def test_upstream_timeout_is_504(fake_llm: FakeLLM, tmp_path: Any) -> None:
    ex = Extractor(
        model="m",
        base_url=fake_llm.base_url,
        api_key=API_KEY,
        cache_dir=str(tmp_path),
        network_retries=0,
        timeout=0.2,
    )
    fake_llm.script(reply.slow(5.0))
    async with client_for(create_app(SCHEMAS, ex)) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x"})
    await ex.aclose()
    assert_error(response, 504, "upstream_timeout")
    assert fake_llm.base_url.split("//")[1] not in response.text


async def test_unexpected_errors_are_500_without_details(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail: /srv/secret/path")

    monkeypatch.setattr(extractor, "arun", broken)
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x"})
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in error["message"]
    assert response.headers["x-request-id"]


async def test_configuration_errors_are_500(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def misconfigured(*args: Any, **kwargs: Any) -> Any:
        raise ConfigurationError("No API key for OpenRouter.")

    monkeypatch.setattr(extractor, "arun", misconfigured)
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x"})
    assert_error(response, 500, "configuration_error")


# -- uploads ---------------------------------------------------------------------------------


async def test_upload_goes_through_the_document_loaders(
    client: httpx.AsyncClient, fake_llm: FakeLLM, notes_loader: None
) -> None:
    body, ctype = multipart(
        "../../etc/meeting.note",
        b"Call Ada at ada@example.org",
        instructions="Be brief.",
        seed="11",
    )
    response = await client.post(
        "/v1/extract/Contact/file", content=body, headers={"content-type": ctype}
    )
    assert response.status_code == 200, response.text
    Contact.model_validate(response.json()["data"])
    sent = fake_llm.requests[-1].body
    assert "Call Ada at ada@example.org" in str(sent["messages"])
    assert "Be brief." in str(sent["messages"]) and sent["seed"] == 11


@pytest.mark.parametrize(
    ("filename", "data", "fields", "status", "type_"),
    [
        ("scan.xyz", b"\x00\x01", {}, 415, "unsupported_file_type"),
        ("a.note", b"", {}, 400, "bad_request"),
        ("a.note", b"x", {"seed": "many"}, 422, "validation_error"),
        ("a.note", b"x", {"seed": ""}, 422, "validation_error"),
        ("a.note", b"x", {"seed": "1_000"}, 422, "validation_error"),
    ],
)
async def test_upload_errors(
    client: httpx.AsyncClient,
    notes_loader: None,
    filename: str,
    data: bytes,
    fields: dict[str, str],
    status: int,
    type_: str,
) -> None:
    body, ctype = multipart(filename, data, **fields)
    response = await client.post(
        "/v1/extract/Contact/file", content=body, headers={"content-type": ctype}
    )
    assert_error(response, status, type_)


async def test_upload_needs_a_multipart_body_with_a_file(client: httpx.AsyncClient) -> None:
    url = "/v1/extract/Contact/file"
    assert_error(await client.post(url, json={"text": "x"}), 415, "unsupported_media_type")
    no_file = await client.post(url, data={"instructions": "x"}, files={"other": ("a", b"b")})
    assert assert_error(no_file, 422, "validation_error")["field"] == "file"
    broken = await client.post(
        url, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert_error(broken, 400, "bad_request")
    no_boundary = await client.post(
        url, content=b"x", headers={"content-type": "multipart/form-data"}
    )
    assert_error(no_boundary, 400, "bad_request")


@pytest.mark.parametrize(
    "cut",
    [
        lambda body: body[: body.rindex(b"\r\n--")],  # no closing boundary
        lambda body: body[:60],  # in the part's headers
        lambda body: body[:-4] + b"\r\n",  # a boundary, then nothing
        lambda body: b"",  # nothing at all
    ],
    ids=["no-closing-boundary", "in-the-headers", "after-a-boundary", "empty"],
)
async def test_a_truncated_multipart_body_is_400(
    client: httpx.AsyncClient,
    fake_llm: FakeLLM,
    notes_loader: None,
    cut: Callable[[bytes], bytes],
) -> None:
    body, ctype = multipart("a.note", b"Ada Lovelace")
    response = await client.post(
        "/v1/extract/Contact/file", content=cut(body), headers={"content-type": ctype}
    )
    assert_error(response, 400, "bad_request")
    assert not [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]


# -- authentication --------------------------------------------------------------------------


async def test_token_is_required_on_v1_routes_only(extractor: Extractor) -> None:
    app = create_app(SCHEMAS, extractor, token=SERVICE_TOKEN)
    async with client_for(app) as c:
        missing = await c.get("/v1/schemas")
        assert_error(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await c.get("/v1/schemas", headers={"authorization": "Bearer nope"})
        assert_error(wrong, 401, "unauthorized")
        basic = await c.get("/v1/schemas", headers={"authorization": f"Basic {SERVICE_TOKEN}"})
        assert_error(basic, 401, "unauthorized")
        # An unknown name must not be told apart from a known one without the token.
        assert_error(await c.post("/v1/extract/Nope", json={"text": "x"}), 401, "unauthorized")
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/readyz")).status_code == 200
    auth = {"authorization": f"Bearer {SERVICE_TOKEN}"}
    async with client_for(app, **auth) as c:
        assert (await c.get("/v1/schemas")).status_code == 200
        assert (await c.post("/v1/extract/Contact", json={"text": "x"})).status_code == 200


async def test_token_comes_from_the_environment_unless_disabled(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDWISE_SERVICE_TOKEN", SERVICE_TOKEN)
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        assert_error(await c.get("/v1/schemas"), 401, "unauthorized")
    async with client_for(create_app(SCHEMAS, extractor, token="")) as c:
        assert (await c.get("/v1/schemas")).status_code == 200


# -- access log ------------------------------------------------------------------------------


async def test_access_log_has_one_json_line_per_request(
    extractor: Extractor, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    app = create_app(SCHEMAS, extractor, token=SERVICE_TOKEN)
    async with client_for(app, authorization=f"Bearer {SERVICE_TOKEN}") as c:
        ok = await c.post(
            "/v1/extract/Contact",
            json={"text": "CONFIDENTIAL-DOCUMENT-TEXT", "instructions": "PRIVATE-INSTRUCTION"},
        )
        cached = await c.post(
            "/v1/extract/Contact",
            json={"text": "CONFIDENTIAL-DOCUMENT-TEXT", "instructions": "PRIVATE-INSTRUCTION"},
            headers={"x-request-id": "client-chosen-id.1"},
        )
        fake_llm.script(reply.http_error(500, "upstream says CONFIDENTIAL-DOCUMENT-TEXT"))
        failed = await c.post("/v1/extract/Invoice", json={"text": "CONFIDENTIAL-DOCUMENT-TEXT"})
        odd_id = await c.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    lines = access_lines(caplog)
    assert len(lines) == 4
    first, second, third, fourth = lines
    assert first["request_id"] == ok.headers["x-request-id"]
    assert first["method"] == "POST" and first["path"] == "/v1/extract/Contact"
    assert first["schema"] == "Contact" and first["status"] == 200
    assert first["cached"] is False and first["total_tokens"] > 0
    assert first["cost"] == ok.json()["cost"] and first["error"] is None
    assert isinstance(first["latency_ms"], float)
    assert second["request_id"] == cached.headers["x-request-id"] == "client-chosen-id.1"
    assert second["cached"] is True and second["cost"] == 0
    assert third["status"] == failed.status_code == 502 and third["error"] == "upstream_error"
    assert fourth["request_id"] == odd_id.headers["x-request-id"] != "bad id\twith spaces"
    assert fourth["schema"] is None and fourth["total_tokens"] is None
    no_secret_logged(
        caplog, "CONFIDENTIAL-DOCUMENT-TEXT", "PRIVATE-INSTRUCTION", API_KEY, SERVICE_TOKEN
    )


async def test_request_ids_are_distinct_32_hex_digits(client: httpx.AsyncClient) -> None:
    ids = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    ids.append(
        (await client.post("/v1/extract/Contact", json={"text": "Ada"})).headers["x-request-id"]
    )
    assert len(set(ids)) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_middleware_added_after_create_app_sees_every_request(
    extractor: Extractor, fake_llm: FakeLLM
) -> None:
    """The service enters its own middleware directly only when nothing stands in front of
    it; a user's middleware (here one that refuses everything) still sees the JSON
    extraction requests the shortcut would otherwise answer."""
    seen: list[str] = []

    class Gate:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
                await send({"type": "http.response.start", "status": 403, "headers": []})
                await send({"type": "http.response.body", "body": b"no"})
                return
            await self.app(scope, receive, send)

    app = create_app(SCHEMAS, extractor)
    app.add_middleware(Gate)
    async with client_for(app) as c:
        first = await c.post("/v1/extract/Contact", json={"text": "Ada"})
        second = await c.post("/v1/extract/Contact", json={"text": "Ada"})
    assert first.status_code == second.status_code == 403
    assert seen == ["/v1/extract/Contact"] * 2
    assert not [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_request_ids_differ_across_forked_workers(tmp_path: Any) -> None:
    """A pre-fork server (gunicorn --preload) forks workers after the app was built: each
    worker draws its own prefix, so ids never repeat across workers."""
    ex = Extractor(model="m", base_url="http://127.0.0.1:9/v1", api_key=API_KEY, cache=False)
    app = create_app(SCHEMAS, ex)

    async def ids() -> list[str]:
        async with client_for(app) as c:
            return [(await c.get("/healthz")).headers["x-request-id"] for _ in range(2)]

    got: list[list[str]] = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.write(write, " ".join(asyncio.run(ids())).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        got.append(os.read(read, 1000).decode().split())
        os.close(read)
    assert len(got[0]) == len(got[1]) == 2
    assert not set(got[0]) & set(got[1])


async def test_instrumentation_around_the_app_sees_every_request(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct entrance is skipped when the built stack was wrapped afterwards (the way
    OpenTelemetry's instrument_app swaps build_middleware_stack) or Starlette's entrance
    was patched (the way Sentry's integration does)."""
    seen = {"wrapped_stack": 0, "patched_call": 0}

    class Counting:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen["wrapped_stack"] += 1
            await self.app(scope, receive, send)

    app = create_app(SCHEMAS, extractor)
    original_build = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        return Counting(original_build())

    monkeypatch.setattr(app, "build_middleware_stack", build_middleware_stack)
    original_call = Starlette.__call__

    async def patched_call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen["patched_call"] += 1
        await original_call(self, scope, receive, send)

    monkeypatch.setattr(Starlette, "__call__", patched_call)
    async with client_for(app) as c:
        for _ in range(3):
            assert (await c.post("/v1/extract/Contact", json={"text": "Ada"})).status_code == 200
    assert seen == {"wrapped_stack": 3, "patched_call": 3}


async def test_a_parent_apps_body_limit_is_logged_as_413(
    extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    """Mounted in an app with its own ``max_body_size``, a body past that limit is the
    parent's 413, and the access log says 413 too (not an internal error)."""
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    parent = Starlette(routes=[Mount("/svc", app=create_app(SCHEMAS, extractor))], max_body_size=40)
    async with client_for(parent) as c:
        response = await c.post("/svc/v1/extract/Contact", json={"text": "A" * 100})
    assert response.status_code == 413
    line = access_lines(caplog)[-1]
    assert line["status"] == 413 and line["error"] == "payload_too_large"
    assert not [
        r for r in caplog.records if r.name == "fieldwise.service" and r.levelname == "ERROR"
    ]


async def test_docs_false_serves_no_api_description(extractor: Extractor) -> None:
    app = create_app(SCHEMAS, extractor, docs=False)
    async with client_for(app) as c:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert_error(await c.get(path), 404, "not_found")
        assert (await c.post("/v1/extract/Contact", json={"text": "Ada"})).status_code == 200
    assert "/v1/extract/Contact" in app.openapi()["paths"]  # still built in-process
    async with client_for(create_app(SCHEMAS, extractor)) as c:  # the default: served
        assert (await c.get("/openapi.json")).status_code == 200
        assert (await c.get("/docs")).status_code == 200


async def test_a_refused_extraction_is_logged_with_its_schema(
    extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post("/v1/extract/Contact", json={"txt": "a misspelt key"})
    assert response.status_code == 422
    line = access_lines(caplog)[-1]
    assert line["schema"] == "Contact" and line["status"] == 422


async def test_a_422_names_each_problem_of_the_body(client: httpx.AsyncClient) -> None:
    """A misspelt key gives two errors (the right key missing, the wrong one not allowed):
    the message names both, so the client sees what to change."""
    error = assert_error(
        await client.post("/v1/extract/Contact", json={"txt": "Ada"}), 422, "validation_error"
    )
    message = error["message"]
    assert "text: Field required" in message and "txt:" in message
    assert error["field"] == "text"


async def test_rejected_requests_are_logged_too(
    extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    app = create_app(SCHEMAS, extractor, token=SERVICE_TOKEN)
    async with client_for(app, authorization="Bearer wrong-guess-token") as c:
        await c.get("/v1/schemas")
    (line,) = access_lines(caplog)
    assert line["status"] == 401 and line["error"] == "unauthorized"
    no_secret_logged(caplog, SERVICE_TOKEN, "wrong-guess-token")


async def test_upload_form_fields_must_be_well_formed(
    client: httpx.AsyncClient, notes_loader: None
) -> None:
    url = "/v1/extract/Contact/file"
    not_a_file = await client.post(url, data={"file": "just text"}, files={"x": ("x", b"1")})
    assert assert_error(not_a_file, 422, "validation_error")["field"] == "file"
    twice = await client.post(
        url,
        files=[
            ("file", ("a.note", b"x")),
            ("instructions", (None, b"one")),
            ("instructions", (None, b"two")),
        ],
    )
    assert assert_error(twice, 422, "validation_error")["field"] == "instructions"
    two_files = await client.post(
        url, files=[("file", ("a.note", b"x")), ("file", ("b.note", b"y"))]
    )
    assert assert_error(two_files, 422, "validation_error")["field"] == "file"


# -- clients that leave, tokens from secret files, what a client is told ---------------------


async def _post_and_leave(app: FastAPI, path: str, content_type: str, sent: bytes) -> list[Any]:
    """Drive ``app`` as a server would for a client that sends part of a 5000-byte body and
    then closes the connection; the messages the app sent back."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"service.test"),
            (b"content-type", content_type.encode()),
            (b"content-length", b"5000"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("service.test", 80),
    }
    pending = [{"type": "http.request", "body": sent, "more_body": True}]
    answered: list[Any] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        answered.append(message)

    await app(scope, receive, send)
    return answered


@pytest.mark.parametrize(
    ("path", "content_type", "sent"),
    [
        (
            "/v1/extract/Contact/file",
            "multipart/form-data; boundary=XX",
            b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.note"\r\n\r\nAda',
        ),
        ("/v1/extract/Contact", "application/json", b'{"text": "Ad'),  # the shortcut
        ("/v1/extract/Contact", "text/plain", b"Ad"),  # FastAPI's route reads it
    ],
    ids=["upload", "json", "other-type"],
)
async def test_a_client_that_leaves_mid_body_is_logged_as_499(
    extractor: Extractor,
    fake_llm: FakeLLM,
    notes_loader: None,
    caplog: pytest.LogCaptureFixture,
    path: str,
    content_type: str,
    sent: bytes,
) -> None:
    """Nginx's 499: the client closed the connection before it was answered. Nobody is
    left to answer, and it is no error of the service's (no 500, no traceback)."""
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    answered = await _post_and_leave(create_app(SCHEMAS, extractor), path, content_type, sent)
    assert answered == []
    (line,) = access_lines(caplog)
    assert (line["status"], line["error"], line["schema"]) == (499, "client_closed", "Contact")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]


async def test_the_service_token_is_taken_without_surrounding_whitespace(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token read from a secret file ends with a newline that no client sends."""
    auth = {"authorization": f"Bearer {SERVICE_TOKEN}"}
    monkeypatch.setenv("FIELDWISE_SERVICE_TOKEN", f"{SERVICE_TOKEN}\n")
    async with client_for(create_app(SCHEMAS, extractor), **auth) as c:
        from_env = await c.get("/v1/schemas")
    async with client_for(create_app(SCHEMAS, extractor, token=f" {SERVICE_TOKEN}\t"), **auth) as c:
        given = await c.get("/v1/schemas")
        assert_error(
            await c.get("/v1/schemas", headers={"authorization": "Bearer x"}), 401, "unauthorized"
        )
    assert from_env.status_code == given.status_code == 200


@pytest.mark.parametrize(
    "token", ["svc token", "svc\ttoken", "svc\x1btoken", "svc\x7ftoken", "\n", " \r\n "]
)
@pytest.mark.parametrize("source", ["environment", "argument"])
def test_a_token_no_client_can_send_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, token: str, source: str
) -> None:
    """Whitespace or a control character inside it, or nothing but whitespace: no bearer
    header could carry it, so every client would get 401. Say so at start instead."""
    ex = Extractor(model="m", base_url="http://127.0.0.1:9/v1", api_key=API_KEY)
    if source == "environment":
        monkeypatch.setenv("FIELDWISE_SERVICE_TOKEN", token)
    with pytest.raises(ConfigurationError) as refused:
        create_app(SCHEMAS, ex, token=token if source == "argument" else None)
    assert "service token" in str(refused.value)
    assert "svc" not in str(refused.value)  # nor any part of it


async def test_upload_failures_are_logged_with_their_schema(
    client: httpx.AsyncClient, notes_loader: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    url = "/v1/extract/Contact/file"
    for body, ctype in (
        multipart("scan.xyz", b"\x00\x01"),  # 415: no loader reads it
        multipart("a.note", b""),  # 400: empty
        multipart("a.note", b"x", seed="many"),  # 422
        multipart("a.note", b"x", instructions="i" * (65 * 1024)),  # 413: a field over 64 KiB
    ):
        await client.post(url, content=body, headers={"content-type": ctype})
    await client.post(url, content=b"x", headers={"content-type": "text/plain"})  # 415
    lines = access_lines(caplog)
    assert [line["status"] for line in lines] == [415, 400, 422, 413, 415]
    assert {line["schema"] for line in lines} == {"Contact"}


#: advice meant for a Python caller of the library, which an HTTP client cannot act on
LIBRARY_ADVICE = (
    "max_retries",
    "max_tokens=",
    "rate_limit=",
    "run_many",
    "provider=",
    "API_KEY",
    "api_key=",
    "base_url",
    "pip install",
    "reasoning",
    "instructions=",
)


LIBRARY_ERRORS = {
    "ProviderError",
    "RateLimitError",
    "AuthenticationError",
    "InsufficientCreditsError",
    "BadRequestError",
    "ContextLengthError",
    "ModerationError",
    "RefusalError",
    "TruncatedOutputError",
    "EmptyOutputError",
    "ExtractionError",
    "APIConnectionError",
}


@pytest.mark.parametrize(
    ("replies", "status", "says"),
    [
        ([reply.http_error(500)], 502, "try again later"),
        ([reply.error_in_body(500, "boom")], 502, "try again later"),
        ([reply.http_error(429, retry_after=3)], 429, "Retry-After"),
        ([reply.http_error(401)], 502, "operator"),
        ([reply.http_error(402)], 502, "operator"),
        ([reply.http_error(404)], 502, "operator"),
        ([reply.http_error(400, "maximum context length exceeded")], 400, "shorten"),
        ([reply.http_error(403)], 400, "moderation"),
        ([reply.refusal()], 502, "refused"),
        ([reply.truncated()], 502, "shorter"),
        ([reply.empty()], 502, "try again"),
        ([reply.malformed(), reply.malformed()], 502, "try again"),
        ([reply.drop()], 502, "try again later"),
    ],
)
async def test_error_messages_say_what_the_http_client_can_do(
    client: httpx.AsyncClient,
    fake_llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
    replies: list[Any],
    status: int,
    says: str,
) -> None:
    """The library's messages advise a Python caller (``max_retries=``, ``run_many``, which
    key to check); an HTTP client gets the service's own sentence, and the library's goes to
    the service log."""
    caplog.set_level(logging.DEBUG, logger="fieldwise.service")
    fake_llm.script(*replies)
    response = await client.post("/v1/extract/Contact", json={"text": "someone"})
    assert response.status_code == status
    message = response.json()["error"]["message"]
    assert says.lower() in message.lower(), message
    for advice in LIBRARY_ADVICE:
        assert advice not in message, (advice, message)
    assert "model endpoint the model endpoint" not in message
    assert message.count("HTTP") <= 1, message
    logged = [r.getMessage() for r in caplog.records if r.name == "fieldwise.service"]
    # the library's own message ("ProviderError: HTTP 500 from ...") is the operator's
    assert any(line.startswith(f"{name}: ") for line in logged for name in LIBRARY_ERRORS)


class _BrokenLoader:
    """A loader plugin that breaks its contract (returns text, not a Document)."""

    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        register(DocumentLoader("broken", lambda data, name: "just text", suffixes=(".brk",)))


async def test_a_broken_plugin_is_a_500_with_its_traceback_for_the_operator(
    extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    unregister = register_plugin(_BrokenLoader(), name="test-broken-loader")
    try:
        async with client_for(create_app(SCHEMAS, extractor)) as c:
            response = await c.post(
                "/v1/extract/Contact/file", files={"file": ("a.brk", b"x", "text/plain")}
            )
    finally:
        unregister()
    assert_error(response, 500, "internal_error")
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None and "test-broken-loader" in str(record.exc_info[1])


async def test_control_characters_in_an_upload_name_never_reach_the_log(
    extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    """A line break in a file name would forge a line in the service's log (its errors
    name the file): the name keeps its printable characters only."""
    caplog.set_level(logging.DEBUG)
    name = 'bad\nfieldwise.access INFO {"request_id":"forged"}\r\u2028.pdf'
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post("/v1/extract/Contact/file", files={"file": (name, b"no pdf")})
    assert response.status_code == 415
    assert any("forged" in r.getMessage() for r in caplog.records)  # named, on one line
    for record in caplog.records:
        message = record.getMessage()
        assert "forged" not in message or not any(c in message for c in "\n\r\u2028")


async def test_a_file_a_loader_refuses_is_answered_with_the_loaders_reason(
    extractor: Extractor,
) -> None:
    """Encrypted, damaged, a scan, too large, built to exhaust the reader: the client is
    told which, not only that the type is not read."""
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        damaged = await c.post("/v1/extract/Contact/file", files={"file": ("a.pdf", b"no pdf")})
        deep = ("<div>" * 5000).encode()
        nested = await c.post("/v1/extract/Contact/file", files={"file": ("a.html", deep)})
        unknown = await c.post("/v1/extract/Contact/file", files={"file": ("a.zzz", b"x")})
    assert_error(damaged, 415, "unsupported_file_type")
    assert "a.pdf: this is not a PDF" in damaged.json()["error"]["message"]
    assert "nest more than 4096 deep" in nested.json()["error"]["message"]
    assert "no document loader for this type" in unknown.json()["error"]["message"]


async def test_a_model_endpoints_message_is_logged_on_one_line(
    extractor: Extractor, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    """What the endpoint says is logged for the operator (here: a refused key), but a line
    break in it cannot start a forged line of its own."""
    caplog.set_level(logging.DEBUG, logger="fieldwise.service")
    forged = 'bad key\nfieldwise.access INFO {"request_id":"forged"}'
    fake_llm.script(reply.http_error(401, forged))
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x"})
    assert response.status_code == 502
    logged = [r.getMessage() for r in caplog.records if r.name == "fieldwise.service"]
    assert any("forged" in m for m in logged)
    assert all("\n" not in m for m in logged if "forged" in m)
