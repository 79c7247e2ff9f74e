"""Partial models, and the text of an answer so far as a partial value, free of I/O.

A partial value is an instance of a *partial model*: a copy of the target model whose
fields are all optional and unconstrained (a half-written string must not fail a
``min_length``), built once per class. It reads the wire's shapes: fields by the key the
compiled schema names them, and a ``dict`` field from its list of ``{key, value}`` entries
(the complete ones). A number at the very end of the text so far is held back until
something follows it, so no partial shows a number cut short, and a leading Markdown fence
is skipped.

Why apart from ``streaming``: this is the type-level half (building models and converters
from annotations, cached per class, and reading a cut-off JSON text), with no notion of
chunks, transports or the extraction loop; ``streaming`` drives the streams and only asks
this module for the partial value of the text so far.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import threading
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    create_model,
)
from pydantic.fields import FieldInfo

from ._wire_json_schema import reads_aliases

_partials: dict[type[BaseModel], type[BaseModel]] = {}
_building: set[type[BaseModel]] = set()
_lock = threading.RLock()

#: the origins of the types the wire sends as a list of ``{key, value}`` objects
_MAPPINGS = frozenset(
    {
        dict,
        collections.abc.Mapping,
        collections.abc.MutableMapping,
        collections.OrderedDict,
        collections.defaultdict,
        collections.Counter,
    }
)
_SEQUENCES = frozenset(
    {list, set, frozenset, tuple, collections.deque, collections.abc.Sequence, collections.abc.Set}
)


def _wire_name(cls: type[BaseModel], name: str, info: FieldInfo) -> str:
    """The key ``name`` has on the wire: what the compiled schema calls it (its validation
    alias, or the first plain name of ``AliasChoices``; the name when the model validates
    by name only)."""
    if not reads_aliases(cls.model_config):
        return name
    alias = info.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    for choice in choices:
        if isinstance(choice, str):
            return choice
        if isinstance(choice, AliasPath) and len(choice.path) == 1:
            first = choice.path[0]
            if isinstance(first, str):
                return first
    return name


def _mapping_entries(value: Any) -> Any:
    """A ``dict`` field's wire entries as a mapping; an entry not yet complete (no key or no
    value so far) is left out."""
    if not isinstance(value, list):
        return value
    out: dict[Any, Any] = {}
    for entry in value:
        if isinstance(entry, dict) and "key" in entry and "value" in entry:
            with contextlib.suppress(TypeError):  # an unhashable key: not a mapping key
                out[entry["key"]] = entry["value"]
    return out


def _partial_annotation(tp: Any) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return partial_model(tp) if tp not in _building else Any
    origin = get_origin(tp)
    if origin is Annotated:
        return _partial_annotation(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return Union[tuple(_partial_annotation(a) for a in get_args(tp))]  # noqa: UP007
    if origin in _MAPPINGS:
        pair = get_args(tp)
        key = _partial_annotation(pair[0]) if pair else Any
        value = _partial_annotation(pair[1]) if len(pair) > 1 else Any
        if origin is collections.Counter:
            value = int
        return Annotated[dict[key, value], BeforeValidator(_mapping_entries)]  # type: ignore[valid-type]
    if origin in _SEQUENCES:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        item = Union[tuple(_partial_annotation(a) for a in args)] if args else Any  # noqa: UP007
        return list[item]  # type: ignore[valid-type]
    if origin is typing.Literal:
        return tp
    return tp


def partial_model(cls: type[BaseModel]) -> type[BaseModel]:
    """The all-optional twin of ``cls`` (cached), reading the fields by their wire keys."""
    with _lock:
        found = _partials.get(cls)
        if found is not None:
            return found
        _building.add(cls)
        try:
            fields: dict[str, Any] = {}
            for name, info in cls.model_fields.items():
                annotation = _partial_annotation(info.annotation)
                wire = _wire_name(cls, name, info)
                fields[name] = (
                    annotation | None,
                    Field(
                        default=None,
                        validation_alias=None if wire == name else wire,
                        serialization_alias=info.serialization_alias,
                    ),
                )
            model: type[BaseModel] = create_model(
                f"Partial{cls.__name__}",
                __config__=ConfigDict(populate_by_name=True, protected_namespaces=()),
                **fields,
            )
        finally:
            _building.discard(cls)
        _partials[cls] = model
        return model


# -- a wrapped target's value: the JSON shape, with mappings for the wire's entry lists ------

_Convert = Callable[[Any], Any]
_raw_shapes: dict[Any, _Convert | None] = {}


def _raw_shape(tp: Any, models: dict[type[BaseModel], _Convert | None]) -> _Convert | None:
    """Turns the wire's entry lists inside a value of type ``tp`` into mappings, leaving
    everything else as parsed; None when ``tp`` holds no mapping the wire reshapes."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _raw_shape(get_args(tp)[0], models)
    if isinstance(tp, type) and issubclass(tp, RootModel):
        return _raw_shape(tp.model_fields["root"].annotation, models)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model_shape(tp, models)
    if origin in (Union, types.UnionType):
        branches = [c for a in get_args(tp) if (c := _raw_shape(a, models)) is not None]
        return None if not branches else branches[0] if len(branches) == 1 else _first(branches)
    if origin in _MAPPINGS:
        args = get_args(tp)
        value = None if len(args) < 2 or origin is collections.Counter else args[1]
        return _entries(_raw_shape(value, models) if value is not None else None)
    if origin in _SEQUENCES:
        items = [c for a in get_args(tp) if a is not Ellipsis and (c := _raw_shape(a, models))]
        if not items:
            return None
        return _items(items[0] if len(items) == 1 else _first(items))
    return None


def _model_shape(
    cls: type[BaseModel], models: dict[type[BaseModel], _Convert | None]
) -> _Convert | None:
    if cls in models:
        return models[cls]

    def deferred(value: Any) -> Any:  # a recursive model reaches itself while being built
        built = models[cls]
        return value if built is None else built(value)

    models[cls] = deferred
    fields = {
        _wire_name(cls, name, info): convert
        for name, info in cls.model_fields.items()
        if (convert := _raw_shape(info.annotation, models)) is not None
    }
    models[cls] = _fields(fields) if fields else None
    return models[cls]


def _entries(values: _Convert | None) -> _Convert:
    def convert(value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            return value
        out = _mapping_entries(value)
        return out if values is None else {k: values(v) for k, v in out.items()}

    return convert


def _items(inner: _Convert) -> _Convert:
    def convert(value: Any) -> Any:
        return [inner(item) for item in value] if isinstance(value, list) else value

    return convert


def _fields(fields: dict[str, _Convert]) -> _Convert:
    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: fields[k](v) if k in fields else v for k, v in value.items()}

    return convert


def _first(branches: list[_Convert]) -> _Convert:
    """A union: the first branch whose shape the value has (the one that changed it)."""

    def convert(value: Any) -> Any:
        for branch in branches:
            out = branch(value)
            if out is not value:
                return out
        return value

    return convert


def _wrapped_shape(tp: Any) -> _Convert | None:
    with _lock:
        try:
            return _raw_shapes[tp]
        except KeyError:
            pass
        except TypeError:  # typing objects holding unhashable metadata: build it each time
            return _raw_shape(tp, {})
        shape = _raw_shapes[tp] = _raw_shape(tp, {})
        return shape


# -- the text so far ------------------------------------------------------------------------

_NUMBER_CHARS = frozenset("0123456789+-.eE")
_BLANK = frozenset(" \t\r\n")


def _without_trailing_number(text: str) -> str:
    """``text`` less a number at its very end: more digits (or a fraction, or an exponent)
    may follow, so it is not known yet. Inside a string the cut only shortens the string."""
    start = end = len(text)
    while start and text[start - 1] in _NUMBER_CHARS:
        start -= 1
    if start == end or text[start] not in "-0123456789":
        return text
    before = start
    while before and text[before - 1] in _BLANK:
        before -= 1
    if before and text[before - 1] in ":,[":
        return text[:start]
    return text


def _json_start(text: str) -> int | None:
    """Where the JSON starts: past blanks and a Markdown fence's opening line (None: not
    known yet); 0 when the text does not start with an object."""
    at = len(text) - len(text.lstrip())
    if at == len(text):
        return None
    if "```".startswith(text[at : at + 3]) and len(text) - at < 3:
        return None  # "`" or "``": perhaps a fence, not known yet
    if text.startswith("```", at):
        line_end = text.find("\n", at)
        if line_end < 0:
            return None
        rest = text[line_end + 1 :]
        body = line_end + 1 + len(rest) - len(rest.lstrip())
        if body == len(text):
            return None
        return body if text[body] == "{" else 0
    return at if text[at] == "{" else 0
