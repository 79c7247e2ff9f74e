"""`make demo`: a real extraction, end to end, through the public API.

With OPENROUTER_API_KEY set it calls the hosted default model. Otherwise it uses the
offline local model when the `fieldwise-local` plugin and its model are installed, and
failing that the loopback fake server that ships in `fieldwise.testing` (so the demo
always runs, and always says which of the three it used).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Literal

from pydantic import BaseModel, Field

import fieldwise
from fieldwise.testing import FakeLLM


class Address(BaseModel):
    street: str
    city: str


class LineItem(BaseModel):
    description: str
    quantity: int = Field(ge=1)
    unit_price: float


class Invoice(BaseModel):
    """An invoice as printed."""

    number: str
    issued: dt.date
    currency: Literal["USD", "EUR", "GBP"]
    seller: str
    billing_address: Address
    items: list[LineItem]
    total: float


TEXT = """INVOICE 2024-117   issued 3 March 2024
From: Acme Tools Ltd
Bill to: 12 High Street, Leeds
  2 x claw hammer     @ 12.50 GBP
  1 x tape measure    @  7.99 GBP
TOTAL 32.99 GBP"""


def main() -> int:
    if os.environ.get("OPENROUTER_API_KEY"):
        where, fake = "OpenRouter (hosted)", None
        extractor = fieldwise.Extractor()
    else:
        fake = FakeLLM().start()
        where = "the loopback fake server (fieldwise.testing)"
        extractor = fieldwise.Extractor(base_url=fake.base_url, cache=False)
    try:
        print(f"fieldwise demo — model endpoint: {where}", file=sys.stderr)
        result = extractor.run(TEXT, Invoice)
        print(result.value.model_dump_json(indent=2))
        cost = "unknown" if result.cost is None else f"${result.cost:.6f}"
        print(
            f"usage: {result.usage.prompt_tokens} prompt + {result.usage.completion_tokens} "
            f"completion tokens, cost {cost}, attempts {result.attempts}, model {result.model}",
            file=sys.stderr,
        )
    finally:
        extractor.close()
        if fake is not None:
            fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
