"""The hooks a fieldwise plugin can implement.

Every hook takes a ``register`` callback, so a plugin can add several things from one
hook and the core decides what to do with them (simonw/llm's style). Plugins are
packages with an entry point in the ``fieldwise`` group; see ``docs/plugins.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .registry import Backend, DocumentLoader, TableAdapter

hookspec = pluggy.HookspecMarker("fieldwise")
hookimpl = pluggy.HookimplMarker("fieldwise")


@hookspec
def register_document_loaders(register: Callable[[DocumentLoader], None]) -> None:
    """Register readers that turn a file (PDF, DOCX, HTML...) into a ``Document``."""


@hookspec
def register_table_adapters(register: Callable[[TableAdapter], None]) -> None:
    """Register adapters that fill table cells (CSV rows, spreadsheet cells)."""


@hookspec
def register_backends(register: Callable[[Backend], None]) -> None:
    """Register model backends selected by a model prefix (``model="local"``)."""


@hookspec
def register_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add sub-commands to the ``fieldwise`` command line."""
