"""Size caps enforced while the body streams, the concurrency cap and the request timeout."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from fieldwise import Document, DocumentLoader, Extractor, hookimpl
from fieldwise.plugins import register_plugin
from fieldwise.service import create_app
from fieldwise.service.limits import UpstreamLimiter
from fieldwise.testing import FakeLLM, RecordedRequest, Reply, reply
from tests.test_service_support import (
    BASE,
    SCHEMAS,
    SERVICE_TOKEN,
    access_lines,
    assert_error,
    client_for,
    multipart,
)

# Fixtures (imported under their own names, so pytest finds them here):
from tests.test_service_support import (
    _no_service_token as _no_service_token,
)
from tests.test_service_support import (
    extractor as extractor,
)
from tests.test_service_support import (
    notes_loader as notes_loader,
)

pytestmark = pytest.mark.anyio
MiB = 1024 * 1024


class CountingBody:
    """An async request body that counts how many of its chunks were actually pulled."""

    def __init__(self, head: bytes, chunk: bytes, count: int, tail: bytes = b"") -> None:
        self.head, self.chunk, self.count, self.tail = head, chunk, count, tail
        self.pulled = 0

    @property
    def size(self) -> int:
        return len(self.head) + len(self.chunk) * self.count + len(self.tail)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.pulled += 1
        yield self.head
        for _ in range(self.count):
            self.pulled += 1
            yield self.chunk
        self.pulled += 1
        yield self.tail


def upload_head(filename: str = "huge.note") -> tuple[bytes, bytes, str]:
    body, content_type = multipart(filename, b"@@DATA@@")
    head, tail = body.split(b"@@DATA@@")
    return head, tail, content_type


# -- body size -------------------------------------------------------------------------------


async def test_declared_oversized_json_body_is_refused_unread(
    extractor: Extractor, fake_llm: FakeLLM
) -> None:
    app = create_app(SCHEMAS, extractor, max_body_bytes=1000)
    async with client_for(app) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x" * 2000})
        ok = await c.post("/v1/extract/Contact", json={"text": "x" * 500})
    assert_error(response, 413, "payload_too_large")
    assert response.headers["connection"] == "close"
    assert ok.status_code == 200
    assert len([r for r in fake_llm.requests if r.method == "POST"]) == 1


async def test_streamed_json_body_is_cut_off_at_the_limit(
    extractor: Extractor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    body = CountingBody(b'{"text": "', b"y" * 1024, 10_000, b'"}')
    app = create_app(SCHEMAS, extractor, max_body_bytes=8 * 1024)
    async with client_for(app) as c:
        response = await c.post(
            "/v1/extract/Contact", content=body, headers={"content-type": "application/json"}
        )
    assert_error(response, 413, "payload_too_large")
    assert body.pulled <= 10  # ~8 KiB read of a 10 MB body
    (line,) = access_lines(caplog)
    assert line["status"] == 413 and line["error"] == "payload_too_large"


async def test_a_2_gb_streamed_upload_is_refused_without_being_read(
    extractor: Extractor, notes_loader: None
) -> None:
    head, tail, content_type = upload_head()
    body = CountingBody(head, b"z" * MiB, 2048, tail)  # 2 GiB, generated lazily
    app = create_app(SCHEMAS, extractor, max_upload_bytes=4 * MiB)
    async with client_for(app) as c:
        response = await c.post(
            "/v1/extract/Contact/file", content=body, headers={"content-type": content_type}
        )
    assert_error(response, 413, "payload_too_large")
    assert body.pulled <= 6  # the head and about 4 MiB, of 2 GiB


async def test_a_declared_2_gb_upload_is_refused_before_reading(extractor: Extractor) -> None:
    head, tail, content_type = upload_head()
    body = CountingBody(head, b"z" * MiB, 2048, tail)
    app = create_app(SCHEMAS, extractor, max_upload_bytes=4 * MiB)
    async with client_for(app) as c:
        response = await c.post(
            "/v1/extract/Contact/file",
            content=body,
            headers={"content-type": content_type, "content-length": str(body.size)},
        )
    assert_error(response, 413, "payload_too_large")
    assert body.pulled == 0


async def test_uploads_have_their_own_larger_cap(
    extractor: Extractor, notes_loader: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    app = create_app(SCHEMAS, extractor, max_body_bytes=1024, max_upload_bytes=64 * 1024)
    note = b"Ada Lovelace, ada@example.org. " * 600  # ~18 KiB: over the JSON cap only
    body, content_type = multipart("contacts.note", note)
    async with client_for(app) as c:
        ok = await c.post(
            "/v1/extract/Contact/file", content=body, headers={"content-type": content_type}
        )
        long_field = multipart("a.note", b"x", instructions="i" * (65 * 1024))
        too_long = await c.post(
            "/v1/extract/Contact/file",
            content=long_field[0],
            headers={"content-type": long_field[1]},
        )
    assert ok.status_code == 200, ok.text
    assert_error(too_long, 413, "payload_too_large")
    assert [line["status"] for line in access_lines(caplog)] == [200, 413]


@pytest.mark.parametrize("how", ["mount", "root_path"])
async def test_each_route_keeps_its_cap_under_a_prefix(
    extractor: Extractor, notes_loader: None, how: str
) -> None:
    app = create_app(SCHEMAS, extractor, max_body_bytes=1024, max_upload_bytes=64 * 1024)
    if how == "mount":
        outer = Starlette(routes=[Mount("/api", app=app)])
        transport = httpx.ASGITransport(app=outer)
    else:
        transport = httpx.ASGITransport(app=app, root_path="/api")
    note = b"Ada Lovelace, ada@example.org. " * 600  # ~18 KiB: over the JSON cap only
    body, content_type = multipart("contacts.note", note)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        upload = await c.post(
            "/api/v1/extract/Contact/file", content=body, headers={"content-type": content_type}
        )
        too_big = await c.post("/api/v1/extract/Contact", json={"text": "x" * 2000})
        huge_upload = await c.post(
            "/api/v1/extract/Contact/file",
            content=multipart("big.note", b"z" * (65 * 1024))[0],
            headers={"content-type": content_type},
        )
    assert upload.status_code == 200, upload.text
    assert_error(too_big, 413, "payload_too_large")
    assert_error(huge_upload, 413, "payload_too_large")


# -- concurrency and time --------------------------------------------------------------------


async def test_requests_beyond_the_cap_get_429_once_the_queue_wait_expires(
    extractor: Extractor, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    release = threading.Event()

    def hold(request: RecordedRequest) -> Reply | None:
        release.wait(30)  # the fake answers nothing until the test lets it
        return None

    fake_llm.handler = hold
    app = create_app(SCHEMAS, extractor, max_concurrency=2, queue_timeout=0.2)
    limiter: UpstreamLimiter = app.state.fieldwise_limiter
    statuses: list[int] = []
    async with client_for(app) as c:

        async def call(text: str) -> None:
            response = await c.post("/v1/extract/Contact", json={"text": text})
            statuses.append(response.status_code)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(call, "first")
                group.start_soon(call, "second")
                with anyio.fail_after(10):
                    while limiter.in_use < 2:
                        await anyio.sleep(0.01)
                third = await c.post("/v1/extract/Contact", json={"text": "third"})
                release.set()
        finally:
            release.set()
    assert_error(third, 429, "overloaded")
    assert third.headers["retry-after"] == "1"
    assert statuses == [200, 200]
    assert limiter.in_use == 0 and limiter.waiting == 0
    assert sorted(line["status"] for line in access_lines(caplog)) == [200, 200, 429]


async def test_queued_requests_run_when_a_slot_frees(
    extractor: Extractor, fake_llm: FakeLLM
) -> None:
    fake_llm.latency = 0.05
    app = create_app(SCHEMAS, extractor, max_concurrency=1, queue_timeout=30)
    limiter: UpstreamLimiter = app.state.fieldwise_limiter
    seen: list[int] = []
    statuses: list[int] = []
    async with client_for(app) as c:

        async def call(i: int) -> None:
            response = await c.post("/v1/extract/Contact", json={"text": f"person {i}"})
            statuses.append(response.status_code)

        async def watch() -> None:
            while len(statuses) < 4:
                seen.append(limiter.in_use)
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            for i in range(4):
                group.start_soon(call, i)
    assert statuses == [200] * 4
    assert max(seen) == 1


async def test_an_extraction_past_the_request_timeout_is_504(
    extractor: Extractor, fake_llm: FakeLLM
) -> None:
    fake_llm.script(reply.slow(10.0))
    app = create_app(SCHEMAS, extractor, request_timeout=0.2)
    async with client_for(app) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x"})
        after = await c.post("/v1/extract/Contact", json={"text": "y"})
    assert_error(response, 504, "timeout")
    assert after.status_code == 200
    assert app.state.fieldwise_limiter.in_use == 0


async def test_a_504_logs_what_the_attempts_before_the_timeout_cost(
    extractor: Extractor, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid answer (paid), then a re-ask slower than the request's time: the
    timeout cancels the extraction, and the access line still has the paid tokens."""
    caplog.set_level(logging.INFO, logger="fieldwise.access")
    fake_llm.script(reply.json({"name": 3}), reply.slow(10.0))
    app = create_app(SCHEMAS, extractor, request_timeout=0.5)
    async with client_for(app) as c:
        response = await c.post("/v1/extract/Contact", json={"text": "x"})
    assert_error(response, 504, "timeout")
    assert len(fake_llm.requests) == 2
    (line,) = access_lines(caplog)
    assert line["status"] == 504 and line["prompt_tokens"] > 0 and line["cost"] > 0


async def test_the_limiter_refuses_at_once_with_a_zero_queue_timeout() -> None:
    limiter = UpstreamLimiter(1, 0)
    async with limiter.slot():
        with pytest.raises(Exception) as caught:
            async with limiter.slot():
                pass  # pragma: no cover - never entered
    assert getattr(caught.value, "status", None) == 429
    async with limiter.slot():
        assert limiter.in_use == 1
    with pytest.raises(ValueError):
        UpstreamLimiter(0, 1)


# -- reading uploaded documents --------------------------------------------------------------


class HeldLoader:
    """A document loader for ``.held`` files that holds every read until the test lets go,
    counting the reads that started, ran at once and finished."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.started = self.running = self.most = self.finished = 0

    @hookimpl
    def register_document_loaders(self, register: Any) -> None:
        register(DocumentLoader("held", self.load, suffixes=(".held",)))

    def load(self, data: bytes, name: str) -> Document:
        with self._lock:
            self.started += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(30)  # a bound, should the test fail before letting go
        finally:
            with self._lock:
                self.running -= 1
                self.finished += 1
        return Document(data.decode(), metadata={"name": name})


@pytest.fixture
def held_loader() -> Iterator[HeldLoader]:
    loader = HeldLoader()
    unregister = register_plugin(loader, name="test-held")
    try:
        yield loader
    finally:
        loader.release.set()
        unregister()


async def _until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):  # a bound, not a timing assertion
        while not condition():
            await anyio.sleep(0.01)


async def test_a_document_read_under_way_finishes_before_the_504(
    extractor: Extractor, fake_llm: FakeLLM, held_loader: HeldLoader
) -> None:
    """A read is never abandoned to run on unseen (uncounted, piling up): the request
    past its deadline waits for it, then answers 504 without extracting."""
    app = create_app(SCHEMAS, extractor, request_timeout=0.05)
    body, content_type = multipart("scan.held", b"Ada Lovelace")
    answers: list[tuple[httpx.Response, int]] = []
    async with client_for(app) as c:

        async def upload() -> None:
            response = await c.post(
                "/v1/extract/Contact/file", content=body, headers={"content-type": content_type}
            )
            answers.append((response, held_loader.finished))

        async with anyio.create_task_group() as group:
            group.start_soon(upload)
            await _until(lambda: held_loader.started == 1)
            await anyio.sleep(0.3)  # past the deadline, with the read still held
            held_loader.release.set()
    ((response, finished_when_answered),) = answers
    assert_error(response, 504, "timeout")
    assert finished_when_answered == 1
    assert not [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]


async def test_document_reads_are_capped_and_a_waiting_one_gives_up_at_its_deadline(
    extractor: Extractor, fake_llm: FakeLLM, held_loader: HeldLoader
) -> None:
    """With one extraction slot there is one read slot: a second upload waits for it, and
    gives up at its deadline without starting its read."""
    app = create_app(SCHEMAS, extractor, max_concurrency=1, request_timeout=0.2)
    body, content_type = multipart("scan.held", b"Ada Lovelace")
    first: list[httpx.Response] = []
    async with client_for(app) as c:

        async def upload() -> httpx.Response:
            return await c.post(
                "/v1/extract/Contact/file", content=body, headers={"content-type": content_type}
            )

        async def first_upload() -> None:
            first.append(await upload())

        async with anyio.create_task_group() as group:
            group.start_soon(first_upload)
            await _until(lambda: held_loader.started == 1)
            second = await upload()
            started_meanwhile = held_loader.started
            held_loader.release.set()
    assert_error(second, 504, "timeout")
    assert started_meanwhile == 1 and held_loader.most == 1
    assert_error(first[0], 504, "timeout")  # its read outlasted the second's whole wait
    assert held_loader.finished == 1


# -- refusals: who is told what ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["plain", "mount", "root_path"])
async def test_without_the_token_an_oversized_body_is_401_not_413(
    extractor: Extractor, fake_llm: FakeLLM, how: str
) -> None:
    """The caps are the service's business: a client without the token learns nothing of
    them, and its body is still never read."""
    app = create_app(
        SCHEMAS, extractor, token=SERVICE_TOKEN, max_body_bytes=1000, max_upload_bytes=2000
    )
    prefix = "" if how == "plain" else "/api"
    if how == "mount":
        transport = httpx.ASGITransport(app=Starlette(routes=[Mount("/api", app=app)]))
    else:
        transport = httpx.ASGITransport(app=app, root_path=prefix)
    streamed = CountingBody(b'{"text": "', b"y" * 1024, 100, b'"}')
    upload, content_type = multipart("big.note", b"z" * 5000)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        refused = [
            await c.post(f"{prefix}/v1/extract/Contact", json={"text": "x" * 2000}),
            await c.post(
                f"{prefix}/v1/extract/Contact",
                content=streamed,
                headers={"content-type": "application/json"},
            ),
            await c.post(
                f"{prefix}/v1/extract/Contact/file",
                content=upload,
                headers={"content-type": content_type},
            ),
        ]
        c.headers["authorization"] = f"Bearer {SERVICE_TOKEN}"
        too_big = await c.post(f"{prefix}/v1/extract/Contact", json={"text": "x" * 2000})
    for response in refused:
        assert_error(response, 401, "unauthorized")
        assert "1000" not in response.text and "2000" not in response.text
        assert response.headers["connection"] == "close"  # its body was never read
    assert streamed.pulled == 0
    assert_error(too_big, 413, "payload_too_large")
    assert not [r for r in fake_llm.requests if r.method == "POST"]


async def test_a_form_field_over_its_cap_closes_the_connection(
    extractor: Extractor, notes_loader: None
) -> None:
    """The rest of that body is never read, so the connection cannot carry another request."""
    body, content_type = multipart("a.note", b"x", instructions="i" * (65 * 1024))
    async with client_for(create_app(SCHEMAS, extractor)) as c:
        response = await c.post(
            "/v1/extract/Contact/file", content=body, headers={"content-type": content_type}
        )
    assert_error(response, 413, "payload_too_large")
    assert response.headers["connection"] == "close"
