"""Example-based tests of the schema compiler, through ``compile_schema`` only."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import json
import re
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, NotRequired, TypeVar

import pytest
from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    PrivateAttr,
    ValidationError,
    computed_field,
    create_model,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from fieldwise.exceptions import SchemaError
from fieldwise.schema import COMPILER_VERSION, CompiledSchema, Lowering, compile_schema
from fieldwise.strict_subset import NAME_PATTERN, check_strict_schema

T = TypeVar("T")


# -- helpers ---------------------------------------------------------------------------------


def compiled_ok(tp: Any) -> CompiledSchema[Any]:
    compiled = compile_schema(tp)
    assert check_strict_schema(compiled.schema, name=compiled.name) == []
    return compiled


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def resolve(compiled: CompiledSchema[Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref / one-branch anyOf wrappers down to the schema they name."""
    while True:
        if "$ref" in node:
            ref = node["$ref"]
            node = compiled.schema if ref == "#" else compiled.schema["$defs"][ref.split("/")[-1]]
        elif "anyOf" in node and len(node["anyOf"]) == 1:
            node = node["anyOf"][0]
        else:
            return node


def prop(compiled: CompiledSchema[Any], *names: str) -> dict[str, Any]:
    node = compiled.schema
    for name in names:
        node = resolve(compiled, node)["properties"][name]
    return node


def kinds(compiled: CompiledSchema[Any], path: str) -> set[str]:
    return {entry.kind for entry in compiled.report if entry.path == path}


# -- models used by several tests ------------------------------------------------------------


class Color(enum.StrEnum):
    """A paint colour."""

    RED = "red"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Item(BaseModel):
    """One invoice line."""

    sku: str = Field(min_length=3, description="Stock keeping unit")
    qty: int = Field(gt=0)
    price: Decimal


class Invoice(BaseModel):
    """An invoice as printed."""

    number: str
    issued: datetime.date
    items: list[Item]
    notes: str | None = None


# -- shape of a plain model ------------------------------------------------------------------


def test_plain_model_compiles_to_a_closed_required_object() -> None:
    compiled = compiled_ok(Invoice)
    schema = compiled.schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["number", "issued", "items", "notes"]
    assert schema["description"] == "An invoice as printed."
    assert prop(compiled, "issued") == {"type": "string", "format": "date"}
    assert prop(compiled, "notes") == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    item = compiled.schema["$defs"]["Item"]
    assert item["required"] == ["sku", "qty", "price"]
    assert item["additionalProperties"] is False
    assert not any("title" in node or "default" in node for node in walk(schema))
    assert compiled.target is Invoice
    assert compiled.wrapped is False


def test_response_format_name_and_fingerprint() -> None:
    compiled = compile_schema(Invoice)
    assert compiled.name == "Invoice"
    assert compiled.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "Invoice", "strict": True, "schema": compiled.schema},
    }
    assert re.fullmatch(r"[0-9a-f]{64}", compiled.fingerprint)
    assert isinstance(COMPILER_VERSION, str)


def test_fingerprint_is_stable_and_changes_with_the_schema() -> None:
    def make(kind: type) -> type[BaseModel]:
        return create_model("Same", a=(kind, ...))

    first, second, other = make(int), make(int), make(str)
    assert first is not second
    assert compile_schema(first).fingerprint == compile_schema(second).fingerprint
    assert compile_schema(first).fingerprint != compile_schema(other).fingerprint


def test_descriptions_from_docstrings_and_fields() -> None:
    class Line(BaseModel):
        """A line."""

        text: str

    class Doc(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)

        first: Line = Field(description="The first line")
        colour: Color
        count: int
        """How many there are."""

    compiled = compiled_ok(Doc)
    first = prop(compiled, "first")
    # strict endpoints reject $ref siblings: the description sits beside a one-branch anyOf
    assert first == {"description": "The first line", "anyOf": [{"$ref": "#/$defs/Line"}]}
    assert compiled.schema["$defs"]["Line"]["description"] == "A line."
    assert compiled.schema["$defs"]["Color"]["description"] == "A paint colour."
    assert prop(compiled, "count")["description"] == "How many there are."
    for node in walk(compiled.schema):
        assert "$ref" not in node or len(node) == 1


# -- optional, defaults ----------------------------------------------------------------------


class Settings(BaseModel):
    currency: str = "EUR"
    tags: list[str] = Field(default_factory=list)
    limit: int | None = 5
    maybe: str | None = None


def test_defaults_become_nullable_and_are_restored_on_decode() -> None:
    compiled = compiled_ok(Settings)
    currency = prop(compiled, "currency")
    assert currency["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert 'null means the default "EUR"' in currency["description"]
    assert kinds(compiled, "currency") == {"default→nullable"}
    assert kinds(compiled, "tags") == {"default→nullable"}

    value = compiled.decode('{"currency": null, "tags": null, "limit": 7, "maybe": null}')
    assert value == Settings(limit=7)
    # pydantic counts a sent key as set, even when null there asked for the default
    assert value.model_fields_set == {"currency", "tags", "limit", "maybe"}
    value = compiled.decode('{"currency": "USD", "tags": ["a"], "limit": 7, "maybe": "x"}')
    assert value == Settings(currency="USD", tags=["a"], limit=7, maybe="x")


def test_nullable_field_with_non_null_default_keeps_null() -> None:
    compiled = compiled_ok(Settings)
    limit = prop(compiled, "limit")
    assert limit["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert "default: 5" in limit["description"]
    assert kinds(compiled, "limit") == {"default→description"}
    decoded = compiled.decode('{"currency": "EUR", "tags": [], "limit": null, "maybe": null}')
    assert decoded.limit is None
    assert kinds(compiled, "maybe") == set()  # a None default needs no word


def test_default_factory_runs_per_decode() -> None:
    compiled = compile_schema(Settings)
    wire = '{"currency": null, "tags": null, "limit": null, "maybe": null}'
    first, second = compiled.decode(wire), compiled.decode(wire)
    assert first.tags == [] and first.tags is not second.tags


# -- scalar types, enums, collections --------------------------------------------------------


class Scalars(BaseModel):
    when: datetime.datetime
    day: datetime.date
    at: datetime.time
    span: datetime.timedelta
    uid: uuid.UUID
    amount: Decimal
    email: EmailStr
    site: HttpUrl
    colour: Color
    priority: Priority
    mode: Literal["fast", "slow"]


def test_scalar_formats_enums_and_literals() -> None:
    compiled = compiled_ok(Scalars)
    assert prop(compiled, "when") == {"type": "string", "format": "date-time"}
    assert prop(compiled, "at")["format"] == "time"
    assert prop(compiled, "span")["format"] == "duration"
    assert prop(compiled, "uid")["format"] == "uuid"
    assert prop(compiled, "email")["format"] == "email"
    site = prop(compiled, "site")
    assert "format" not in site and "absolute URL" in site["description"]
    assert "format→description" in kinds(compiled, "site")
    assert compiled.schema["$defs"]["Color"]["enum"] == ["red", "blue"]
    assert compiled.schema["$defs"]["Priority"] == {"type": "integer", "enum": [1, 2]}
    assert prop(compiled, "mode") == {"type": "string", "enum": ["fast", "slow"]}

    value = Scalars(
        when=datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
        day=datetime.date(2024, 5, 1),
        at=datetime.time(8, 15),
        span=datetime.timedelta(hours=2),
        uid=uuid.UUID(int=7),
        amount=Decimal("12.50"),
        email="a@example.com",
        site=HttpUrl("https://example.com/x"),
        colour=Color.BLUE,
        priority=Priority.HIGH,
        mode="slow",
    )
    assert compiled.decode(compiled.encode(value)) == value
    decoded = compiled.decode(compiled.encode(value))
    assert decoded.colour is Color.BLUE and decoded.priority is Priority.HIGH


def test_invalid_url_is_still_rejected_on_decode() -> None:
    compiled = compile_schema(Scalars)
    wire = json.loads(
        compiled.encode(
            Scalars.model_construct(
                when=datetime.datetime(2024, 1, 1),
                day=datetime.date(2024, 1, 1),
                at=datetime.time(1),
                span=datetime.timedelta(1),
                uid=uuid.UUID(int=1),
                amount=Decimal(1),
                email="a@example.com",
                site=HttpUrl("https://example.com"),
                colour=Color.RED,
                priority=Priority.LOW,
                mode="fast",
            )
        )
    )
    wire["site"] = "not a url"
    with pytest.raises(ValidationError) as info:
        compiled.decode(json.dumps(wire))
    assert [e["loc"] for e in info.value.errors()] == [("site",)]


class Collections(BaseModel):
    pair: tuple[int, str]
    many: tuple[int, ...]
    same: tuple[int, int]
    unique: set[int]
    frozen: frozenset[str]
    names: list[str] = Field(min_length=1, max_length=3)


def test_tuples_sets_and_lists() -> None:
    compiled = compiled_ok(Collections)
    pair = prop(compiled, "pair")
    assert pair["items"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert (pair["minItems"], pair["maxItems"]) == (2, 2)
    assert "items in this order: integer, string" in pair["description"]
    assert kinds(compiled, "pair") == {"tuple→array"}
    assert prop(compiled, "many") == {"type": "array", "items": {"type": "integer"}}
    same = prop(compiled, "same")
    assert same == {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
    assert kinds(compiled, "same") == set()  # nothing lost: no report
    assert "items must be unique" in prop(compiled, "unique")["description"]
    assert kinds(compiled, "unique") == {"unique_items→description"}
    names = prop(compiled, "names")
    assert (names["minItems"], names["maxItems"]) == (1, 3)

    value = Collections(
        pair=(1, "a"),
        many=(1, 2, 3),
        same=(4, 5),
        unique={1, 2},
        frozen=frozenset({"x"}),
        names=["n"],
    )
    assert compiled.decode(compiled.encode(value)) == value
    wrong_order = compiled.encode(value).replace('[1,"a"]', '["a",1]')
    with pytest.raises(ValidationError):
        compiled.decode(wrong_order)


# -- constraints moved into descriptions, still enforced --------------------------------------


class Constrained(BaseModel):
    model_config = ConfigDict(regex_engine="python-re")  # the slug pattern looks ahead

    code: Annotated[str, Field(min_length=3, max_length=3)]
    name: Annotated[str, Field(min_length=2)]
    short: Annotated[str, Field(max_length=1)]
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]
    slug: Annotated[str, Field(pattern=r"^(?!-)[a-z-]+$")]
    score: Annotated[float, Field(ge=0, le=1, multiple_of=0.25)]
    positive: Annotated[int, Field(gt=0, lt=10)]


def test_constraints_move_to_descriptions_and_are_enforced() -> None:
    compiled = compiled_ok(Constrained)
    assert prop(compiled, "code") == {"description": "(exactly 3 characters)", "type": "string"}
    assert prop(compiled, "name")["description"] == "(at least 2 characters)"
    assert prop(compiled, "short")["description"] == "(at most 1 character)"
    assert kinds(compiled, "code") == {"min_length→description", "max_length→description"}
    assert prop(compiled, "zip") == {"type": "string", "pattern": r"^\d{5}$"}
    slug = prop(compiled, "slug")
    assert "pattern" not in slug and "regular expression" in slug["description"]
    assert prop(compiled, "score") == {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "multipleOf": 0.25,
    }
    assert prop(compiled, "positive") == {
        "type": "integer",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 10,
    }
    good = {
        "code": "abc",
        "name": "xy",
        "short": "s",
        "zip": "12345",
        "slug": "a-b",
        "score": 0.5,
        "positive": 3,
    }
    assert compiled.decode(json.dumps(good)) == Constrained.model_validate(good)
    with pytest.raises(ValidationError) as info:
        compiled.decode(json.dumps({**good, "name": "x", "slug": "-a"}))
    assert {e["loc"] for e in info.value.errors()} == {("name",), ("slug",)}


def test_nested_constraint_error_has_the_users_path() -> None:
    compiled = compile_schema(Invoice)
    wire = {
        "number": "1",
        "issued": "2024-01-01",
        "items": [{"sku": "abc", "qty": 1, "price": 1}, {"sku": "x", "qty": 1, "price": 1}],
        "notes": None,
    }
    with pytest.raises(ValidationError) as info:
        compiled.decode(json.dumps(wire))
    assert [e["loc"] for e in info.value.errors()] == [("items", 1, "sku")]
    assert Lowering("items[].sku", "min_length→description", "minLength 3 described") in (
        compiled.report
    )


# -- dicts -----------------------------------------------------------------------------------


class Catalog(BaseModel):
    prices: dict[str, Decimal]
    stock: dict[int, Item] = {}
    by_colour: dict[Color, list[str]] | None = None
    counts: collections.Counter[str] = Field(default_factory=collections.Counter)
    ordered: collections.OrderedDict[str, int] = Field(default_factory=collections.OrderedDict)


def test_dict_fields_are_key_value_lists_and_round_trip() -> None:
    compiled = compiled_ok(Catalog)
    prices = prop(compiled, "prices")
    assert prices["type"] == "array"
    assert prices["items"] == {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "value": {"anyOf": [{"type": "number"}, {"type": "string"}]},
        },
        "required": ["key", "value"],
        "additionalProperties": False,
    }
    assert "dict→list" in kinds(compiled, "prices")
    assert kinds(compiled, "stock") == {"dict→list", "default→nullable"}
    # the report says the default as decoding restores it, a mapping; the description
    # tells the model its wire shape
    restored = [
        e.detail for e in compiled.report if (e.path, e.kind) == ("stock", "default→nullable")
    ]
    assert restored == ["null is replaced by the default {} on decode"]
    stock = resolve(compiled, prop(compiled, "stock"))["anyOf"][0]
    assert stock["items"]["properties"]["key"] == {"type": "integer"}

    value = Catalog(
        prices={"a": Decimal("1.5"), "b": Decimal(2)},
        stock={7: Item(sku="abc", qty=2, price=Decimal(3))},
        by_colour={Color.RED: ["x"]},
        counts=collections.Counter("aab"),
        ordered=collections.OrderedDict([("z", 1), ("a", 2)]),
    )
    wire = json.loads(compiled.encode(value))
    assert wire["prices"] == [{"key": "a", "value": "1.5"}, {"key": "b", "value": "2"}]
    assert wire["stock"][0]["key"] == 7
    assert wire["by_colour"] == [{"key": "red", "value": ["x"]}]
    decoded = compiled.decode(json.dumps(wire))
    assert decoded == value
    assert type(decoded.counts) is collections.Counter
    assert type(decoded.ordered) is collections.OrderedDict
    assert list(decoded.ordered) == ["z", "a"]


def test_dict_decode_errors() -> None:
    compiled = compile_schema(Catalog)
    rest = {"stock": None, "by_colour": None, "counts": None, "ordered": None}
    repeated = [{"key": "a", "value": 1}, {"key": "a", "value": 2}]
    with pytest.raises(ValidationError) as info:
        compiled.decode(json.dumps({"prices": repeated, **rest}))
    assert info.value.errors()[0]["type"] == "duplicate_key"
    assert info.value.errors()[0]["loc"] == ("prices",)
    bad_value = [{"key": "a", "value": 1}, {"key": "b", "value": "x"}]
    with pytest.raises(ValidationError) as info:
        compiled.decode(json.dumps({"prices": bad_value, **rest}))
    assert info.value.errors()[0]["loc"] == ("prices", 1, "value")


def test_top_level_dict_and_root_model_are_wrapped() -> None:
    compiled = compiled_ok(dict[str, int])
    assert compiled.wrapped
    assert compiled.name == "dict_str_int_"
    assert compiled.encode({"a": 1}) == '{"value":[{"key":"a","value":1}]}'
    assert compiled.decode('{"value":[{"key":"a","value":1}]}') == {"a": 1}


# -- unions ----------------------------------------------------------------------------------


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Owner(BaseModel):
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    other: Cat | Dog | None
    code: int | str


def test_unions_and_discriminated_unions_are_anyof() -> None:
    compiled = compiled_ok(Owner)
    assert prop(compiled, "pet") == {"anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]}
    assert kinds(compiled, "pet") == {"discriminator→anyOf"}
    assert prop(compiled, "code") == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert not any("oneOf" in n or "discriminator" in n for n in walk(compiled.schema))

    value = Owner(pet=Dog(kind="dog", good=True), other=Cat(kind="cat"), code="x")
    decoded = compiled.decode(compiled.encode(value))
    assert decoded == value and isinstance(decoded.pet, Dog)
    with pytest.raises(ValidationError) as info:
        compiled.decode('{"pet": {"kind": "dog", "good": "maybe"}, "other": null, "code": 1}')
    assert info.value.errors()[0]["loc"] == ("pet", "dog", "good")


# -- recursion -------------------------------------------------------------------------------


class Node(BaseModel):
    name: str
    children: list[Node] = []
    labels: dict[str, str] = {}


class Folder(BaseModel):
    name: str
    files: list[File]


class File(BaseModel):
    name: str
    parent: Folder | None


def test_recursive_model_uses_root_ref_and_round_trips() -> None:
    compiled = compiled_ok(Node)
    children = resolve(compiled, prop(compiled, "children"))["anyOf"][0]
    assert children == {"type": "array", "items": {"$ref": "#"}}
    tree = Node(name="a", children=[Node(name="b", labels={"k": "v"}, children=[Node(name="c")])])
    assert compiled.decode(compiled.encode(tree)) == tree


def test_mutually_recursive_models_use_defs() -> None:
    compiled = compiled_ok(Folder)
    assert set(compiled.schema["$defs"]) == {"File"}
    folder = Folder(name="root", files=[File(name="f", parent=Folder(name="p", files=[]))])
    assert compiled.decode(compiled.encode(folder)) == folder
    assert compiled_ok(list[Folder]).decode(compiled_ok(list[Folder]).encode([folder])) == [folder]


# -- aliases, extras, computed fields --------------------------------------------------------


class Aliased(BaseModel):
    model_config = ConfigDict(extra="allow")

    first_name: str = Field(alias="firstName")
    last: str = Field(validation_alias="Last", serialization_alias="LAST")
    middle: str = Field(validation_alias=AliasChoices("middle", "mid"))
    secret: str = Field(exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def full(self) -> str:
        return f"{self.first_name} {self.last}"


def test_aliases_extra_and_computed_fields() -> None:
    compiled = compiled_ok(Aliased)
    assert compiled.schema["required"] == ["firstName", "Last", "middle", "secret"]
    assert kinds(compiled, "") == {"extra→closed"}
    value = Aliased.model_validate({"firstName": "Ada", "Last": "L", "mid": "M", "secret": "s"})
    wire = json.loads(compiled.encode(value))
    assert wire == {"firstName": "Ada", "Last": "L", "middle": "M", "secret": "s"}
    assert compiled.decode(json.dumps(wire)) == value
    with pytest.raises(ValidationError) as info:
        compiled.decode('{"firstName": 1, "Last": "L", "middle": "M", "secret": "s"}')
    assert info.value.errors()[0]["loc"] == ("firstName",)


def test_extra_allow_model_without_fields_is_an_error() -> None:
    class Bag(BaseModel):
        model_config = ConfigDict(extra="allow")

    with pytest.raises(SchemaError, match="free-form object"):
        compile_schema(Bag)


# -- validators and hooks survive the rewritten decoder --------------------------------------


class Hooked(BaseModel):
    model_config = ConfigDict(str_to_upper=True)

    attrs: dict[str, int]
    unit: str = "kg"
    _seen: int = PrivateAttr(default=0)

    @field_validator("attrs")
    @classmethod
    def no_negative(cls, attrs: dict[str, int]) -> dict[str, int]:
        if any(v < 0 for v in attrs.values()):
            raise ValueError("negative")
        return attrs

    @model_validator(mode="after")
    def count(self) -> Hooked:
        self._seen += 1
        return self

    def model_post_init(self, context: Any) -> None:
        self._seen = 10


def test_validators_config_and_private_attrs_survive_lowering() -> None:
    compiled = compile_schema(Hooked)
    decoded = compiled.decode('{"attrs": [{"key": "a", "value": 1}], "unit": null}')
    assert type(decoded) is Hooked
    assert decoded.attrs == {"A": 1}  # the model's config applies to dict keys too
    assert decoded.unit == "kg"
    assert decoded._seen == 11
    with pytest.raises(ValidationError, match="negative"):
        compiled.decode('{"attrs": [{"key": "a", "value": -1}], "unit": "g"}')


def test_strict_models_decode_json_values() -> None:
    class Strict(BaseModel):
        model_config = ConfigDict(strict=True)

        days: dict[str, datetime.date]
        colour: Color = Color.RED

    compiled = compile_schema(Strict)
    wire = '{"days": [{"key": "a", "value": "2024-02-03"}], "colour": "blue"}'
    assert compiled.decode(wire) == Strict(days={"a": datetime.date(2024, 2, 3)}, colour=Color.BLUE)
    assert compiled.decode_python(json.loads(wire)) == compiled.decode(wire)


def test_custom_init_cannot_be_rebuilt() -> None:
    class Custom(BaseModel):
        tags: dict[str, str]

        def __init__(self, **data: Any) -> None:
            super().__init__(**data)

    with pytest.raises(SchemaError, match="model_post_init"):
        compile_schema(Custom)


# -- wrapped (non-model) targets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "value", "name"),
    [
        (list[Item], [Item(sku="abc", qty=1, price=Decimal(1))], "list_Item_"),
        (int, 42, "int"),
        (str, "hi", "str"),
        (Literal["a", "b"], "b", "Literal"),
        (Item | None, None, "Item_or_None"),
        (tuple[int, str], (1, "x"), "tuple_int_str_"),
    ],
)
def test_other_types_are_wrapped_in_value(tp: Any, value: Any, name: str) -> None:
    compiled = compiled_ok(tp)
    assert compiled.wrapped
    assert compiled.name == name
    assert compiled.schema["required"] == ["value"]
    assert compiled.report[0].kind == "wrapped"
    wire = compiled.encode(value)
    assert json.loads(wire).keys() == {"value"}
    assert compiled.decode(wire) == value
    assert compiled.decode_python(json.loads(wire)) == value


def test_typed_dict_and_dataclass_targets() -> None:
    class Person(TypedDict):
        name: str
        nick: NotRequired[str]

    @dataclasses.dataclass
    class Point:
        x: int
        meta: dict[str, str] = dataclasses.field(default_factory=dict)

    people = compiled_ok(list[Person])
    assert kinds(people, "value[].nick") == {"not-required→nullable"}
    wire = people.encode([{"name": "a"}, {"name": "b", "nick": "B"}])
    assert json.loads(wire) == {"value": [{"name": "a", "nick": None}, {"name": "b", "nick": "B"}]}
    assert people.decode(wire) == [{"name": "a"}, {"name": "b", "nick": "B"}]

    points = compiled_ok(Point)
    assert points.decode('{"value": {"x": 1, "meta": null}}') == Point(1)
    assert points.decode(points.encode(Point(2, {"k": "v"}))) == Point(2, {"k": "v"})


def test_wrapped_decode_error_locations_start_at_value() -> None:
    compiled = compile_schema(list[Item])
    with pytest.raises(ValidationError) as info:
        compiled.decode('{"value": [{"sku": "ab", "qty": 1, "price": 1}]}')
    assert info.value.errors()[0]["loc"] == ("value", 0, "sku")


# -- names -----------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None


def test_generic_model_names_are_sanitised() -> None:
    assert compiled_ok(Page[Invoice]).name == "Page_Invoice_"
    assert compile_schema(Page[list[Invoice]]).name == "Page_list_Invoice__"
    assert compile_schema(Page[Page[Invoice]]).name == "Page_Page_Invoice__"


def test_long_names_are_truncated_with_a_hash() -> None:
    long_a = create_model("A" * 80 + "x", v=(int, ...))
    long_b = create_model("A" * 80 + "y", v=(int, ...))
    name_a, name_b = compile_schema(long_a).name, compile_schema(long_b).name
    assert NAME_PATTERN.match(name_a) and len(name_a) == 64
    assert name_a != name_b
    assert name_a == compile_schema(create_model("A" * 80 + "x", v=(int, ...))).name


#: field names that are also words of pydantic's core schemas or of JSON Schema
SCHEMA_WORDS = ["type", "fields", "items", "properties", "required", "anyOf",
                "ref", "definitions", "default", "enum", "choices", "metadata", "config",
                "serialization", "description"]  # fmt: skip


class Debit(BaseModel):
    type: Literal["debit"] = "debit"
    amount: float


class Credit(BaseModel):
    type: Literal["credit"] = "credit"
    amount: float
    note: str | None = None


class Ledger(BaseModel):
    type: str
    entries: list[Annotated[Debit | Credit, Field(discriminator="type")]]
    by_type: dict[str, int]


class TypedRow(TypedDict):
    type: str
    schema: int


@dataclasses.dataclass
class DataRow:
    type: str
    fields: list[str]


@pytest.mark.parametrize("name", SCHEMA_WORDS)
def test_a_field_may_bear_a_schema_word_as_its_name(name: str) -> None:
    """A model's fields are a mapping keyed by field name: a field called ``type`` (or any
    other schema word) is a field, not a schema node."""
    inner = create_model(f"Inner_{name}", **{name: (int, ...)})
    model = create_model(f"Outer_{name}", **{name: (str, ...), "inner": (inner, ...),
                                             "many": (list[inner], ...)})  # fmt: skip
    compiled = compiled_ok(model)
    assert name in compiled.schema["properties"]
    value = model(**{name: "x", "inner": {name: 1}, "many": [{name: 2}]})
    assert compiled.decode(compiled.encode(value)) == value


@pytest.mark.parametrize("target", [Ledger, TypedRow, DataRow, list[Debit | Credit]])
def test_a_field_named_type_compiles_and_round_trips(target: Any) -> None:
    examples: dict[Any, Any] = {
        Ledger: Ledger(
            type="ledger",
            entries=[Debit(amount=1), Credit(amount=2, note="n")],
            by_type={"debit": 1},
        ),
        TypedRow: TypedRow(type="row", schema=3),
        DataRow: DataRow(type="row", fields=["a"]),
        list[Debit | Credit]: [Credit(amount=2), Debit(amount=1)],
    }
    compiled = compiled_ok(target)
    value = examples[target]
    assert compiled.decode(compiled.encode(value)) == value


# -- what cannot be expressed ----------------------------------------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(
    ("fields", "path", "hint"),
    [
        ({"data": (Any, ...)}, "data", "nested model"),
        ({"items": (list[dict[str, Any]], ...)}, "items[][].value", "nested model"),
        ({"meta": (dict, ...)}, "meta", "dict[str, X]"),
        ({"things": (list, ...)}, "things[]", "nested model"),
        ({"handler": (Callable[[int], int], ...)}, "handler", "str"),
        ({"obj": (Opaque, ...)}, "obj", "pydantic model"),
        ({"pairs": (dict[tuple[int, int], str], ...)}, "pairs[].key", "list of models"),
        ({"open": (object, ...)}, "open", "nested model"),
        ({"deep": (int, Field(validation_alias=AliasPath("a", "b")))}, "deep", "plain alias"),
    ],
)
def test_inexpressible_fields_raise_schema_error_with_path(
    fields: dict[str, Any], path: str, hint: str
) -> None:
    model = create_model("Bad", __config__=ConfigDict(arbitrary_types_allowed=True), **fields)
    with pytest.raises(SchemaError) as info:
        compile_schema(model)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert hint in str(info.value)


def test_nested_inexpressible_field_names_the_full_path() -> None:
    class Inner(BaseModel):
        blob: Any

    class Outer(BaseModel):
        rows: list[Inner]

    with pytest.raises(SchemaError) as info:
        compile_schema(Outer)
    assert info.value.path == "rows[].blob"


def test_undefined_forward_reference_is_a_schema_error() -> None:
    class Later(BaseModel):
        x: Missing  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(SchemaError, match="not fully defined"):
        compile_schema(Later)


def test_unparametrised_generic_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(Page)
    assert info.value.path == "items[]"


# -- caching and the decode fast path --------------------------------------------------------


def test_compile_is_cached_per_type() -> None:
    assert compile_schema(Invoice) is compile_schema(Invoice)
    assert compile_schema(list[Invoice]) is compile_schema(list[Invoice])
    annotated = Annotated[list[int], Field(min_length=1)]
    assert compile_schema(annotated) is compile_schema(annotated)


def test_unhashable_typing_objects_are_cached_too() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Unhashable)

    tp = Annotated[int, Unhashable()]
    with pytest.raises(TypeError):
        hash(tp)
    first = compile_schema(tp)
    assert compile_schema(tp) is first
    assert first.decode('{"value": 3}') == 3


def test_decode_fast_path_is_pydantics_own_validator() -> None:
    compiled = compile_schema(Invoice)
    # No lowering changes data here, so decode must be the model's validator, nothing more.
    assert compiled._decode == Invoice.__pydantic_validator__.validate_json
    good = (
        '{"number":"1","issued":"2024-01-02","items":[{"sku":"abc","qty":1,"price":"2"}],'
        '"notes":null}'
    )
    assert compiled.decode(good) == Invoice.model_validate_json(good)
    assert compiled.decode(good.encode()) == Invoice.model_validate_json(good)
    bad = good.replace('"qty":1', '"qty":0')
    with pytest.raises(ValidationError) as ours:
        compiled.decode(bad)
    with pytest.raises(ValidationError) as theirs:
        Invoice.model_validate_json(bad)
    assert ours.value.errors() == theirs.value.errors()


def test_decode_python_matches_decode() -> None:
    compiled = compile_schema(Catalog)
    wire = compiled.encode(Catalog(prices={"a": Decimal(1)}))
    assert compiled.decode_python(json.loads(wire)) == compiled.decode(wire)
    with pytest.raises(ValidationError):
        compiled.decode_python({"prices": "nope"})


# -- report and limits -----------------------------------------------------------------------


def test_report_lists_every_lowering_with_paths() -> None:
    class Order(BaseModel):
        items: list[Item]
        meta: dict[str, str]
        status: Literal["new", "done"] = "new"

    compiled = compile_schema(Order)
    entries = {(e.path, e.kind) for e in compiled.report}
    assert entries == {
        ("items[].sku", "min_length→description"),
        ("meta", "dict→list"),
        ("status", "default→nullable"),
    }
    for entry in compiled.report:
        assert isinstance(entry, Lowering) and entry.detail
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.report[0].kind = "x"  # type: ignore[misc]


def test_nesting_beyond_the_limit_is_reported() -> None:
    model: type[BaseModel] = create_model("Level0", leaf=(int, ...))
    for depth in range(1, 12):
        model = create_model(f"Level{depth}", child=(model, ...))
    compiled = compile_schema(model)
    assert [e.kind for e in compiled.report] == ["limit"]
    assert "12 levels" in compiled.report[0].detail


# -- the strict-subset checker itself --------------------------------------------------------


def test_checker_accepts_a_strict_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": ["string", "null"]}, "b": {"$ref": "#/$defs/B"}},
        "required": ["a", "b"],
        "additionalProperties": False,
        "$defs": {"B": {"type": "integer", "enum": [1, 2]}},
    }
    assert check_strict_schema(schema) == []


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"anyOf": [{"type": "object"}]}, "root must be an object"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": []},
            "additionalProperties",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": False,
            },
            "not required: a",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string", "minLength": 1}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "'minLength' is not allowed",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/A", "description": "x"}},
                "required": ["a"],
                "additionalProperties": False,
                "$defs": {"A": {"type": "string"}},
            },
            "sibling",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/Nope"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "does not resolve",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string", "format": "uri"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "format 'uri'",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "no type",
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string", "enum": list(range(1001))}},
                "required": ["a"],
                "additionalProperties": False,
            },
            "1001 enum values",
        ),
    ],
)
def test_checker_finds_problems(schema: dict[str, Any], needle: str) -> None:
    problems = check_strict_schema(schema)
    assert any(needle in p for p in problems), problems


def test_checker_limits_on_size_and_name() -> None:
    many = {f"p{i}": {"type": "string"} for i in range(5001)}
    schema = {
        "type": "object",
        "properties": many,
        "required": list(many),
        "additionalProperties": False,
    }
    assert any("5001 properties" in p for p in check_strict_schema(schema))
    small = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    assert check_strict_schema(small, name="Page[Invoice]") != []
    assert check_strict_schema(small, name="Page_Invoice_") == []


# -- odds and ends ---------------------------------------------------------------------------


def test_non_types_are_schema_errors() -> None:
    with pytest.raises(SchemaError, match="cannot build a schema for 5"):
        compile_schema(5)


def test_unknown_keywords_are_dropped_and_reported() -> None:
    class Extra(BaseModel):
        a: int = Field(json_schema_extra={"x-unit": "kg"}, deprecated="use b")
        b: bytes

    compiled = compiled_ok(Extra)
    assert prop(compiled, "a") == {"type": "integer"}
    assert kinds(compiled, "a") == {"keyword→dropped"}
    assert kinds(compiled, "b") == {"format→dropped"}
    assert compiled.decode('{"a": 1, "b": "xyz"}').b == b"xyz"


def test_frozen_models_with_lowering() -> None:
    class Frozen(BaseModel):
        model_config = ConfigDict(frozen=True)

        tags: dict[str, int]
        size: int = 3

    compiled = compile_schema(Frozen)
    value = compiled.decode('{"tags": [{"key": "a", "value": 1}], "size": null}')
    assert value == Frozen(tags={"a": 1}) and value.size == 3
    with pytest.raises(ValidationError):
        value.size = 4


def test_recursive_schema_depth_is_not_a_limit_problem() -> None:
    assert kinds(compile_schema(Node), "") == set()
    assert check_strict_schema(compile_schema(list[Node]).schema) == []
