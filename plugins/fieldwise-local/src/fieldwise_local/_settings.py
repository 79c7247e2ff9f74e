"""Where the model lives and how the embedded server is sized, from the environment.

Everything is read when a server starts (not at import), so a test or a long-running
process can change the environment, or pass a ``LocalSettings`` of its own, before the
first request.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fieldwise.exceptions import ConfigurationError

ENV_DATA_DIR = "FIELDWISE_DATA_DIR"
ENV_MODEL = "FIELDWISE_LOCAL_MODEL"
ENV_THREADS = "FIELDWISE_LOCAL_THREADS"
ENV_CONTEXT = "FIELDWISE_LOCAL_CONTEXT"
ENV_PARALLEL = "FIELDWISE_LOCAL_PARALLEL"
ENV_CACHE_PROMPT = "FIELDWISE_LOCAL_CACHE_PROMPT"
ENV_START_TIMEOUT = "FIELDWISE_LOCAL_START_TIMEOUT"
ENV_LOG = "FIELDWISE_LOCAL_LOG"
ENV_MAX_TOKENS = "FIELDWISE_LOCAL_MAX_TOKENS"

ENV_VARS = (
    ENV_DATA_DIR,
    ENV_MODEL,
    ENV_THREADS,
    ENV_CONTEXT,
    ENV_PARALLEL,
    ENV_CACHE_PROMPT,
    ENV_START_TIMEOUT,
    ENV_LOG,
    ENV_MAX_TOKENS,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def data_dir() -> Path:
    """``$FIELDWISE_DATA_DIR``, else the per-user data directory (``platformdirs``)."""
    configured = os.environ.get(ENV_DATA_DIR)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("fieldwise"))


def models_dir() -> Path:
    """The folder model files are pulled into: ``<data dir>/models``."""
    return data_dir() / "models"


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """One fewer than the cores available (at least 1).

    llama.cpp's threads meet at a barrier after every operation, hundreds of times per
    token, so when one of them is descheduled the others wait. With every core taken,
    any other load (the caller validating answers, a test suite, a browser) stalls
    generation: measured on a 2-core machine under load, 2 threads gave 1-2 tokens/s
    where 1 thread gave 20-70. Leaving a core free costs little on an idle machine.
    """
    return max(1, available_cores() - 1)


def _int_env(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum}.")
    return value


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds.") from None
    if not _positive_seconds(value):
        raise ConfigurationError(f"{name}={raw!r} must be a finite number more than 0 seconds.")
    return value


def _positive_seconds(value: float) -> bool:
    """More than 0 and finite: ``nan`` and ``inf`` would wait for a server forever."""
    return math.isfinite(value) and value > 0


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r}: use 1 or 0.")


_LOG_LEVELS: dict[str, int | None] = {"off": None, "error": 1, "info": 3, "debug": 4}


def _log_env() -> int | None:
    raw = os.environ.get(ENV_LOG, "").strip().lower()
    if not raw:
        return None
    if raw in _LOG_LEVELS:
        return _LOG_LEVELS[raw]
    raise ConfigurationError(f"{ENV_LOG}={raw!r}: use one of {', '.join(_LOG_LEVELS)}.")


@dataclass(frozen=True)
class LocalSettings:
    """How an embedded llama.cpp server is sized.

    ``threads``: CPU threads for generation and prompt processing. Default: one fewer
    than the cores this process may use (see ``default_threads``).

    ``context``: tokens of context *per request* (prompt + answer). 4096 holds a few
    pages of text plus the schema and the answer; SmolLM2 was trained on 8192. The KV
    cache costs ~23 KB per token of context for SmolLM2-135M (~94 MB at 4096).

    ``parallel``: requests decoded at the same time (llama.cpp "slots"). Default 1:
    extra requests queue. On a CPU, more slots share the same cores, so each request
    gets slower, the KV cache grows by ``context`` per slot, and a temperature-0 answer
    can depend on which other requests were batched with it. Raise it for throughput on
    many short requests on a machine with many cores.

    ``cache_prompt``: reuse the KV cache of a previous request's shared prompt prefix.
    Off by default: with it on, temperature-0 answers are not byte-for-byte reproducible
    (the reused prefix was computed in a different batch shape), and fieldwise promises
    that the same request gives the same answer.

    ``max_tokens``: the most tokens one answer may generate when the request sets no
    ``max_tokens``. A small model can write one string until the context is full, which
    takes minutes on a CPU; 512 is several times what an invoice answer needs, and
    a cut-off answer is reported as ``TruncatedOutputError`` instead.

    ``start_timeout``: seconds to wait for ``/health`` once the model has loaded.

    ``log_verbosity``: llama.cpp's log threshold on stderr; ``None`` silences it (a
    library should not print), ``1`` shows errors, ``3`` progress too, ``4`` debug.
    """

    threads: int = field(default_factory=default_threads)
    context: int = 4096
    parallel: int = 1
    cache_prompt: bool = False
    max_tokens: int = 512
    start_timeout: float = 60.0
    log_verbosity: int | None = None

    def __post_init__(self) -> None:
        if self.threads < 1 or self.context < 256 or self.parallel < 1 or self.max_tokens < 1:
            raise ConfigurationError(
                f"LocalSettings: threads ({self.threads}) and parallel ({self.parallel}) must "
                f"be at least 1, max_tokens ({self.max_tokens}) at least 1, and context "
                f"({self.context}) at least 256 tokens."
            )
        if not _positive_seconds(self.start_timeout):
            raise ConfigurationError(
                f"LocalSettings: start_timeout ({self.start_timeout}) must be a finite number "
                "of seconds, more than 0."
            )

    @classmethod
    def from_env(cls) -> LocalSettings:
        """The defaults, overridden by the ``FIELDWISE_LOCAL_*`` environment variables."""
        return cls(
            threads=_int_env(ENV_THREADS, default_threads(), minimum=1),
            context=_int_env(ENV_CONTEXT, 4096, minimum=256),
            parallel=_int_env(ENV_PARALLEL, 1, minimum=1),
            cache_prompt=_bool_env(ENV_CACHE_PROMPT, False),
            max_tokens=_int_env(ENV_MAX_TOKENS, 512, minimum=1),
            start_timeout=_float_env(ENV_START_TIMEOUT, 60.0),
            log_verbosity=_log_env(),
        )
