"""Typical user code, checked by ``mypy --strict`` in ``make lint`` (never run): every
documented kind of target must type-check, and a class target must type its value."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel

from fieldwise import Extractor, Result, aextract, arun, extract, run


class Invoice(BaseModel):
    number: str


class Receipt(BaseModel):
    total: float


async def every_target(ex: Extractor) -> None:
    invoice: Invoice = ex.extract("text", Invoice)
    result: Result[Invoice] = ex.run("text", Invoice)
    later: Result[Invoice] = await ex.arun("text", Invoice)
    also: Invoice = await ex.aextract("text", Invoice)
    lines: list[Invoice] = ex.extract("text", list[Invoice])
    label = ex.extract("text", Literal["spam", "ham"])
    maybe = ex.extract("text", Invoice | None)
    either = ex.extract("text", Union[Invoice, Receipt])  # noqa: UP007 (the old spelling)
    for item in ex.run_many(["a", "b"], Invoice):
        if item.result is not None:
            number: str = item.result.value.number
    async for done in ex.arun_many(["a"], Receipt):
        total: float | None = done.result.value.total if done.result else None
    for partial in ex.stream("text", Literal["a", "b"]):
        print(partial)
    top: Invoice = extract("text", Invoice)
    top_result: Result[Receipt] = run("text", Receipt)
    top_async: Receipt = await aextract("text", Receipt)
    top_any = await arun("text", Literal["x"])
    print(invoice, result, later, also, lines, label, maybe, either, number, total)
    print(top, top_result, top_async, top_any)
