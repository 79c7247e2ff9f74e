"""The three schemas of the shipped gold set (`examples/gold/*.jsonl`)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class SimpleForm(BaseModel):
    """A person's registration: name, age and city."""

    name: str = Field(description="the person's full name")
    age: int = Field(description="age in years")
    city: str = Field(description="the city the person lives in")


class ContactCard(BaseModel):
    """A contact card."""

    name: str = Field(description="the person's full name")
    email: str | None = Field(description="email address, null if none")
    phone: str | None = Field(description="phone number as written, null if none")
    company: str | None = Field(description="employer or organisation, null if none")


class InvoiceLine(BaseModel):
    description: str
    quantity: int
    unit_price: float


class Invoice(BaseModel):
    """An invoice."""

    number: str = Field(description="the invoice number as printed")
    date: dt.date = Field(description="the invoice date")
    currency: Literal["USD", "EUR", "GBP"]
    customer: str = Field(description="who is billed")
    lines: list[InvoiceLine]
    total: float
