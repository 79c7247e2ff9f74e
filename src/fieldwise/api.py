"""Module-level ``extract``/``aextract``: one process-wide ``Extractor`` per settings.

Keyword arguments that configure an ``Extractor`` (``model``, ``base_url``, ``seed``…)
select (and on first use build) a shared extractor, so connection pools and the cache
are reused across calls; the rest (``instructions``, ``examples``) apply to the call.
Environment: ``FIELDWISE_MODEL``, ``FIELDWISE_BASE_URL``, ``FIELDWISE_CACHE_DIR``.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, TypeVar, overload

from .extractor import CALL_OPTIONS, Extractor
from .prompt import Input
from .result import Result

T = TypeVar("T")
_SETTINGS = frozenset(inspect.signature(Extractor.__init__).parameters) - {"self"}
_extractors: dict[tuple[tuple[str, Any], ...], Extractor] = {}
_lock = threading.Lock()


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    unknown = set(kwargs) - _SETTINGS - CALL_OPTIONS
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    call = {k: v for k, v in kwargs.items() if k in CALL_OPTIONS}
    settings = {k: v for k, v in kwargs.items() if k not in CALL_OPTIONS}
    return settings, call


def default_extractor(**settings: Any) -> Extractor:
    """The shared ``Extractor`` for these settings (built on first use)."""
    key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
    extractor = _extractors.get(key)
    if extractor is None:
        with _lock:
            extractor = _extractors.get(key)
            if extractor is None:
                extractor = Extractor(**settings)
                _extractors[key] = extractor
    return extractor


# Each has an overload for a class (the value is typed as its instance) and one for any
# other target (``Literal[...]``, ``A | None``, ``Union[A, B]``: typed ``Any``), which a
# ``type[T]`` parameter alone would make a type checker refuse.
@overload
def run(data: Input, target: type[T], **kwargs: Any) -> Result[T]: ...
@overload
def run(data: Input, target: Any, **kwargs: Any) -> Result[Any]: ...
def run(data: Input, target: Any, **kwargs: Any) -> Result[Any]:
    settings, call = _split(kwargs)
    return default_extractor(**settings).run(data, target, **call)


@overload
async def arun(data: Input, target: type[T], **kwargs: Any) -> Result[T]: ...
@overload
async def arun(data: Input, target: Any, **kwargs: Any) -> Result[Any]: ...
async def arun(data: Input, target: Any, **kwargs: Any) -> Result[Any]:
    settings, call = _split(kwargs)
    return await default_extractor(**settings).arun(data, target, **call)


@overload
def extract(data: Input, target: type[T], **kwargs: Any) -> T: ...
@overload
def extract(data: Input, target: Any, **kwargs: Any) -> Any: ...
def extract(data: Input, target: Any, **kwargs: Any) -> Any:
    """Extract ``target`` (a pydantic model, or ``list[Model]``…) from ``data``."""
    return run(data, target, **kwargs).value


@overload
async def aextract(data: Input, target: type[T], **kwargs: Any) -> T: ...
@overload
async def aextract(data: Input, target: Any, **kwargs: Any) -> Any: ...
async def aextract(data: Input, target: Any, **kwargs: Any) -> Any:
    return (await arun(data, target, **kwargs)).value
