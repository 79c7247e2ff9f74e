"""What plugins register: document loaders, table adapters and model backends.

Plain frozen dataclasses, so a plugin needs nothing from the core but these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .document import Document


@dataclass(frozen=True)
class DocumentLoader:
    """Reads one kind of file into a ``Document``.

    ``load(data, name)`` gets the file's bytes and its file name. Among loaders that
    accept a file, the highest ``priority`` wins. ``check_size(size, name)``, when given,
    is asked before a file is read (``Document.open``) or bytes are loaded
    (``Document.from_bytes``) and raises the loader's own error for a file too large to
    load, so that such a file is refused without being read into memory first, and
    ``load`` only ever gets bytes within the cap.
    """

    name: str
    load: Callable[[bytes, str], Document]
    suffixes: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()
    priority: int = 0
    check_size: Callable[[int, str], None] | None = None
    #: the plugin that registered it, filled in by fieldwise (leave it out) so that a
    #: message can name the plugin; not compared, so equal registrations stay equal
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class TableAdapter:
    """Fills cells of one kind of table file (``fieldwise fill``).

    ``fill(path, **options)`` does the whole job and returns a summary dict; the options
    are documented in ``docs/plugins.md``.
    """

    name: str
    fill: Callable[..., Any]
    suffixes: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()
    priority: int = 0
    #: the plugin that registered it, filled in by fieldwise (leave it out) so that a
    #: message can name the plugin; not compared, so equal registrations stay equal
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class BackendEndpoint:
    """Where a backend's model is served: any OpenAI-compatible base URL."""

    base_url: str
    model: str
    api_key: str | None = None
    profile: str = "openai"
    #: USD per million (prompt, completion) tokens: ``(0.0, 0.0)`` for a model that runs
    #: on this machine, so costs (and ``max_cost=``) are known; ``None`` when unknown
    price: tuple[float, float] | None = None


@dataclass(frozen=True)
class Backend:
    """A model backend chosen by prefix: ``model="NAME"`` or ``model="NAME:ARG"``.

    ``resolve(arg)`` is called lazily, on the first request, with the text after the
    colon (or ``""``); it may start a server and must be thread-safe.
    """

    name: str
    resolve: Callable[[str], BackendEndpoint]
    description: str = ""
    #: ``available()`` says whether the backend can serve without set-up (its default model
    #: is installed); the core uses it to pick an offline default.
    available: Callable[[], bool] | None = None
    #: ``identity(arg)`` names what would answer (e.g. the model file and its size) without
    #: starting anything; it is part of every cache key, so swapping the model behind the
    #: same name never returns the other model's cached answers.
    identity: Callable[[str], str] | None = None
    #: USD per million (prompt, completion) tokens when it does not depend on the argument,
    #: known before anything starts (a dry run's estimate): ``(0.0, 0.0)`` for a model
    #: that runs on this machine. ``BackendEndpoint.price``, when given, takes precedence.
    price: tuple[float, float] | None = None
    #: the plugin that registered it, filled in by fieldwise (leave it out) so that a
    #: message can name the plugin; not compared, so equal registrations stay equal
    plugin: str = field(default="", compare=False)
