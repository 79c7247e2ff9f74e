"""Property tests: generated models compile to accepted schemas and round-trip their wire.

Models are built with ``pydantic.create_model`` from a pool of field types (scalars, formats,
enums, literals, constrained types, lists, tuples, sets, dicts, optionals, unions, tagged
unions, nested models, aliases and defaults), a few levels deep.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import json
import uuid
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, EmailStr, Field, HttpUrl, TypeAdapter, create_model

from fieldwise.schema import CompiledSchema, compile_schema
from fieldwise.strict_subset import NAME_PATTERN, check_strict_schema

T = TypeVar("T")

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 3


@dataclasses.dataclass(frozen=True)
class Spec:
    """A field type and a strategy for Python values it accepts."""

    annotation: Any
    values: st.SearchStrategy[Any]
    nullable: bool = False


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)

LEAVES: list[Spec] = [
    Spec(int, st.integers(-(10**9), 10**9)),
    Spec(float, st.floats(allow_nan=False, allow_infinity=False)),
    Spec(str, TEXT),
    Spec(bool, st.booleans()),
    Spec(datetime.date, st.dates()),
    Spec(
        datetime.datetime,
        st.datetimes(timezones=st.sampled_from([None, datetime.UTC])),
    ),
    Spec(datetime.time, st.times()),
    Spec(uuid.UUID, st.uuids()),
    Spec(
        Decimal,
        st.decimals(
            min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False
        ),
    ),
    Spec(EmailStr, st.sampled_from(["ann@example.com", "b.c+tag@mail.example.org"])),
    Spec(HttpUrl, st.sampled_from(["https://example.com/", "http://a.example.org/x?q=1"])),
    Spec(Literal["alpha", "beta"], st.sampled_from(["alpha", "beta"])),
    Spec(Colour, st.sampled_from(Colour)),
    Spec(Level, st.sampled_from(Level)),
    Spec(
        Annotated[str, Field(min_length=1, max_length=8)],
        st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8),
    ),
    Spec(Annotated[int, Field(ge=0, le=100)], st.integers(0, 100)),
]

_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@st.composite
def specs(draw: st.DrawFn, depth: int) -> Spec:
    """A field type, nesting containers and models up to ``depth`` levels."""
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(LEAVES))
    kind = draw(
        st.sampled_from(
            ["list", "tuple", "set", "dict", "int_dict", "optional", "union", "model", "tagged"]
        )
    )
    if kind == "set":
        return draw(
            st.sampled_from(
                [
                    Spec(set[int], st.sets(st.integers(-5, 5), max_size=4)),
                    Spec(frozenset[str], st.frozensets(TEXT, max_size=3)),
                ]
            )
        )
    if kind == "union":
        return Spec(int | str, st.integers() | TEXT)
    if kind == "model":
        model, values = draw(models(depth - 1))
        return Spec(model, values)
    if kind == "tagged":
        first, first_values = draw(models(depth - 1, tag="a"))
        second, second_values = draw(models(depth - 1, tag="b"))
        annotation = Annotated[first | second, Field(discriminator="kind")]  # type: ignore[valid-type]
        return Spec(annotation, first_values | second_values)
    inner = draw(specs(depth - 1))
    if kind == "list":
        return Spec(list[inner.annotation], st.lists(inner.values, max_size=3))  # type: ignore[name-defined]
    if kind == "tuple":
        other = draw(st.sampled_from(LEAVES))
        return Spec(
            tuple[inner.annotation, other.annotation],  # type: ignore[name-defined]
            st.tuples(inner.values, other.values),
        )
    if kind == "dict":
        return Spec(
            dict[str, inner.annotation],  # type: ignore[name-defined]
            st.dictionaries(TEXT, inner.values, max_size=3),
        )
    if kind == "int_dict":
        return Spec(
            dict[int, inner.annotation],  # type: ignore[name-defined]
            st.dictionaries(st.integers(-50, 50), inner.values, max_size=3),
        )
    return Spec(inner.annotation | None, st.none() | inner.values, nullable=True)


@st.composite
def models(
    draw: st.DrawFn, depth: int, tag: str | None = None
) -> tuple[type[BaseModel], st.SearchStrategy[dict[str, Any]]]:
    """A generated model and a strategy for valid input dicts (keyed as the model expects)."""
    count = draw(st.integers(1, 5))
    fields: dict[str, Any] = {}
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    if tag is not None:
        fields["kind"] = (Literal[tag], ...)
        required["kind"] = st.just(tag)
    for i in range(count):
        spec = draw(specs(depth))
        name = f"f{i}"
        key = draw(st.sampled_from([name, f"F{i}Alias"]))
        has_default = draw(st.booleans())
        if has_default:
            raw = draw(spec.values)
            default = TypeAdapter(spec.annotation).validate_python(raw)
            info = Field(default=default, alias=key) if key != name else Field(default=default)
            optional[key] = spec.values
        else:
            info = Field(alias=key) if key != name else Field()
            required[key] = spec.values
        fields[name] = (spec.annotation, info)
    doc = "A generated model." if draw(st.booleans()) else None
    model = create_model(_name("Gen"), __doc__=doc, **fields)
    return model, st.fixed_dictionaries(required, optional=optional)


@st.composite
def model_and_instance(draw: st.DrawFn) -> tuple[type[BaseModel], BaseModel]:
    model, values = draw(models(2))
    return model, model.model_validate(draw(values))


def _validate_wire(compiled: CompiledSchema[Any], wire: str) -> None:
    validator = jsonschema.Draft202012Validator(compiled.schema)  # formats are not asserted
    validator.validate(json.loads(wire))


@SETTINGS
@given(model_and_instance())
def test_generated_models_compile_validate_and_round_trip(
    case: tuple[type[BaseModel], BaseModel],
) -> None:
    model, instance = case
    compiled = compile_schema(model)
    assert check_strict_schema(compiled.schema, name=compiled.name) == []
    wire = compiled.encode(instance)
    _validate_wire(compiled, wire)
    assert compiled.decode(wire) == instance
    assert compiled.decode_python(json.loads(wire)) == instance


@SETTINGS
@given(model_and_instance())
def test_null_restores_non_nullable_defaults(case: tuple[type[BaseModel], BaseModel]) -> None:
    model, instance = case
    compiled = compile_schema(model)
    wire = json.loads(compiled.encode(instance))
    restored: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required() or _accepts_none(field.annotation):
            continue
        wire[field.alias or name] = None
        restored[name] = field.default
    _validate_wire(compiled, json.dumps(wire))
    decoded = compiled.decode(json.dumps(wire))
    for name, default in restored.items():
        assert getattr(decoded, name) == default


def _accepts_none(annotation: Any) -> bool:
    try:
        TypeAdapter(annotation).validate_python(None)
    except Exception:
        return False
    return True


@st.composite
def model_and_instances(draw: st.DrawFn) -> tuple[type[BaseModel], list[BaseModel]]:
    model, values = draw(models(2))
    return model, [model.model_validate(v) for v in draw(st.lists(values, max_size=3))]


@SETTINGS
@given(model_and_instances())
def test_wrapped_lists_of_generated_models_round_trip(
    case: tuple[type[BaseModel], list[BaseModel]],
) -> None:
    model, instances = case
    compiled = compile_schema(list[model])  # type: ignore[valid-type]
    assert compiled.wrapped
    assert check_strict_schema(compiled.schema, name=compiled.name) == []
    wire = compiled.encode(instances)
    _validate_wire(compiled, wire)
    assert compiled.decode(wire) == instances


# -- against the OpenAI SDK's to_strict_json_schema ------------------------------------------


def _types(schema: dict[str, Any], node: dict[str, Any], depth: int = 0) -> frozenset[str]:
    """The JSON types a property may take, through $refs and anyOf (for a shallow compare)."""
    if depth > 5:
        return frozenset()
    if "$ref" in node:
        ref = node["$ref"]
        target = schema if ref == "#" else schema["$defs"][ref.rsplit("/", 1)[-1]]
        return _types(schema, target, depth + 1)
    if "anyOf" in node:
        return frozenset().union(*(_types(schema, b, depth + 1) for b in node["anyOf"]))
    kind = node.get("type")
    if isinstance(kind, list):
        return frozenset(kind)
    if isinstance(kind, str):
        return frozenset({kind})
    values = node.get("enum", [node["const"]] if "const" in node else [])
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return frozenset(names[type(v)] for v in values)


@SETTINGS
@given(models(2))
def test_agrees_with_openai_where_openai_is_accepted(
    case: tuple[type[BaseModel], st.SearchStrategy[dict[str, Any]]],
) -> None:
    model, _ = case
    ours = compile_schema(model).schema
    theirs = to_strict_json_schema(model)
    if check_strict_schema(theirs):
        return  # theirs would be rejected: nothing to agree with (see the test below)
    assert theirs["type"] == ours["type"] == "object"
    assert theirs["required"] == ours["required"]
    assert list(theirs["properties"]) == list(ours["properties"])
    for key, node in theirs["properties"].items():
        assert _types(theirs, node) == _types(ours, ours["properties"][key]), key


class _Invoice(BaseModel):
    number: str


class _Line(BaseModel):
    sku: str
    qty: int | None


class _Order(BaseModel):
    """An order."""

    placed: datetime.date
    colour: Colour
    lines: list[_Line]
    first: _Line = Field(description="The first line")
    note: str | None


def test_agrees_with_openai_on_a_model_it_handles() -> None:
    theirs = to_strict_json_schema(_Order)
    ours = compile_schema(_Order).schema
    assert check_strict_schema(theirs) == [] == check_strict_schema(ours)
    assert theirs["required"] == ours["required"]
    for key, node in theirs["properties"].items():
        assert _types(theirs, node) == _types(ours, ours["properties"][key]), key


class _Cat(BaseModel):
    kind: Literal["cat"]


class _Dog(BaseModel):
    kind: Literal["dog"]


class _WithDict(BaseModel):
    totals: dict[str, float]


class _WithDefault(BaseModel):
    currency: str = "EUR"


class _WithTaggedUnion(BaseModel):
    pet: Annotated[_Cat | _Dog, Field(discriminator="kind")]


class _Page(BaseModel, Generic[T]):
    items: list[T]


@pytest.mark.parametrize(
    "model", [_WithDict, _WithDefault, _WithTaggedUnion], ids=lambda m: m.__name__
)
def test_models_openai_gets_wrong_are_accepted_here(model: type[BaseModel]) -> None:
    assert check_strict_schema(to_strict_json_schema(model)) != []
    assert check_strict_schema(compile_schema(model).schema) == []


def test_generic_model_name_openai_would_send_is_rejected() -> None:
    model = _Page[_Invoice]
    # the SDK sends the class name as json_schema.name; endpoints require the pattern
    assert not NAME_PATTERN.match(model.__name__)
    compiled = compile_schema(model)
    assert check_strict_schema(compiled.schema, name=compiled.name) == []
