"""The embedded server's lifecycle, driven through the core's real plugin manager."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fieldwise_local
import httpx
import pytest
from pydantic import BaseModel

from fieldwise import Extractor
from fieldwise.exceptions import ConfigurationError
from fieldwise.registry import Backend, BackendEndpoint


class Person(BaseModel):
    name: str | None = None


def _health(endpoint: BackendEndpoint) -> httpx.Response:
    root = endpoint.base_url.removesuffix("/v1")
    return httpx.get(f"{root}/health", timeout=5, trust_env=False)


def _port_is_free(port: int) -> bool:
    """A new server could listen on ``port``. SO_REUSEADDR, as servers do: connections the
    old server closed first linger in TIME-WAIT and must not count as "in use"."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def test_backend_is_registered_through_the_entry_point(local_backend: Backend) -> None:
    assert local_backend.name == "local"
    assert "SmolLM2" in local_backend.description
    assert local_backend.available is not None


def test_available_follows_the_model_file(
    local_backend: Backend, model_file: Path, empty_data_dir: Path
) -> None:
    assert local_backend.available is not None
    assert not local_backend.available()  # empty data directory
    empty_data_dir.joinpath("models").mkdir(parents=True)
    empty_data_dir.joinpath("models", model_file.name).symlink_to(model_file)
    assert local_backend.available()


def test_concurrent_first_calls_start_one_server(local_backend: Backend, model_file: Path) -> None:
    fieldwise_local.stop()
    callers = 4
    barrier = threading.Barrier(callers)
    found: list[BackendEndpoint] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            found.append(local_backend.resolve(""))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(found) == callers and len(set(found)) == 1
    assert len(fieldwise_local.running()) == 1

    endpoint = found[0]
    assert endpoint.base_url.startswith("http://127.0.0.1:") and endpoint.base_url.endswith("/v1")
    assert endpoint.profile == "openai" and endpoint.api_key
    assert endpoint.model == "SmolLM2-135M-Instruct.Q4_1"
    assert _health(endpoint).json() == {"status": "ok"}


def test_later_calls_sync_and_async_share_the_server(local_backend: Backend) -> None:
    first = local_backend.resolve("")
    assert local_backend.resolve("") == first
    assert fieldwise_local.resolve("") == first

    async def from_a_loop() -> BackendEndpoint:
        return await asyncio.to_thread(local_backend.resolve, "")

    assert asyncio.run(from_a_loop()) == first
    assert len(fieldwise_local.running()) == 1


def test_explicit_path_of_the_same_file_reuses_the_server(
    local_backend: Backend, model_file: Path
) -> None:
    assert local_backend.resolve(str(model_file)) == local_backend.resolve("")


def test_the_api_needs_the_key(local_backend: Backend) -> None:
    endpoint = local_backend.resolve("")
    url = f"{endpoint.base_url}/models"
    assert httpx.get(url, timeout=5, trust_env=False).status_code == 401
    authorized = httpx.get(
        url, headers={"Authorization": f"Bearer {endpoint.api_key}"}, timeout=5, trust_env=False
    )
    assert authorized.status_code == 200


def test_stop_frees_the_port(local_backend: Backend) -> None:
    server = fieldwise_local.start()
    endpoint = server.endpoint
    assert not _port_is_free(server.port)
    fieldwise_local.stop()
    assert not server.running and fieldwise_local.running() == []
    assert _port_is_free(server.port)
    with pytest.raises(httpx.ConnectError):
        _health(endpoint)
    server.stop()  # idempotent


def test_an_extractor_follows_the_server_across_stop(model_file: Path, tmp_path: Path) -> None:
    """stop() (e.g. to apply new settings) does not strand an Extractor that already used
    the server: its next request starts a fresh one and goes there, sync and async."""
    with Extractor(model="local", cache=False, max_retries=0, cache_dir=str(tmp_path)) as ex:
        assert ex.run("My name is Ada.", Person).value.name == "Ada"
        first = ex.base_url
        fieldwise_local.stop()
        assert ex.run("My name is Bob.", Person).value.name == "Bob"
        assert ex.base_url != first
        assert [s.base_url for s in fieldwise_local.running()] == [ex.base_url]

        second = ex.base_url
        fieldwise_local.stop()
        result = asyncio.run(ex.arun("My name is Cy.", Person))
        assert result.value.name == "Cy"
        assert ex.base_url not in (first, second)
        assert [s.base_url for s in fieldwise_local.running()] == [ex.base_url]

        fieldwise_local.stop()  # streams follow it too
        assert list(ex.stream("My name is Dee.", Person))[-1].name == "Dee"

        async def streamed() -> Any:
            return [item async for item in ex.astream("My name is Eve.", Person)][-1]

        fieldwise_local.stop()
        assert asyncio.run(streamed()).name == "Eve"
        assert [s.base_url for s in fieldwise_local.running()] == [ex.base_url]
    fieldwise_local.stop()


@contextlib.contextmanager
def _never_ready() -> Iterator[None]:
    """The server's readiness probe gets no answer, as on a machine too slow for the timeout."""

    def refused(self: httpx.Client, url: str, **kwargs: object) -> httpx.Response:
        raise httpx.ConnectError("simulated: no answer yet")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "get", refused)
        yield


def _threads() -> int:
    return threading.active_count() + len(os.listdir("/proc/self/task"))


def _port_in(error: BaseException) -> int:
    found = re.search(r"127\.0\.0\.1:(\d+)", str(error))
    assert found, str(error)
    return int(found.group(1))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_a_start_that_timed_out_is_waited_for_again_not_repeated(model_file: Path) -> None:
    """A server not ready in time is kept: each later request waits for that one instead of
    loading the model into another (rows of a table would pile servers up)."""
    fieldwise_local.stop()
    fieldwise_local.configure(fieldwise_local.LocalSettings(start_timeout=0.3))
    ports = []
    with _never_ready():
        for _ in range(3):
            with pytest.raises(fieldwise_local.ServerStartError, match="not ready") as caught:
                fieldwise_local.resolve("")
            ports.append(_port_in(caught.value))
            if len(ports) == 1:
                threads = _threads()
        assert ports == [ports[0]] * 3 and _threads() == threads
        assert fieldwise_local.running() == []

    server = fieldwise_local.start()
    try:
        assert server.port == ports[0] and server.running
        assert _health(server.endpoint).json() == {"status": "ok"}
    finally:
        fieldwise_local.stop()
    assert _port_is_free(ports[0])


def test_stop_frees_a_server_whose_start_timed_out(model_file: Path) -> None:
    """stop() frees it (in the background, once its loop is up) and the next start is fresh."""
    fieldwise_local.stop()
    with _never_ready():
        with pytest.raises(fieldwise_local.ServerStartError) as caught:
            fieldwise_local.start(settings=fieldwise_local.LocalSettings(start_timeout=0.3))
        port = _port_in(caught.value)
        assert not _port_is_free(port)
        fieldwise_local.stop()
    deadline = time.monotonic() + 30
    while not _port_is_free(port):
        assert time.monotonic() < deadline, "the timed-out server was never freed"
        time.sleep(0.05)
    server = fieldwise_local.start()
    try:
        assert server.port != port
    finally:
        fieldwise_local.stop()


def test_settings_reach_the_server(model_file: Path) -> None:
    """A restart after stop() picks up new settings (here: 1 thread, 1024 tokens)."""
    fieldwise_local.configure(fieldwise_local.LocalSettings(threads=1, context=1024))
    server = fieldwise_local.start()
    try:
        props = httpx.get(
            server.base_url.removesuffix("/v1") + "/props",
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=5,
            trust_env=False,
        ).json()
        assert props["default_generation_settings"]["n_ctx"] == 1024
        assert server.settings.threads == 1
    finally:
        fieldwise_local.stop()


def test_missing_file_gives_a_clear_error(local_backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file") as caught:
        local_backend.resolve(str(tmp_path / "missing.gguf"))
    assert "fieldwise local pull" in str(caught.value)


def test_not_a_gguf_file_gives_a_clear_error(local_backend: Backend, tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(fieldwise_local.ServerStartError, match="not a GGUF model file"):
        local_backend.resolve(str(text))


def test_a_broken_gguf_file_fails_to_load_cleanly(local_backend: Backend, tmp_path: Path) -> None:
    """llama.cpp itself refuses it; the error says what to do, and nothing is left running."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(4096))
    with pytest.raises(fieldwise_local.ServerStartError, match="could not load"):
        local_backend.resolve(str(broken))
    assert all(server.model_path != broken for server in fieldwise_local.running())


def test_ctrl_c_still_reaches_python(model_file: Path) -> None:
    """The embedded server must not take over SIGINT: Ctrl+C still raises KeyboardInterrupt
    and leaves the server running."""
    server = fieldwise_local.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert _health(server.endpoint).json() == {"status": "ok"}
    finally:
        fieldwise_local.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_inherit_the_server(model_file: Path) -> None:
    """The parent's server threads do not exist in a child: it must forget them (not
    destroy them, which would wait forever) and exit cleanly."""
    server = fieldwise_local.start()
    try:
        pid = os.fork()
        if pid == 0:  # the child
            code = 0 if fieldwise_local.running() == [] else 3
            fieldwise_local.stop()  # a no-op here, and must not hang
            os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                pytest.fail("the forked child hung")
            time.sleep(0.05)
        assert os.waitstatus_to_exitcode(status) == 0
        assert server.running and _health(server.endpoint).json() == {"status": "ok"}
    finally:
        fieldwise_local.stop()


def test_signal_handlers_changed_by_native_code_are_put_back() -> None:
    """What llama.cpp's start-up may do (sigaction from C) is undone afterwards."""
    from fieldwise_local._server import _signal_handlers_kept

    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with _signal_handlers_kept():
        libc.signal(int(signal.SIGINT), 1)  # SIG_IGN, behind Python's back
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_answers_are_capped_when_the_request_sets_no_max_tokens() -> None:
    """A runaway answer stops at ``max_tokens`` (its own process: one server per process)."""
    import subprocess
    import sys

    script = (
        "import fieldwise_local, httpx\n"
        "s = fieldwise_local.start(settings=fieldwise_local.LocalSettings(max_tokens=5))\n"
        "e = s.endpoint\n"
        "ask = [{'role': 'user', 'content': 'Tell a long story.'}]\n"
        "r = httpx.post(e.base_url + '/chat/completions', timeout=120, trust_env=False,\n"
        "    headers={'Authorization': f'Bearer {e.api_key}'},\n"
        "    json={'model': e.model, 'messages': ask})\n"
        "j = r.json()\n"
        "print(j['choices'][0]['finish_reason'], j['usage']['completion_tokens'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["length", "5"]
