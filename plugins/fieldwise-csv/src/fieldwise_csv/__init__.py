"""fieldwise-csv: ``fieldwise fill data.csv`` fills a CSV/TSV file's columns row by row.

Registered through the ``fieldwise`` entry point; the filling code is imported only when a
fill runs, so loading the plugin costs the command line nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldwise.hookspecs import hookimpl
from fieldwise.registry import TableAdapter

__all__ = ["fill", "register_table_adapters"]


def fill(path: Any, **options: Any) -> dict[str, Any]:
    """Fill a CSV/TSV file; the keyword contract is in ``docs/plugins.md``."""
    from ._fill import fill as run

    return run(path, **options)


@hookimpl
def register_table_adapters(register: Callable[[TableAdapter], None]) -> None:
    register(
        TableAdapter(
            name="csv",
            fill=fill,
            suffixes=(".csv", ".tsv"),
            media_types=("text/csv", "text/tab-separated-values"),
        )
    )
