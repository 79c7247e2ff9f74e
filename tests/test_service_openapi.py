"""The OpenAPI document describes each schema exactly and every status; schemathesis agrees.

The schemathesis run generates requests from the app's own OpenAPI document (valid and
invalid ones) and checks every response against it: status declared, body matching the
declared model, no 5xx, content types, auth really enforced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from fieldwise import Extractor
from fieldwise.plugins import register_plugin
from fieldwise.service import create_app
from fieldwise.testing import FakeLLM
from tests.test_service_support import API_KEY, SCHEMAS, SERVICE_TOKEN, NotesPlugin

EXTRACT_STATUSES = {"200", "400", "413", "415", "422", "429", "500", "502", "504"}


@pytest.fixture
def sync_extractor(fake_llm: FakeLLM, tmp_path: Path) -> Iterator[Extractor]:
    ex = Extractor(
        model="fake/model",
        base_url=fake_llm.base_url,
        api_key=API_KEY,
        cache_dir=str(tmp_path / "cache"),
        network_retries=0,
        backoff_base=0.01,
    )
    yield ex
    ex.close()


def test_each_schema_has_its_own_typed_routes(sync_extractor: Extractor) -> None:
    doc = create_app(SCHEMAS, sync_extractor, token="").openapi()
    paths = doc["paths"]
    assert {"/v1/extract/Invoice", "/v1/extract/Contact/file", "/v1/schemas/{name}"} <= set(paths)
    assert not any("{name}" in p and p.startswith("/v1/extract") for p in paths)
    operation = paths["/v1/extract/Contact"]["post"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    extraction = doc["components"]["schemas"][ok.rsplit("/", 1)[1]]
    assert extraction["properties"]["data"]["$ref"].endswith("/Contact")
    assert set(extraction["required"]) >= {"data", "usage", "cost", "cached", "model", "attempts"}
    assert set(operation["responses"]) == EXTRACT_STATUSES
    error = operation["responses"]["502"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorResponse")
    upload = paths["/v1/extract/Contact/file"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert set(upload["responses"]) == EXTRACT_STATUSES
    assert "404" in paths["/v1/schemas/{name}"]["get"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert "security" not in operation


def test_with_a_token_every_v1_route_declares_bearer_auth_and_401(
    sync_extractor: Extractor,
) -> None:
    doc = create_app(SCHEMAS, sync_extractor, token=SERVICE_TOKEN).openapi()
    for path, item in doc["paths"].items():
        for operation in item.values():
            protected = path.startswith("/v1/")
            assert ("401" in operation["responses"]) is protected
            assert bool(operation.get("security")) is protected
    schemes = doc["components"]["securitySchemes"]
    assert next(iter(schemes.values()))["scheme"] == "bearer"


def test_no_operation_declares_an_answer_it_never_gives(sync_extractor: Extractor) -> None:
    """Every error a route can give has the service's body; none is FastAPI's own 422
    (``HTTPValidationError``, ``{"detail": [...]}``), which no route of the service sends."""
    for token in ("", SERVICE_TOKEN):
        doc = create_app(SCHEMAS, sync_extractor, token=token).openapi()
        for path, item in doc["paths"].items():
            for operation in item.values():
                for status, response in operation["responses"].items():
                    if status == "200":
                        continue
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (path, status, ref)
        assert "422" not in doc["paths"]["/v1/schemas/{name}"]["get"]["responses"]
        assert {"HTTPValidationError", "ValidationError"}.isdisjoint(doc["components"]["schemas"])
        (name,) = doc["paths"]["/v1/schemas/{name}"]["get"]["parameters"]
        assert (name["name"], name["in"], name["required"]) == ("name", "path", True)


def test_every_response_declares_the_headers_it_carries(sync_extractor: Extractor) -> None:
    """``X-Request-ID`` on every answer, ``Retry-After`` on every 429 (schemathesis below
    checks that the answers really carry them)."""
    doc = create_app(SCHEMAS, sync_extractor, token=SERVICE_TOKEN).openapi()
    for path, item in doc["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                headers = response.get("headers", {})
                assert headers.get("X-Request-ID", {}).get("required"), (path, status)
                assert ("Retry-After" in headers) is (status == "429"), (path, status)
    extract = doc["paths"]["/v1/extract/Contact"]["post"]["responses"]
    assert extract["429"]["headers"]["Retry-After"]["required"]


# -- schemathesis ----------------------------------------------------------------------------


class _Deferred:
    """An ASGI app whose real app a fixture plugs in: schemathesis reads the OpenAPI document
    at import time, while the fake model server only exists during a test."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _app(extractor: Extractor, token: str = "") -> FastAPI:
    # A smaller body cap keeps generated bodies cheap; the schemas are the usual ones; the
    # token is explicit so that FIELDWISE_SERVICE_TOKEN in the environment changes nothing.
    return create_app(SCHEMAS, extractor, max_body_bytes=256 * 1024, token=token)


# Never called: it only lets the OpenAPI document be built before any fake server runs.
_PLACEHOLDER = Extractor(model="m", base_url="http://127.0.0.1:9/v1", api_key="unused")
_open = _Deferred(_app(_PLACEHOLDER))
_with_token = _Deferred(_app(_PLACEHOLDER, token=SERVICE_TOKEN))
schema = schemathesis.openapi.from_asgi("/openapi.json", _open)
schema_with_token = schemathesis.openapi.from_asgi("/openapi.json", _with_token)
# Generated cases carry the token, except those testing that auth is enforced.
schema_with_token.config.update(headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})


@pytest.fixture
def served(sync_extractor: Extractor) -> Iterator[None]:
    """Both deferred apps backed by the fake model; generated uploads (arbitrary bytes under
    arbitrary names) get a loader that takes anything, so valid requests can succeed."""
    unregister = register_plugin(NotesPlugin(), name="test-notes")
    _open.app = _app(sync_extractor)
    _with_token.app = _app(sync_extractor, token=SERVICE_TOKEN)
    yield
    _open.app = _with_token.app = _app(_PLACEHOLDER)
    unregister()


_bounded = hypothesis.settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
)


def _call_and_validate(case: Any) -> None:
    if not case.operation.path.endswith("/file"):
        case.call_and_validate()
        return
    # Two checks do not fit uploads. A schema-valid upload can be a file type no installed
    # loader reads (schemathesis sends PNGs): that 415 is the documented answer. And a form
    # carries every value as text, so a "wrong type" (a seed of "12" meant as a string, an
    # object sent as its JSON text) is often byte-identical to a valid request. Everything
    # else is checked: declared statuses and bodies, no 5xx, auth.
    response = case.call_and_validate(
        excluded_checks=[positive_data_acceptance, negative_data_rejection]
    )
    if response.status_code == 415:
        error = response.json()["error"]["type"]
        assert error in {"unsupported_file_type", "unsupported_media_type"}


@schema.parametrize()
@_bounded
def test_the_app_conforms_to_its_openapi_document(case: Any, served: None) -> None:
    _call_and_validate(case)


@schema_with_token.parametrize()
@_bounded
def test_the_app_with_a_token_conforms_to_its_openapi_document(case: Any, served: None) -> None:
    _call_and_validate(case)
