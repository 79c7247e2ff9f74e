"""The form-parsing HTTP service (``fieldwise serve``): ``create_app(schemas, extractor)``.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart); importing this package
without it raises ``ConfigurationError`` saying what to install, rather than an
``ImportError`` from deep inside.
"""

from __future__ import annotations

from ..exceptions import ConfigurationError

try:
    import fastapi  # noqa: F401
    import python_multipart  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ConfigurationError(
        f"The service needs the 'serve' extra ({exc.name} is missing): "
        "pip install 'fieldwise[serve]'"
    ) from exc

from .app import create_app

__all__ = ["create_app"]
