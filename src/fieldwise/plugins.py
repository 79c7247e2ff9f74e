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
from collections.abc import Callable, Iterator
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
            _fail(ep.name, f"{type(exc).__name__}: {exc}")
            continue
        unknown = _unknown_hooks(pm, plugin)
        if unknown:  # check_pending() would refuse every plugin for this one
            pm.unregister(plugin)
            _fail(
                ep.name,
                f"unknown hook(s) {', '.join(unknown)}: misspelt, or written for another "
                "version of fieldwise",
            )
            continue
        if ep.dist is not None:
            pm._plugin_distinfo.append((plugin, ep.dist))


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks ``plugin`` implements that fieldwise has no spec for (not marked optional)."""
    unknown = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
        if any(not i.optionalhook for i in impls):
            unknown.append(caller.name)
    return sorted(unknown)


def _fail(plugin_name: str, error: str) -> None:
    """Remember a plugin's failure for ``fieldwise plugins``; warn once per failure."""
    if _failures.get(plugin_name) != error:
        log.warning("fieldwise plugin %r failed: %s", plugin_name, error)
    _failures[plugin_name] = error


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


def _call_each(
    hook_name: str, arguments: Callable[[], dict[str, Any]]
) -> Iterator[tuple[str, bool]]:
    """Call every plugin's ``hook_name`` on its own with ``arguments()`` (made afresh for
    each), so that one that raises is recorded and skipped instead of failing the call for
    all (pluggy's own call would stop there); yields ``(plugin, succeeded)`` after each."""
    pm = get_plugin_manager()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.hookwrapper or impl.wrapper:  # wrappers make no sense for these hooks
            continue
        given = arguments()
        try:
            impl.function(*(given[name] for name in impl.argnames))
        except Exception as exc:
            _fail(impl.plugin_name, f"{hook_name}: {type(exc).__name__}: {exc}")
            yield impl.plugin_name, False
        else:
            yield impl.plugin_name, True


def _collect(hook_name: str, kind: type[T]) -> list[T]:
    """What the plugins ``register(...)`` through ``hook_name``; a plugin that raises, or
    registers the wrong kind of thing, adds nothing."""
    items: list[T] = []
    found: list[T] = []

    def register(item: T) -> None:
        if not isinstance(item, kind):
            raise TypeError(f"register() expects a {kind.__name__}, got {type(item).__name__}")
        found.append(item)

    def fresh() -> dict[str, Any]:
        found.clear()
        return {"register": register}

    for _, succeeded in _call_each(hook_name, fresh):
        if succeeded:
            items.extend(found)
    return items


def add_plugin_commands(subparsers: Any) -> None:
    """The plugins' sub-commands (``register_commands``); one that raises, or takes a name
    already in use, is reported by ``fieldwise plugins`` and the others still work."""
    for _ in _call_each("register_commands", lambda: {"subparsers": subparsers}):
        pass


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


def _pick(
    items: list[Pickable], suffix: str, media_type: str | None, what: str, example: str
) -> Pickable:
    suffix = suffix.lower()
    for item in items:
        suffixes = {s.lower() for s in item.suffixes}
        if suffix in suffixes or (media_type and media_type in item.media_types):
            return item
    installed = ", ".join(f"{i.name} ({' '.join(i.suffixes)})" for i in items)
    missing = [package for package in example.split() if not _distribution_installed(package)]
    advice = (
        f"Install a plugin for it (for example `pip install {' '.join(missing)}`), or "
        "convert the file."
        if missing or not items
        else "Convert the file to one of those types, or install a plugin that reads it."
    )
    raise UnsupportedInputError(
        f"No {what} reads {suffix or media_type or 'this input'!r}. "
        f"Installed: {installed or 'none'}. {advice}"
    )


def _distribution_installed(name: str) -> bool:
    """Whether a package of this name is installed (the advice names only missing ones)."""
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def pick_document_loader(suffix: str, media_type: str | None = None) -> DocumentLoader:
    """The loader for a file suffix (``".pdf"``) or media type, or ``UnsupportedInputError``."""
    return _pick(document_loaders(), suffix, media_type, "document loader", "fieldwise-documents")


def pick_table_adapter(suffix: str, media_type: str | None = None) -> TableAdapter:
    """The table adapter for a file suffix (``".csv"``), or ``UnsupportedInputError``."""
    return _pick(
        table_adapters(), suffix, media_type, "table adapter", "fieldwise-csv fieldwise-xlsx"
    )


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: tuple[str, ...]
    error: str | None = None


def list_plugins() -> list[PluginInfo]:
    """Loaded plugins with version and hooks, plus those that failed (with the error)."""
    pm = get_plugin_manager()
    document_loaders(), table_adapters(), backends()  # a hook that raises is found here
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
