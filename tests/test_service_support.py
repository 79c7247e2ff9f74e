"""Models, fixtures and helpers shared by the ``test_service_*`` modules.

The service runs in-process (``httpx.ASGITransport``) in front of a real ``Extractor`` that
talks to the loopback ``FakeLLM``: everything below the HTTP layer is the production code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from fieldwise import Document, DocumentLoader, Extractor, hookimpl
from fieldwise.plugins import register_plugin
from fieldwise.service import create_app
from fieldwise.testing import FakeLLM

API_KEY = "sk-test-UPSTREAMKEY-0123456789abcdef"
SERVICE_TOKEN = "svc-token-SERVICESECRET-42"
BASE = "http://service.test"


class Contact(BaseModel):
    """A person to get in touch with."""

    name: str
    email: str | None = None


class LineItem(BaseModel):
    description: str
    quantity: int = Field(ge=1)
    unit_price: float


class Invoice(BaseModel):
    """An invoice: its number, lines and total."""

    number: str
    items: list[LineItem]
    total: float


SCHEMAS: list[type[BaseModel]] = [Invoice, Contact]


class NotesPlugin:
    """A document loader for ``.note`` files (and files with no suffix), so upload tests do
    not depend on which document plugins happen to be installed."""

    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        def load(data: bytes, name: str) -> Document:
            return Document(data.decode("utf-8", "replace"), metadata={"name": name})

        register(
            DocumentLoader("notes", load, suffixes=(".note", ""), media_types=("text/x-note",))
        )


@pytest.fixture(autouse=True)
def _no_service_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELDWISE_SERVICE_TOKEN", raising=False)


@pytest.fixture
def notes_loader() -> Iterator[None]:
    unregister = register_plugin(NotesPlugin(), name="test-notes")
    yield
    unregister()


@pytest.fixture
async def extractor(fake_llm: FakeLLM, tmp_path: Path) -> AsyncIterator[Extractor]:
    ex = Extractor(
        model="fake/model",
        base_url=fake_llm.base_url,
        api_key=API_KEY,
        cache_dir=str(tmp_path / "service-cache"),
        backoff_base=0.01,
        network_retries=0,
        max_retries=1,
    )
    yield ex
    await ex.aclose()


@asynccontextmanager
async def client_for(app: FastAPI, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as client:
        yield client


@pytest.fixture
async def client(extractor: Extractor) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service with default limits and no token."""
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        yield c


def assert_error(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    """The response is the service's error body with this status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == type_, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"type", "message", "field"}
    return dict(body["error"])


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The JSON objects logged on ``fieldwise.access``."""
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "fieldwise.access"]


def multipart(
    filename: str, data: bytes, content_type: str = "application/octet-stream", **fields: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with one ``file`` part and text ``fields``."""
    boundary = "fieldwise-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = b"".join(parts) + head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def no_secret_logged(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    """No captured log record, in any logger, mentions any of ``secrets``."""
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text, (record.name, secret)


def test_helpers_build_a_well_formed_multipart_body() -> None:
    body, content_type = multipart("a.note", b"hello", seed="3")
    assert content_type.startswith("multipart/form-data; boundary=")
    assert body.count(b"--fieldwise-test-boundary") == 3
    assert logging.getLogger("fieldwise.access").name == "fieldwise.access"
