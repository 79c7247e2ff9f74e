"""Finding and loading plugins (pluggy, entry-point group ``fieldwise``).

Loaded once and lazily, on first use. ``FIELDWISE_LOAD_PLUGINS=a,b`` loads only those
plugins; ``FIELDWISE_DISABLE_PLUGINS=x,y`` blocks some. A plugin that fails to import or
whose hook raises is reported by name and skipped, so unrelated work goes on.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

from . import hookspecs
from .exceptions import UnsupportedInputError
from .registry import Backend, DocumentLoader, TableAdapter

log = logging.getLogger("fieldwise.plugins")

ENTRY_POINT_GROUP = "fieldwise"
_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_failures: dict[str, str] = {}

T = TypeVar("T")


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    only = _env_names("FIELDWISE_LOAD_PLUGINS")
    blocked = _env_names("FIELDWISE_DISABLE_PLUGINS") or set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (only is not None and ep.name not in only) or ep.name in blocked:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            _failures[ep.name] = f"{type(exc).__name__}: {exc}"
            log.warning("fieldwise plugin %r failed to load: %s", ep.name, exc)
            continue
        if ep.dist is not None:
            pm._plugin_distinfo.append((plugin, ep.dist))


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, entry points loaded on first call."""
    global _pm
    if _pm is not None:
        return _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager("fieldwise")
            pm.add_hookspecs(hookspecs)
            _load_entry_points(pm)
            pm.check_pending()
            _pm = pm
    return _pm


def _collect(hook_name: str, kind: type[T]) -> list[T]:
    pm = get_plugin_manager()
    items: list[T] = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        found: list[T] = []

        def register(item: T, _found: list[T] = found) -> None:
            if not isinstance(item, kind):
                raise TypeError(f"register() expects a {kind.__name__}, got {type(item).__name__}")
            _found.append(item)

        try:
            impl.function(register)
        except Exception as exc:
            _failures[impl.plugin_name] = f"{hook_name}: {type(exc).__name__}: {exc}"
            log.warning("fieldwise plugin %r failed in %s: %s", impl.plugin_name, hook_name, exc)
            continue
        items.extend(found)
    return items


def document_loaders() -> list[DocumentLoader]:
    """Every registered document loader, highest priority first."""
    return sorted(_collect("register_document_loaders", DocumentLoader), key=lambda x: -x.priority)


def table_adapters() -> list[TableAdapter]:
    """Every registered table adapter, highest priority first."""
    return sorted(_collect("register_table_adapters", TableAdapter), key=lambda x: -x.priority)


def backends() -> dict[str, Backend]:
    """Registered model backends by prefix name."""
    return {b.name: b for b in _collect("register_backends", Backend)}


Pickable = TypeVar("Pickable", DocumentLoader, TableAdapter)


def _pick(items: list[Pickable], suffix: str, media_type: str | None, what: str) -> Pickable:
    suffix = suffix.lower()
    for item in items:
        if suffix in item.suffixes or (media_type and media_type in item.media_types):
            return item
    installed = ", ".join(f"{i.name} ({' '.join(i.suffixes)})" for i in items)
    raise UnsupportedInputError(
        f"No {what} reads {suffix or media_type or 'this input'!r}. "
        f"Installed: {installed or 'none'}. Install a plugin for it "
        "(for example `pip install fieldwise-documents`), or convert the file."
    )


def pick_document_loader(suffix: str, media_type: str | None = None) -> DocumentLoader:
    """The loader for a file suffix (``".pdf"``) or media type, or ``UnsupportedInputError``."""
    return _pick(document_loaders(), suffix, media_type, "document loader")


def pick_table_adapter(suffix: str, media_type: str | None = None) -> TableAdapter:
    """The table adapter for a file suffix (``".csv"``), or ``UnsupportedInputError``."""
    return _pick(table_adapters(), suffix, media_type, "table adapter")


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: tuple[str, ...]
    error: str | None = None


def list_plugins() -> list[PluginInfo]:
    """Loaded plugins with version and hooks, plus those that failed (with the error)."""
    pm = get_plugin_manager()
    versions = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if name is None or plugin is None:
            continue
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or []))
        infos.append(PluginInfo(name, versions.get(id(plugin)), hooks, _failures.get(name)))
    loaded = {info.name for info in infos}
    infos.extend(PluginInfo(n, None, (), e) for n, e in _failures.items() if n not in loaded)
    return sorted(infos, key=lambda i: i.name)


def reset_plugins() -> None:
    """Forget loaded plugins (tests; or after changing the environment variables)."""
    global _pm
    with _lock:
        _pm = None
        _failures.clear()


def register_plugin(plugin: Any, name: str | None = None) -> Callable[[], None]:
    """Register a plugin object in-process; returns a function that unregisters it."""
    pm = get_plugin_manager()
    registered_name = pm.register(plugin, name=name)

    def unregister() -> None:
        pm.unregister(name=registered_name)

    return unregister
