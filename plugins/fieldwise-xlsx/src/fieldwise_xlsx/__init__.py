"""fieldwise-xlsx: ``fieldwise fill book.xlsx`` fills a sheet's columns cell by cell.

Registered through the ``fieldwise`` entry point; openpyxl is imported only when a fill
runs, so loading the plugin costs the command line nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldwise.hookspecs import hookimpl
from fieldwise.registry import TableAdapter

__all__ = ["fill", "register_table_adapters"]


def fill(path: Any, **options: Any) -> dict[str, Any]:
    """Fill one sheet of an .xlsx/.xlsm workbook; the keyword contract is in
    ``docs/plugins.md``."""
    from ._fill import fill as run

    return run(path, **options)


@hookimpl
def register_table_adapters(register: Callable[[TableAdapter], None]) -> None:
    register(
        TableAdapter(
            name="xlsx",
            fill=fill,
            suffixes=(".xlsx", ".xlsm"),
            media_types=(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-excel.sheet.macroEnabled.12",
            ),
        )
    )
