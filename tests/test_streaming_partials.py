"""What partial values show, through ``Extractor.stream`` against the fake: never a value
the answer does not have (a date cut short, the wrong branch of a union), of the target's
own kind (a ``list[Model]`` streams partial models), each one new.

The fake streams an answer in five pieces of equal size; ``in_five`` pads an answer with
blanks between its tokens so that each piece ends exactly where a test needs a cut.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import json
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import pytest
from pydantic import BaseModel, Field, create_model
from typing_extensions import TypedDict

from fieldwise import Extractor
from fieldwise.testing import FakeLLM, reply

# the extractor on the fake that tests/test_streaming.py uses (a fixture, imported by name)
from tests.test_streaming import ex as ex


def in_five(*pieces: str) -> str:
    """The answer whose five streamed pieces are ``pieces``, each padded to one size with
    blanks where it has a ``~`` (outside any string), or at its end (the last ones)."""
    assert 1 <= len(pieces) <= 5
    pieces = (*pieces, *["~"] * (5 - len(pieces)))
    size = max(len(p.replace("~", "")) for p in pieces)
    padded = [p.replace("~", " " * (size - len(p) + 1), 1) if "~" in p else p for p in pieces]
    assert all(len(p) == size for p in padded), padded
    return "".join(padded)


def streamed(ex: Extractor, fake: FakeLLM, target: Any, text: str) -> tuple[list[Any], Any]:
    fake.script(reply.text(text))
    *partials, final = ex.stream("input", target)
    return partials, final


# -- a string still being written: shown only where it is text --------------------------------


class Size(enum.StrEnum):
    large = "large"
    larger = "larger"


@pytest.mark.parametrize(
    ("annotation", "value", "cut"),
    [
        (dt.datetime, "2024-03-01T10:30:45+02:00", "2024"),  # a Unix timestamp: 1970
        (dt.datetime, "2024-03-01T10:30:45+02:00", "2024-03-01"),  # a naive midnight
        (dt.date, "2024-03-01", "2024"),
        (dt.time, "10:30:45", "10:30"),
        (dt.timedelta, "PT1H30M", "PT1H"),
        (Decimal, "12.50", "12"),
        (Size, "larger", "large"),
        (Literal["approved", "approved late"], "approved late", "approved"),
        (bytes, "abcdef", "abc"),
        (uuid.UUID, "12345678-1234-5678-1234-567812345678", "12345678"),
        (list[dt.date], ["2024-03-01", "2024-03-02"], '2024-03-01", "2024'),
    ],
)
def test_a_value_that_is_not_text_is_not_shown_before_its_closing_quote(
    ex: Extractor, fake_llm: FakeLLM, annotation: Any, value: Any, cut: str
) -> None:
    holder = create_model("Holder", value=(annotation, ...), note=(str, ...))
    text = json.dumps({"value": value, "note": "n"})
    at = text.index(cut) + len(cut)
    partials, final = streamed(ex, fake_llm, holder, in_five("{~" + text[1:at], text[at:] + "~"))
    assert partials
    for partial in partials:
        shown = partial.value
        if isinstance(shown, list):  # the items so far, each complete
            assert shown == final.value[: len(shown)]
        else:
            assert shown in (None, final.value)


def test_text_still_streams_while_it_is_written(ex: Extractor, fake_llm: FakeLLM) -> None:
    class Note(BaseModel):
        when: dt.date
        text: str

    answer = {"when": "2024-03-01", "text": "the quick brown fox jumps over the dog"}
    partials, final = streamed(ex, fake_llm, Note, json.dumps(answer))
    shown = [p.text for p in partials if p.text and p.text != final.text]
    assert shown and all(final.text.startswith(text) for text in shown)


# -- a target sent wrapped: partials of its own kind --------------------------------------------


class Person(BaseModel):
    full_name: str = Field(alias="fullName")
    born: dt.date


def test_a_list_of_models_streams_lists_of_partial_models(ex: Extractor, fake_llm: FakeLLM) -> None:
    people = [{"fullName": "Ada Lovelace", "born": "1815-12-10"}, {"fullName": "Alan Turing"}]
    people[1]["born"] = "1912-06-23"
    partials, final = streamed(ex, fake_llm, list[Person], json.dumps({"value": people}))
    assert [p.full_name for p in final] == ["Ada Lovelace", "Alan Turing"]
    assert partials and all(isinstance(p, list) for p in partials)
    items = [item for p in partials for item in p]
    assert items and all(type(item).__name__ == "PartialPerson" for item in items)
    for partial in partials:
        for item, person in zip(partial, final, strict=False):
            assert person.full_name.startswith(item.full_name or "")  # read by its alias
            assert item.born in (None, person.born)
    assert any(item.full_name == "Ada Lovelace" for item in items)


def test_a_dict_of_models_streams_mappings_of_partial_models(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    entries = [
        {"key": "ada", "value": {"fullName": "Ada Lovelace", "born": "1815-12-10"}},
        {"key": "alan", "value": {"fullName": "Alan Turing", "born": "1912-06-23"}},
    ]
    partials, final = streamed(ex, fake_llm, dict[str, Person], json.dumps({"value": entries}))
    assert set(final) == {"ada", "alan"}
    assert partials and all(isinstance(p, dict) for p in partials)
    for partial in partials:
        for key, item in partial.items():
            assert type(item).__name__ == "PartialPerson"
            assert final[key].full_name.startswith(item.full_name or "")


@pytest.mark.parametrize(
    ("target", "value", "cut"),
    [
        (Size, "larger", "large"),
        (Literal["approved", "approved late"], "approved late", "approved"),
        (dt.date, "2024-03-01", "2024"),
    ],
)
def test_a_wrapped_value_is_shown_only_once_complete(
    ex: Extractor, fake_llm: FakeLLM, target: Any, value: str, cut: str
) -> None:
    text = json.dumps({"value": value})
    at = text.index(cut) + len(cut)
    partials, final = streamed(ex, fake_llm, target, in_five("{~" + text[1:at], text[at:] + "~"))
    assert all(p == final and type(p) is type(final) for p in partials)


class Address(TypedDict):
    street: str
    city: str


def test_a_typed_dict_target_streams_dicts(ex: Extractor, fake_llm: FakeLLM) -> None:
    answer = {"value": {"street": "12 Long Road, Little Village", "city": "Cambridge"}}
    partials, final = streamed(ex, fake_llm, Address, json.dumps(answer))
    assert final == answer["value"]
    assert partials and all(isinstance(p, dict) for p in partials)
    assert all(final["street"].startswith(p.get("street") or "") for p in partials)


# -- unions: the branch the answer names, and no field shown then gone ---------------------------


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    bark: str


class Pet(BaseModel):
    pet: Union[Cat, Dog]  # noqa: UP007


class TaggedPet(BaseModel):
    pet: Annotated[Union[Cat, Dog], Field(discriminator="kind")]  # noqa: UP007


@pytest.mark.parametrize("target", [Pet, TaggedPet])
def test_a_tagged_union_shows_nothing_until_its_tag_is_complete(
    ex: Extractor, fake_llm: FakeLLM, target: type[BaseModel]
) -> None:
    text = in_five('{"pet":~{', '"kind":~"do', 'g",~"bark": "wo', 'of"}}~')
    partials, final = streamed(ex, fake_llm, target, text)
    assert final.pet == Dog(kind="dog", bark="woof")
    assert partials and all(type(p.pet).__name__ in ("NoneType", "PartialDog") for p in partials)
    assert any(p.pet is not None and p.pet.bark == "wo" for p in partials)


class Pets(BaseModel):
    pets: list[Union[Cat, Dog]]  # noqa: UP007


def test_a_field_once_shown_is_not_dropped_while_an_item_is_unreadable(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    text = in_five(
        '{"pets":~[{"kind": "cat", "lives": 9}',
        ',~{"kind": "do',
        'g", "bark":~"woof"}]}',
    )
    partials, final = streamed(ex, fake_llm, Pets, text)
    assert final.pets == [Cat(kind="cat", lives=9), Dog(kind="dog", bark="woof")]
    shown = [p.pets for p in partials]
    assert shown[0] is not None
    for before, after in itertools.pairwise(shown):
        assert after is not None and len(after) >= len(before)
    for pets in shown:
        assert [type(p).__name__ for p in pets] == ["PartialCat", "PartialDog"][: len(pets)]


class Circle(BaseModel):
    radius: float
    label: str


class Square(BaseModel):
    side: float
    label: str


class Shape(BaseModel):
    shape: Union[Circle, Square]  # noqa: UP007


def test_a_plain_union_shows_the_branch_the_keys_so_far_name(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    text = in_five('{"shape":~{', '"side": 2.5,~"label": "s', 'q"}}~')
    partials, final = streamed(ex, fake_llm, Shape, text)
    assert final.shape == Square(side=2.5, label="sq")
    assert partials and all(
        type(p.shape).__name__ in ("NoneType", "PartialSquare") for p in partials
    )
    assert any(p.shape is not None for p in partials)


class WithA(BaseModel):
    shared: str
    a: int


class WithB(BaseModel):
    shared: str
    b: str


class Either(BaseModel):
    x: Union[WithA, WithB]  # noqa: UP007


class Many(BaseModel):
    x: WithB
    more: list[WithB]


def test_a_plain_union_shows_no_branch_while_the_keys_so_far_fit_both(
    ex: Extractor, fake_llm: FakeLLM
) -> None:
    text = in_five('{"x": {"shared":~', ' "s",~', ' "b":~', ' "bee"~', "}}~")
    partials, final = streamed(ex, fake_llm, Either, text)
    assert final.x == WithB(shared="s", b="bee")
    assert all(type(p.x).__name__ in ("NoneType", "PartialWithB") for p in partials)
    assert any(p.x is not None for p in partials)


def test_a_long_answer_is_read_every_few_chunks(ex: Extractor, fake_llm: FakeLLM) -> None:
    """Each read costs the whole text so far: past 16 KB a partial comes every two chunks,
    past 32 KB every three, so that a chunk's cost stays bounded; the value comes whole."""
    items = [{"shared": f"item {i:05d} " + "x" * 40, "b": "y"} for i in range(800)]
    text = json.dumps({"x": {"shared": "s", "b": "b"}, "more": items})
    assert len(text) > 40_000
    partials, final = streamed(ex, fake_llm, Many, text)  # the fake sends five pieces
    assert len(final.more) == 800
    assert 1 <= len(partials) < 5


# -- each partial a new one --------------------------------------------------------------------


class Order(BaseModel):
    name: str
    size: Size
    when: dt.date


def test_the_same_partial_is_not_yielded_twice(ex: Extractor, fake_llm: FakeLLM) -> None:
    # the second piece adds only a value held back: the partial is the first one again
    text = in_five('{"name": "Ada"~', ',~"size": "la', 'rger",~"when": "2024', '-03-01"}~')
    partials, final = streamed(ex, fake_llm, Order, text)
    assert final == Order(name="Ada", size=Size.larger, when=dt.date(2024, 3, 1))
    assert partials
    assert all(a != b for a, b in itertools.pairwise(partials))
