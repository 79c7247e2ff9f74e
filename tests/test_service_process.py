"""The real ``fieldwise serve`` process: requests over TCP, then SIGTERM with one in flight."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fieldwise.testing import FakeLLM, reply

UPSTREAM_KEY = "sk-process-UPSTREAMKEY-0123456789"
FORMS = """
from pydantic import BaseModel


class Contact(BaseModel):
    name: str
    email: str | None = None
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str) -> None:
    for _ in range(300):  # a bound, not a timing assertion
        if proc.poll() is not None:
            raise AssertionError(f"the server exited early with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server never answered /healthz")


def _pdf(text: str) -> bytes | None:
    """A one-page PDF with ``text`` when the documents plugin and fpdf2 are installed."""
    if importlib.util.find_spec("fieldwise_documents") is None:
        return None
    if importlib.util.find_spec("fpdf") is None:
        return None
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def _serve_command(tmp_path: Path, fake_llm: FakeLLM, port: int) -> list[str]:
    forms = tmp_path / "forms.py"
    forms.write_text(FORMS)
    return [
        sys.executable, "-m", "fieldwise", "serve", "--schemas", str(forms),
        "--port", str(port), "--base-url", fake_llm.base_url, "--model", "fake/model",
    ]  # fmt: skip


def _serve_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "FIELDWISE_CACHE_DIR": str(tmp_path / "cache"),
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("FIELDWISE_SERVICE_TOKEN", None)
    return env


@pytest.fixture
def server(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    command = _serve_command(tmp_path, fake_llm, port)
    env = _serve_env(tmp_path)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(proc, url)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_serve_answers_and_drains_in_flight_requests_on_sigterm(
    server: tuple[subprocess.Popen[bytes], str], fake_llm: FakeLLM
) -> None:
    proc, url = server
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/readyz").status_code == 200
        ok = client.post("/v1/extract/Contact", json={"text": "Ada, ada@example.org"})
        assert ok.status_code == 200, ok.text
        assert set(ok.json()["data"]) == {"name", "email"}

        pdf = _pdf("Contact: Grace Hopper, grace@example.org")
        if pdf is not None:
            upload = client.post(
                "/v1/extract/Contact/file",
                files={"file": ("card.pdf", pdf, "application/pdf")},
            )
            assert upload.status_code == 200, upload.text
            assert "Grace Hopper" in str(fake_llm.requests[-1].body["messages"])

    fake_llm.script(reply.slow(1.0))
    outcome: dict[str, httpx.Response] = {}

    def slow_request() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            outcome["response"] = client.post("/v1/extract/Contact", json={"text": "in flight"})

    thread = threading.Thread(target=slow_request)
    thread.start()
    for _ in range(300):  # until the service's upstream call has reached the fake
        if any("in flight" in str(r.body) for r in fake_llm.requests):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    thread.join(timeout=30)
    assert outcome["response"].status_code == 200, outcome["response"].text
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode(errors="replace")

    log = stderr.decode(errors="replace")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"time"')]
    assert [line["path"] for line in lines if line["method"] == "POST"][-1] == (
        "/v1/extract/Contact"
    )
    assert all(line["status"] == 200 for line in lines)
    assert UPSTREAM_KEY not in log and "in flight" not in log and "Grace Hopper" not in log


def test_serve_no_docs_hides_the_api_description(tmp_path: Path, fake_llm: FakeLLM) -> None:
    port = _free_port()
    command = [*_serve_command(tmp_path, fake_llm, port), "--no-docs"]
    proc = subprocess.Popen(
        command, env=_serve_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(proc, url)
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/openapi.json").status_code == 404
            assert client.get("/docs").status_code == 404
            ok = client.post("/v1/extract/Contact", json={"text": "Ada, ada@example.org"})
            assert ok.status_code == 200, ok.text
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_serve_exits_1_when_it_cannot_bind(tmp_path: Path, fake_llm: FakeLLM) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _serve_command(tmp_path, fake_llm, port),
            env=_serve_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr  # not 3, the CLI's "partial failure"
    assert f"could not start on 127.0.0.1:{port}" in done.stderr
