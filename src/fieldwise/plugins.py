"""Finding and loading plugins (pluggy, entry-point group ``fieldwise``).

Loaded once and lazily, on first use. ``FIELDWISE_LOAD_PLUGINS=a,b`` loads only those
plugins; ``FIELDWISE_DISABLE_PLUGINS=x,y`` blocks some (both take entry-point names, as
``fieldwise plugins`` shows them). A plugin that fails to import or whose hook raises is
reported by name and skipped, so unrelated work goes on.

Where two plugins register a loader or adapter for the same suffix at the same priority,
or a backend of the same name, the choice never depends on the order in which they were
found: a plugin registered in-process (``register_plugin``; the last one first) wins over
installed ones, and those go by plugin name. Each such tie is warned about once.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

from . import hookspecs
from .exceptions import FieldwiseError, PluginError, UnsupportedInputError
from .registry import Backend, DocumentLoader, TableAdapter

log = logging.getLogger("fieldwise.plugins")

ENTRY_POINT_GROUP = "fieldwise"
_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
#: every failure of each plugin, in the order found (a plugin can fail in several hooks)
_failures: dict[str, list[str]] = {}
#: plugins loaded from entry points; any other was registered in-process
_entry_point_names: set[str] = set()
#: entry points the environment variables leave out, with why (named when one of them
#: would have read a file that nothing loaded reads)
_left_out: list[tuple[importlib.metadata.EntryPoint, str]] = []
#: warnings about ties already given, so that each is given once
_warned: set[str] = set()

T = TypeVar("T", DocumentLoader, TableAdapter, Backend)


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    only = _env_names("FIELDWISE_LOAD_PLUGINS")
    blocked = _env_names("FIELDWISE_DISABLE_PLUGINS") or set()
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    _warn_unknown_names(found, only, blocked)
    claimed: dict[str, str] = {}  # entry-point name -> the package whose entry point has it
    # by name, then package: which of two same-named entry points is kept must not depend
    # on the order a folder happens to list its packages in (a package's name is read
    # from its metadata, so only where two entry points share a name)
    names = [ep.name for ep in found]
    shared = {name for name in names if names.count(name) > 1}
    for ep in sorted(
        found, key=lambda ep: (ep.name, _normalized(_package(ep)) if ep.name in shared else "")
    ):
        why = _why_left_out(ep.name, only, blocked)
        if why is not None:
            _left_out.append((ep, why))
            continue
        if pm.is_blocked(ep.name):
            continue
        if ep.name in claimed:  # pluggy knows plugins by name: only one can have it
            # recorded under the skipped package, so the plugin kept is not shown as failed
            _fail(
                f"{ep.name} ({_package(ep)})",
                f"entry point {ep.name!r} of package {_package(ep)} skipped: package "
                f"{claimed[ep.name]} has one of the same name",
            )
            continue
        claimed[ep.name] = _package(ep) if ep.name in shared else ""
        _load_entry_point(pm, ep)


def _load_entry_point(pm: pluggy.PluginManager, ep: importlib.metadata.EntryPoint) -> None:
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken plugin must not take the others down
        _fail(ep.name, _describe(exc))
        return
    already = pm.get_name(plugin)
    if already is not None:  # pluggy's own error appends a dump of every plugin
        _fail(
            ep.name,
            f"{ep.value} is plugin {already!r} already: one module can be one plugin only, "
            "so one of the two entry points must go",
        )
        return
    try:
        accepted = _register_checked(pm, plugin, ep.name) is not None
    except Exception as exc:
        _fail(ep.name, _describe(exc))
        return
    if not accepted:
        return
    _entry_point_names.add(ep.name)
    if ep.dist is not None:
        pm._plugin_distinfo.append((plugin, ep.dist))


def _register_checked(pm: pluggy.PluginManager, plugin: object, name: str | None) -> str | None:
    """Register ``plugin``, unless it implements a hook fieldwise has no spec for: then
    its failure is recorded (under the name it would have had) and it is left out, since
    ``check_pending()`` would refuse every plugin for this one. The name it was registered
    under, or ``None`` when it was left out."""
    registered = pm.register(plugin, name=name)
    if registered is None:  # a blocked name
        return None
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        pm.unregister(plugin)
        _fail(
            registered,
            f"unknown hook(s) {', '.join(unknown)}: misspelt, or written for another "
            "version of fieldwise",
        )
        return None
    return registered


def _why_left_out(name: str, only: set[str] | None, blocked: set[str]) -> str | None:
    """Why the environment variables leave plugin ``name`` out, or ``None``."""
    if name in blocked:
        return "FIELDWISE_DISABLE_PLUGINS disables it"
    if only is not None and name not in only:
        return "FIELDWISE_LOAD_PLUGINS does not name it"
    return None


def _package(ep: importlib.metadata.EntryPoint) -> str:
    """The distribution an entry point comes from, as ``pip`` names it."""
    return ep.dist.name if ep.dist is not None else "(unknown)"


def _normalized(name: str) -> str:
    """A package name as PyPI compares them (``Fieldwise_CSV`` is ``fieldwise-csv``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _warn_unknown_names(
    found: importlib.metadata.EntryPoints, only: set[str] | None, blocked: set[str]
) -> None:
    """A name in the environment variables that no plugin has would otherwise do nothing,
    unseen: most often a package name (``fieldwise-csv``) given for a plugin's (``csv``)."""
    known = sorted({ep.name for ep in found})
    unknown = [
        (variable, name)
        for variable, names in (
            ("FIELDWISE_LOAD_PLUGINS", only),
            ("FIELDWISE_DISABLE_PLUGINS", blocked),
        )
        for name in sorted((names or set()) - set(known))
    ]
    if not unknown:  # the usual start: no package metadata is read
        return
    packages: dict[str, list[str]] = {}
    for ep in found:
        packages.setdefault(_normalized(_package(ep)), []).append(ep.name)
    for variable, name in unknown:
        in_package = packages.get(_normalized(name))
        hint = (
            f" ({name!r} is a package; its plugins are {', '.join(sorted(in_package))})"
            if in_package
            else ""
        )
        log.warning(
            "%s names %r, which no installed plugin has%s. It takes plugin names, as "
            "`fieldwise plugins` shows them: %s",
            variable,
            name,
            hint,
            ", ".join(known) or "none are installed",
        )


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
    """Remember each of a plugin's failures for ``fieldwise plugins`` (one hook failing
    does not hide another's); warn once per failure."""
    errors = _failures.setdefault(plugin_name, [])
    if error not in errors:
        errors.append(error)
        log.warning("fieldwise plugin %r failed: %s", plugin_name, error)


def _describe(exc: BaseException) -> str:
    """``Type: message``, on one line: failures are listed and warned one per line, and
    some messages run on over many (pluggy's append a dump of every plugin)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _warn_once(message: str) -> None:
    """A warning about the plugins as a whole (a tie), given once however often the
    registrations are collected."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


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
            _fail(impl.plugin_name, f"{hook_name}: {_describe(exc)}")
            yield impl.plugin_name, False
        else:
            yield impl.plugin_name, True


def _collect(hook_name: str, kind: type[T]) -> list[T]:
    """What the plugins ``register(...)`` through ``hook_name``, each marked with the
    plugin that registered it, in order of precedence (``_precedence``); a plugin that
    raises, or registers the wrong kind of thing, adds nothing."""
    ranked: list[tuple[tuple[int, int, str], T]] = []
    found: list[T] = []

    def register(item: T) -> None:
        if not isinstance(item, kind):
            raise TypeError(f"register() expects a {kind.__name__}, got {type(item).__name__}")
        found.append(item)

    def fresh() -> dict[str, Any]:
        found.clear()
        return {"register": register}

    for position, (plugin, succeeded) in enumerate(_call_each(hook_name, fresh)):
        if succeeded:
            rank = _precedence(plugin, position)
            ranked.extend((rank, dataclasses.replace(item, plugin=plugin)) for item in found)
    ranked.sort(key=lambda pair: pair[0])  # stable: a plugin's own order is kept
    return [item for _, item in ranked]


def _precedence(plugin: str, position: int) -> tuple[int, int, str]:
    """Where a plugin's registrations rank among equals. In-process plugins first, the
    one registered last first (pluggy lists them in registration order), so that a test
    or an application overrides what is installed; then installed plugins by name, so
    that the choice never depends on the order in which the entry points were found."""
    if plugin in _entry_point_names:
        return (1, 0, plugin)
    return (0, -position, "")


def add_plugin_commands(subparsers: Any) -> None:
    """The plugins' sub-commands (``register_commands``); one that raises, or takes a name
    already in use, is reported by ``fieldwise plugins`` and the others still work."""
    known = set(subparsers.choices)
    for plugin, _ in _call_each("register_commands", lambda: {"subparsers": subparsers}):
        for command in sorted(set(subparsers.choices) - known):
            _require_func(subparsers.choices[command], plugin, command)
        known = set(subparsers.choices)


def _require_func(parser: argparse.ArgumentParser, plugin: str, command: str) -> None:
    """A plugin's command that sets no ``func`` would fall through to the top-level help,
    as if it did not exist: it raises a ``PluginError`` naming the plugin instead. (A
    nested sub-command's own ``func`` still wins when it is given.)"""
    if parser.get_default("func") is not None:
        return

    def run(args: argparse.Namespace) -> int:
        raise PluginError(
            _broke(
                plugin,
                f"its command {command!r} sets no function to run (the sub-parser needs "
                "set_defaults(func=f), f(args) returning the exit code; see docs/plugins.md)",
            ),
            plugin=plugin,
        )

    parser.set_defaults(func=run)


def _broke(plugin: str, problem: str) -> str:
    """The message of a ``PluginError``: who broke the contract, how, and what to do."""
    who = f"plugin {plugin!r}" if plugin else "a plugin"
    installed = plugin in _entry_point_names  # only an installed one can be turned off
    off = f", or turn it off with FIELDWISE_DISABLE_PLUGINS={plugin}" if installed else ""
    return (
        f"{who} broke its contract: {problem}. This is a bug in the plugin: report it to "
        f"its author{off}."
    )


def broken_contract(item: DocumentLoader | TableAdapter, problem: str) -> PluginError:
    """The ``PluginError`` for a loader or adapter that did not do what it must
    (``problem`` says what it did instead)."""
    what = "document loader" if isinstance(item, DocumentLoader) else "table adapter"
    return PluginError(
        _broke(item.plugin, f"its {what} {item.name!r} {problem}"), plugin=item.plugin
    )


@contextmanager
def held_to_contract(item: DocumentLoader | TableAdapter, call: str) -> Iterator[None]:
    """Run a loader's or adapter's code: fieldwise's own errors (the plugin refusing an
    input, as documented) and the system's (``OSError``) go through as they are; any other
    is a bug in the plugin, raised as a ``PluginError`` that names it, the original
    chained, instead of a traceback that leaves the user guessing whose it is."""
    try:
        yield
    except (FieldwiseError, OSError):
        raise
    except Exception as exc:
        raise broken_contract(item, f"{call} raised {_describe(exc)}") from exc


def document_loaders() -> list[DocumentLoader]:
    """Every registered document loader, highest priority first (ties: ``_precedence``)."""
    loaders = sorted(
        _collect("register_document_loaders", DocumentLoader), key=lambda x: -x.priority
    )
    _warn_ties(loaders, "document loader")
    return loaders


def table_adapters() -> list[TableAdapter]:
    """Every registered table adapter, highest priority first (ties: ``_precedence``)."""
    adapters = sorted(_collect("register_table_adapters", TableAdapter), key=lambda x: -x.priority)
    _warn_ties(adapters, "table adapter")
    return adapters


def backends() -> dict[str, Backend]:
    """Registered model backends by prefix name (two of one name: ``_precedence``)."""
    return _settle_backends(_collect("register_backends", Backend))


def _settle_backends(found: list[Backend]) -> dict[str, Backend]:
    """The first backend of each name, warning (once) when another plugin has one too."""
    chosen: dict[str, Backend] = {}
    for backend in found:
        first = chosen.setdefault(backend.name, backend)
        if first.plugin != backend.plugin:
            _warn_once(
                f"fieldwise plugins {first.plugin!r} and {backend.plugin!r} both register a "
                f"backend named {backend.name!r}: the one of {first.plugin!r} is used "
                f"({_TIES})"
            )
    return chosen


#: how a tie is settled, as the warnings say it
_TIES = "a plugin registered in-process wins over installed ones, and those go by plugin name"

Pickable = TypeVar("Pickable", DocumentLoader, TableAdapter)


def _claims(item: DocumentLoader | TableAdapter) -> list[str]:
    """The suffixes (in lower case) and media types an item reads."""
    return sorted({s.lower() for s in item.suffixes} | set(item.media_types))


def _warn_ties(items: list[Pickable], what: str) -> None:
    """Warn (once) where two plugins read the same suffix or media type at the same,
    highest, priority: ``_precedence`` settles it, but the user should know."""
    chosen: dict[str, Pickable] = {}
    for item in items:  # highest priority first, then by precedence
        for claim in _claims(item):
            first = chosen.setdefault(claim, item)
            if first.priority == item.priority and first.plugin != item.plugin:
                _warn_once(
                    f"fieldwise plugins {first.plugin!r} and {item.plugin!r} both register a "
                    f"{what} for {claim!r} at priority {item.priority}: {first.name!r} of "
                    f"{first.plugin!r} is used, not {item.name!r} of {item.plugin!r} "
                    f"({_TIES}; give one a higher priority to choose)"
                )


def _reads(item: DocumentLoader | TableAdapter, suffix: str, media_type: str | None) -> bool:
    suffixes = {s.lower() for s in item.suffixes}
    return suffix in suffixes or bool(media_type and media_type in item.media_types)


def _pick(
    items: list[Pickable],
    suffix: str,
    media_type: str | None,
    hook_name: str,
    example: str,
) -> Pickable:
    suffix = suffix.lower()
    for item in items:
        if _reads(item, suffix, media_type):
            return item
    what = "document loader" if hook_name == "register_document_loaders" else "table adapter"
    installed = ", ".join(f"{i.name} ({' '.join(i.suffixes)})" for i in items)
    shut_out = _left_out_note()
    missing = [package for package in example.split() if not _distribution_installed(package)]
    if shut_out:
        advice = shut_out
    elif missing or not items:
        advice = (
            f"Install a plugin for it (for example `pip install {' '.join(missing)}`), or "
            "convert the file."
        )
    else:
        advice = "Convert the file to one of those types, or install a plugin that reads it."
    raise UnsupportedInputError(
        f"No {what} reads {suffix or media_type or 'this input'!r}. "
        f"Installed: {installed or 'none'}. {advice}"
    )


def _left_out_note() -> str:
    """The plugins the environment variables leave out, and why: one of them may read a
    file nothing loaded reads. They are named, never imported to find out (a plugin is
    often disabled because importing it breaks, or is slow)."""
    if not _left_out:
        return ""
    listed = "; ".join(f"{ep.name!r} ({why})" for ep, why in _left_out)
    return f"Not loaded, and perhaps one that reads it: {listed}."


def _distribution_installed(name: str) -> bool:
    """Whether a package of this name is installed (the advice names only missing ones)."""
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def pick_document_loader(suffix: str, media_type: str | None = None) -> DocumentLoader:
    """The loader for a file suffix (``".pdf"``) or media type, or ``UnsupportedInputError``."""
    return _pick(
        document_loaders(), suffix, media_type, "register_document_loaders", "fieldwise-documents"
    )


def pick_table_adapter(suffix: str, media_type: str | None = None) -> TableAdapter:
    """The table adapter for a file suffix (``".csv"``), or ``UnsupportedInputError``."""
    return _pick(
        table_adapters(),
        suffix,
        media_type,
        "register_table_adapters",
        "fieldwise-csv fieldwise-xlsx",
    )


@dataclass(frozen=True)
class PluginInfo:
    """A plugin as ``fieldwise plugins`` shows it: what it registered, and every failure."""

    name: str
    version: str | None
    hooks: tuple[str, ...]
    #: every failure, joined with "; " (``errors`` holds them one by one)
    error: str | None = None
    errors: tuple[str, ...] = ()
    document_loaders: tuple[DocumentLoader, ...] = ()
    table_adapters: tuple[TableAdapter, ...] = ()
    backends: tuple[Backend, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``fieldwise plugins --json`` form: with each loader's and adapter's suffixes,
        media types and priority, so that a tie between two plugins can be seen."""
        return {
            "name": self.name,
            "version": self.version,
            "hooks": list(self.hooks),
            "error": self.error,
            "errors": list(self.errors),
            "document_loaders": [_reader_json(loader) for loader in self.document_loaders],
            "table_adapters": [_reader_json(adapter) for adapter in self.table_adapters],
            "backends": [backend.name for backend in self.backends],
        }


def _reader_json(item: DocumentLoader | TableAdapter) -> dict[str, Any]:
    return {
        "name": item.name,
        "suffixes": list(item.suffixes),
        "media_types": list(item.media_types),
        "priority": item.priority,
    }


def list_plugins() -> list[PluginInfo]:
    """Loaded plugins with version, hooks and what they registered, plus those that failed
    (with every error)."""
    pm = get_plugin_manager()
    loaders, adapters = document_loaders(), table_adapters()  # a hook that raises is found here
    every_backend = _collect("register_backends", Backend)  # the ones a tie hides included
    _settle_backends(every_backend)
    versions = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if name is None or plugin is None:
            continue
        infos.append(
            dataclasses.replace(
                _failed(name),
                version=versions.get(id(plugin)),
                hooks=tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or [])),
                document_loaders=_registered_by(name, loaders),
                table_adapters=_registered_by(name, adapters),
                backends=_registered_by(name, every_backend),
            )
        )
    loaded = {info.name for info in infos}
    infos.extend(_failed(name) for name in list(_failures) if name not in loaded)
    return sorted(infos, key=lambda i: i.name)


def _failed(name: str) -> PluginInfo:
    """A plugin's entry with its failures (and nothing else yet)."""
    errors = tuple(_failures.get(name, ()))
    return PluginInfo(name, None, (), "; ".join(errors) or None, errors)


def _registered_by(plugin: str, items: list[T]) -> tuple[T, ...]:
    return tuple(item for item in items if item.plugin == plugin)


def reset_plugins() -> None:
    """Forget loaded plugins (tests; or after changing the environment variables)."""
    global _pm
    with _lock:
        _pm = None
        _failures.clear()
        _entry_point_names.clear()
        _left_out.clear()
        _warned.clear()


def register_plugin(plugin: Any, name: str | None = None) -> Callable[[], None]:
    """Register a plugin object in-process; returns a function that unregisters it.

    Checked as installed plugins are: one that implements a hook fieldwise has no spec for
    (misspelt) is left out, and its failure recorded and warned about. At equal priority
    it wins over installed plugins (see the module's docstring)."""
    pm = get_plugin_manager()
    registered_name = _register_checked(pm, plugin, name)
    # the name its failure is recorded under when it was left out
    known_as = registered_name or name or pm.get_canonical_name(plugin)

    def unregister() -> None:
        if pm.get_plugin(known_as) is plugin:
            pm.unregister(plugin)
        _failures.pop(known_as, None)  # the plugin is gone: so are its failures

    return unregister
