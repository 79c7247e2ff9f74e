"""The request and response bodies of the service (what the OpenAPI document shows).

Why one response model per schema: a client generated from the OpenAPI document should get
``data`` typed as the registered model (``Invoice``), not as an anonymous object.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from ..result import Result

# The largest integer a JSON number holds exactly everywhere (clients in JavaScript...).
MAX_SEED = 2**53 - 1


def _encodable(value: str | None) -> str | None:
    """Reject strings with lone surrogates: they cannot be sent on as UTF-8."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


class ExtractRequest(BaseModel):
    """Text to extract from, with optional per-request instructions and seed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, description="the text to extract from")
    instructions: str | None = Field(
        default=None, description="extra instructions for the model, for this request"
    )
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="sampling seed (part of the cache key)"
    )

    _check_text = field_validator("text", "instructions")(_encodable)

    @field_validator("seed", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        """JSON has one number type: ``7.0`` is the integer 7 (as JSON Schema says), while
        strict mode still refuses ``true`` and ``"7"``."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class UsageOut(BaseModel):
    """Tokens and requests this extraction took (all zero for a cache hit)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    requests: int
    cost: float | None


class SchemaInfo(BaseModel):
    """A registered schema: its name and the strict JSON schema sent to the model."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    json_schema: dict[str, Any] = Field(alias="schema")


class SchemaList(BaseModel):
    schemas: list[SchemaInfo]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    model: str


def extraction_model(name: str, target: type[BaseModel]) -> type[BaseModel]:
    """``{name}Extraction``: ``data`` typed as ``target`` plus usage, cost and provenance."""
    return create_model(
        f"{name}Extraction",
        __doc__=f"A validated {name} and what it took to get it.",
        data=(target, ...),
        usage=(UsageOut, ...),
        cost=(float | None, Field(description="USD; null when unknown, 0 for a cache hit")),
        cached=(bool, ...),
        model=(str | None, ...),
        attempts=(int, Field(description="model answers needed (re-asks + 1)")),
    )


def render(response_model: type[BaseModel], result: Result[Any]) -> bytes:
    """The response body for ``result``, serialised as the OpenAPI document describes it.

    ``model_construct``: every value here was validated already (``data`` by the
    extraction, the rest are ours), and validating them again cost ~3 µs a request."""
    payload = response_model.model_construct(
        data=result.value,
        usage=UsageOut.model_construct(**result.usage.to_dict()),
        cost=result.cost,
        cached=result.cached,
        model=result.model,
        attempts=result.attempts,
    )
    return payload.model_dump_json(by_alias=True).encode()
