"""Models the tests extract, written the way users write them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int
    city: str | None = None


class Address(BaseModel):
    street: str
    city: str
    country: str = "US"


class LineItem(BaseModel):
    description: str
    quantity: int = Field(ge=1)
    unit_price: float


class Invoice(BaseModel):
    """An invoice: who billed whom, for what."""

    number: str = Field(description="the invoice number as printed")
    issued: dt.date
    currency: Literal["USD", "EUR", "GBP"]
    seller: str
    billing_address: Address
    items: list[LineItem]
    total: float


class Tagged(BaseModel):
    tags: list[str] = Field(min_length=2)
