"""Regression tests: the wire shape and the user's own code meet in the right places.

The wire (``compiled.schema``) is what decode accepts and what encode writes; the user's
validators, serializers and example dicts keep seeing pydantic's Python shape.
"""

from __future__ import annotations

import base64
import datetime
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Json,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import core_schema as cs

from fieldwise import ConfigurationError, Extractor
from fieldwise.schema import CompiledSchema, compile_schema
from fieldwise.strict_subset import check_strict_schema
from fieldwise.testing import FakeLLM, reply


def make(fake: FakeLLM, **options: Any) -> Extractor:
    return Extractor(
        base_url=fake.base_url, cache=False, network_retries=0, backoff_base=0.01, **options
    )


def wire_valid(compiled: CompiledSchema[Any], answer: Any) -> bool:
    validator = jsonschema.Draft202012Validator(compiled.schema)  # formats are not asserted
    return validator.is_valid(answer)


def round_trips(compiled: CompiledSchema[Any], value: Any) -> Any:
    """encode's output is a valid answer, and decodes back to ``value``."""
    assert check_strict_schema(compiled.schema, name=compiled.name) == []
    wire = compiled.encode(value)
    assert wire_valid(compiled, json.loads(wire)), wire
    decoded = compiled.decode(wire)
    assert decoded == value
    return json.loads(wire)


# -- a discriminator's tag stays required and non-null -------------------------------------


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"


class Pet(BaseModel):
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]


def test_a_discriminator_tag_with_a_default_is_not_nullable() -> None:
    compiled = compile_schema(Pet)
    assert compiled.schema["$defs"]["Cat"]["properties"]["kind"] == {
        "type": "string",
        "const": "cat",
    }
    assert ("pet.kind", "default→nullable") not in {(e.path, e.kind) for e in compiled.report}
    # Every answer the wire allows decodes: a null tag is not allowed, null lives still is.
    for kind in ("cat", None):
        answer = {"pet": {"kind": kind, "lives": None}}
        if wire_valid(compiled, answer):
            assert compiled.decode(json.dumps(answer)) == Pet(pet=Cat())
    assert not wire_valid(compiled, {"pet": {"kind": None, "lives": None}})


# -- validators that read the raw input see the Python shape ---------------------------------


class Tagged(BaseModel):
    tags: dict[str, int]

    @field_validator("tags", mode="before")
    @classmethod
    def lower_keys(cls, value: Any) -> Any:
        return {key.lower(): n for key, n in value.items()}


class Priced(BaseModel):
    currency: str = "USD"
    prices: dict[str, Decimal] = {}

    @model_validator(mode="before")
    @classmethod
    def upper(cls, data: Any) -> Any:
        assert isinstance(data.get("prices", {}), dict)
        if "currency" in data:
            data = {**data, "currency": data["currency"].upper()}
        return data


class Wrapped(BaseModel):
    when: datetime.date
    counts: dict[str, int]

    @model_validator(mode="wrap")
    @classmethod
    def check(cls, data: Any, handler: Any) -> Any:
        assert isinstance(data["counts"], dict)
        return handler(data)


class Line(BaseModel):
    attrs: dict[str, str] = {}


class Order(BaseModel):
    number: int
    lines: list[Line]
    spec: dict[str, int]

    @field_validator("lines", mode="before")
    @classmethod
    def attrs_are_mappings(cls, lines: Any) -> Any:
        assert all(
            isinstance(line, Line) or isinstance(line.get("attrs", {}), dict) for line in lines
        )
        return lines

    @field_validator("spec", mode="before")
    @classmethod
    def parse(cls, spec: Any, info: ValidationInfo) -> Any:
        assert info.data["number"] == 7  # still validated in place, with the fields before
        return dict(part.split("=") for part in spec.split(",")) if isinstance(spec, str) else spec


def test_before_validators_see_mappings_and_no_null_defaults() -> None:
    tagged = compile_schema(Tagged)
    assert tagged.decode('{"tags": [{"key": "A", "value": 1}]}') == Tagged(tags={"a": 1})
    round_trips(tagged, Tagged(tags={"a": 1}))

    priced = compile_schema(Priced)
    decoded = priced.decode('{"currency": null, "prices": [{"key": "x", "value": "1.5"}]}')
    assert decoded == Priced(prices={"x": Decimal("1.5")})
    assert priced.decode('{"currency": "eur", "prices": null}').currency == "EUR"
    round_trips(priced, Priced(currency="EUR", prices={"a": Decimal(2)}))


def test_wrap_and_nested_validators_see_the_python_shape() -> None:
    wrapped = compile_schema(Wrapped)
    round_trips(wrapped, Wrapped(when=datetime.date(2024, 2, 3), counts={"a": 1}))

    order = compile_schema(Order)
    round_trips(order, Order(number=7, lines=[Line(attrs={"k": "v"}), Line()], spec={"a": 1}))
    answer = {"number": 7, "lines": [{"attrs": None}], "spec": [{"key": "a", "value": 1}]}
    assert order.decode(json.dumps(answer)) == Order(number=7, lines=[Line()], spec={"a": 1})


def test_wire_mistakes_under_a_validator_are_validation_errors() -> None:
    compiled = compile_schema(Tagged)
    with pytest.raises(ValidationError) as info:
        compiled.decode('{"tags": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}')
    assert info.value.errors()[0]["type"] == "duplicate_key"
    with pytest.raises(ValidationError) as info:
        compiled.decode('{"tags": [1, 2]}')
    assert info.value.errors()[0]["loc"] == ("tags",)


def test_a_before_validator_extracts_end_to_end(fake_llm: FakeLLM) -> None:
    fake_llm.script(reply.json({"tags": [{"key": "A", "value": 1}]}))
    assert make(fake_llm).run("A is 1", Tagged).value == Tagged(tags={"a": 1})


# -- aliases: the wire key is the one validation reads ---------------------------------------


class ByName(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=False)

    x: int = Field(alias="X")
    tags: dict[str, int] = {}


def test_validate_by_alias_off_names_the_wire_by_field_name() -> None:
    compiled = compile_schema(ByName)
    assert compiled.schema["required"] == ["x", "tags"]
    assert round_trips(compiled, ByName(x=1, tags={"a": 2})) == {
        "x": 1,
        "tags": [{"key": "a", "value": 2}],
    }


# -- the wire is always the validation shape -------------------------------------------------


class Override(BaseModel):
    model_config = ConfigDict(json_schema_mode_override="serialization")

    x: int = Field(validation_alias="vx", serialization_alias="sx")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def z(self) -> int:
        return 1


class NoOverride(BaseModel):
    x: int = Field(validation_alias="vx", serialization_alias="sx")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def z(self) -> int:
        return 1


def test_json_schema_mode_override_does_not_change_the_wire() -> None:
    compiled = compile_schema(Override)
    assert compiled.schema == compile_schema(NoOverride).schema
    assert compiled.schema["required"] == ["vx"]
    round_trips(compiled, Override(vx=1))  # type: ignore[call-arg]


# -- encode writes the wire shape, whatever the user's serializers write ---------------------


class FieldSerialized(BaseModel):
    at: datetime.datetime

    @field_serializer("at")
    def day_first(self, value: datetime.datetime) -> str:
        return value.strftime("%d/%m/%Y")


class ModelSerialized(BaseModel):
    x: int
    extra: dict[str, int] = {}

    @model_serializer(mode="wrap")
    def envelope(self, handler: Any) -> Any:
        return {"data": handler(self)}


class Annotated_(BaseModel):
    model_config = ConfigDict(strict=True)

    y: Annotated[int, PlainSerializer(str, return_type=str)]
    j: Json[list[int]]


class Cents:
    """A custom type: only its own serializer knows how to write it."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cents) and other.cents == self.cents

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return cs.no_info_after_validator_function(
            lambda text: Cents(int(text)),
            cs.str_schema(),
            serialization=cs.plain_serializer_function_ser_schema(lambda c: str(c.cents)),
        )


def _b64(value: Any) -> Any:
    return base64.b64decode(value) if isinstance(value, str) else value


class Inverses(BaseModel):
    price: Cents
    blob: Annotated[bytes, BeforeValidator(_b64), PlainSerializer(lambda b: base64.b64encode(b))]

    @field_serializer("price")
    def shown(self, value: Cents) -> str:
        return f"{value.cents / 100:.2f} EUR"


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (
            FieldSerialized(at=datetime.datetime(2020, 1, 2)),
            {"at": "2020-01-02T00:00:00"},
        ),
        (ModelSerialized(x=1, extra={"a": 1}), {"x": 1, "extra": [{"key": "a", "value": 1}]}),
        (Annotated_(y=2, j="[1, 2]"), {"y": 2, "j": "[1,2]"}),  # type: ignore[arg-type]
        (
            Inverses.model_validate({"price": "150", "blob": b"\x00\xff"}),
            {"price": "150", "blob": "AP8="},
        ),
    ],
)
def test_encode_ignores_the_users_serializers(value: BaseModel, wire: dict[str, Any]) -> None:
    assert round_trips(compile_schema(type(value)), value) == wire


def test_encoded_examples_decode(fake_llm: FakeLLM) -> None:
    example = Annotated_(y=2, j="[1]")  # type: ignore[arg-type]
    fake_llm.script(reply.json({"y": 3, "j": "[]"}))
    make(fake_llm).run("y is 3", Annotated_, examples=[("y is 2", example)])
    sent = fake_llm.requests[0].body["messages"][2]["content"]
    assert compile_schema(Annotated_).decode(sent) == example


# -- a Json[...] string holds pydantic's own JSON ---------------------------------------------


class Shared(BaseModel):
    counts: dict[str, int]


class Embedded(BaseModel):
    raw: Json[dict[str, int]]
    shared: Shared
    embedded: Json[Shared]


def test_nothing_inside_a_json_string_is_rewritten() -> None:
    compiled = compile_schema(Embedded)
    answer = {
        "raw": '{"a": 1}',
        "shared": {"counts": [{"key": "b", "value": 2}]},
        "embedded": '{"counts": {"c": 3}}',
    }
    expected = Embedded.model_validate_json(json.dumps({**answer, "shared": {"counts": {"b": 2}}}))
    assert compiled.decode(json.dumps(answer)) == expected
    with pytest.raises(ValidationError):
        compiled.decode(json.dumps({**answer, "raw": '[{"key": "a", "value": 1}]'}))
    wire = round_trips(compiled, expected)
    assert json.loads(wire["raw"]) == {"a": 1}
    assert json.loads(wire["embedded"]) == {"counts": {"c": 3}}


# -- the cache tells Union[A, B] from Union[B, A] --------------------------------------------


class First(BaseModel):
    x: int


class Second(BaseModel):
    x: int


def test_union_order_is_part_of_the_cache_key() -> None:
    ab = compile_schema(list[First | Second])
    ba = compile_schema(list[Second | First])
    assert ab is not ba
    assert compile_schema(list[Second | First]) is ba
    for compiled, tp in ((ab, list[First | Second]), (ba, list[Second | First])):
        expected = TypeAdapter(tp).validate_json('[{"x": 1}]')
        assert type(compiled.decode('{"value": [{"x": 1}]}')[0]) is type(expected[0])
    assert compile_schema(Literal["a", "b"]).schema != compile_schema(Literal["b", "a"]).schema


# -- Decimal bounds are JSON numbers ---------------------------------------------------------


class Bounded(BaseModel):
    whole: Annotated[int, Field(ge=Decimal("1"), le=Decimal("10"))]
    half: Annotated[float, Field(multiple_of=Decimal("0.5"))] = 1.0


def test_decimal_bounds_become_json_numbers() -> None:
    compiled = compile_schema(Bounded)
    assert check_strict_schema(compiled.schema, name=compiled.name) == []
    assert compiled.schema["properties"]["whole"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
    }
    half = compiled.schema["properties"]["half"]["anyOf"][0]
    assert half == {"type": "number", "multipleOf": 0.5}
    assert compiled.decode('{"whole": 3, "half": null}') == Bounded(whole=3)
    with pytest.raises(ValidationError):
        compiled.decode('{"whole": 3, "half": 0.7}')


# -- examples are written in the Python shape ------------------------------------------------


class Profile(BaseModel):
    name: str
    tags: dict[str, int]
    city: str = "Paris"


def test_example_dicts_are_in_the_python_shape(fake_llm: FakeLLM) -> None:
    ex = make(fake_llm)
    ex.run("Ada a=1", Profile, examples=[("Bob b=2", {"name": "Bob", "tags": {"b": 2}})])
    sent = json.loads(fake_llm.requests[0].body["messages"][2]["content"])
    assert sent == {"name": "Bob", "tags": [{"key": "b", "value": 2}], "city": "Paris"}
    ex.run("Ada", list[Profile], examples=[("Bob", [{"name": "Bob", "tags": {}}])])
    with pytest.raises(ConfigurationError, match=r"examples\[0\]"):
        ex.run("Ada", Profile, examples=[("Bob", {"name": "Bob", "tags": [{"key": "b"}]})])
