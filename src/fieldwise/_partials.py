"""Partial models, and the text of an answer so far as a partial value, free of I/O.

A partial value is an instance of a *partial model*: a copy of the target model whose
fields are all optional and unconstrained (a half-written string must not fail a
``min_length``), built once per class; a target sent wrapped (``list[Model]``, ``dict``,
an enum…) gets the partial of its own type (``partial_wrapper``): a list of partial models,
a mapping, a typed value. It reads the wire's shapes: fields by the key the compiled schema
names them, and a ``dict`` field from its list of ``{key, value}`` entries (the complete
ones). No partial shows a value the answer does not have: a number at the very end of the
text so far is held back until something follows it; a string the text ends inside shows
only where the type is text (``Cut``: a date, an enum, a UUID… waits for its closing
quote); a union of models shows the branch its tag names once the tag is complete (else
the branch knowing the most keys so far). A leading Markdown fence is skipped.

Why apart from ``streaming``: this is the type-level half (building partial types from
annotations, cached per class, and reading a cut-off JSON text), with no notion of
chunks, transports or the extraction loop; ``streaming`` drives the streams and only asks
this module for the partial value of the text so far.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import dataclasses
import re
import threading
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union, cast, get_args, get_origin

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    ValidationInfo,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict, is_typeddict

from ._wire_json_schema import reads_aliases

_partials: dict[Any, Any] = {}  # a model, dataclass or TypedDict: its partial
_building: set[Any] = set()
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
    fields = _object_fields(tp)
    if fields is not None:
        return _partial_object(tp, fields)
    if isinstance(tp, type) and issubclass(tp, RootModel):  # its wire shape is its root's
        if tp in _building:
            return Any
        _building.add(tp)
        try:
            return _partial_annotation(tp.model_fields["root"].annotation)
        finally:
            _building.discard(tp)
    origin = get_origin(tp)
    if origin is Annotated:
        return _partial_annotation(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return _partial_union(get_args(tp))
    if origin in _MAPPINGS:
        pair = get_args(tp)
        key = _partial_annotation(pair[0]) if pair else Any
        value = _partial_annotation(pair[1]) if len(pair) > 1 else Any
        if origin is collections.Counter:
            value = int
        return Annotated[dict[key, value], BeforeValidator(_mapping_entries)]  # type: ignore[valid-type]
    if origin in _SEQUENCES:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return list[_partial_union(args) if args else Any]  # type: ignore[misc]
    return _held(tp)


#: a field name, its annotation, and its key on the wire
_Field = tuple[str, Any, str]


def _object_fields(tp: Any) -> list[_Field] | None:
    """The fields of a type the wire sends as a JSON object (a model, a dataclass, a
    ``TypedDict``); None for any other type, or one whose annotations cannot be read."""
    if not isinstance(tp, type):
        return None
    if issubclass(tp, BaseModel):
        if issubclass(tp, RootModel):
            return None
        items = tp.model_fields.items()
        return [(name, info.annotation, _wire_name(tp, name, info)) for name, info in items]
    if not (dataclasses.is_dataclass(tp) or is_typeddict(tp)):
        return None
    try:
        hints = typing.get_type_hints(tp)  # (drops Required/NotRequired: all are optional)
    except Exception:  # an unresolved forward reference: read it as a plain value
        return None
    names = [f.name for f in dataclasses.fields(tp)] if dataclasses.is_dataclass(tp) else hints
    return [(name, hints[name], name) for name in names]


def _partial_object(tp: Any, fields: list[_Field]) -> Any:
    if tp in _building:  # a recursive type reaches itself: its inner values stay as parsed
        return Any
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return partial_model(tp)
    with _lock:
        found = _partials.get(tp)
        if found is not None:
            return found
        _building.add(tp)
        try:
            if is_typeddict(tp):  # a partial of a dict is a dict: an all-optional TypedDict
                keys = {name: _partial_annotation(ann) | None for name, ann, _ in fields}
                built: Any = _make_typeddict(f"Partial{tp.__name__}", keys, total=False)
            else:
                built = _create_partial(tp.__name__, fields, {})
        finally:
            _building.discard(tp)
        _partials[tp] = built
        return built


#: (the functional form: a name and fields known only when it runs)
_make_typeddict: Any = TypedDict


def _create_partial(name: str, fields: list[_Field], serialize: dict[str, str | None]) -> Any:
    defined: dict[str, Any] = {}
    for field, annotation, wire in fields:
        defined[field] = (
            _partial_annotation(annotation) | None,
            Field(
                default=None,
                validation_alias=None if wire == field else wire,
                serialization_alias=serialize.get(field),
            ),
        )
    return create_model(
        f"Partial{name}",
        __config__=ConfigDict(populate_by_name=True, protected_namespaces=()),
        **defined,
    )


def partial_model(cls: type[BaseModel]) -> type[BaseModel]:
    """The all-optional twin of ``cls`` (cached), reading the fields by their wire keys."""
    with _lock:
        found = _partials.get(cls)
        if found is not None:
            return cast(type[BaseModel], found)
        _building.add(cls)
        try:
            fields = _object_fields(cls) or []
            serialize = {name: info.serialization_alias for name, info in cls.model_fields.items()}
            model: type[BaseModel] = _create_partial(cls.__name__, fields, serialize)
        finally:
            _building.discard(cls)
        _partials[cls] = model
        return model


def partial_wrapper(tp: Any) -> type[BaseModel]:
    """For a target sent wrapped (``{"value": ...}``): a model whose ``value`` is the
    partial of ``tp`` (a list of partial models for ``list[Model]``, a mapping for a
    ``dict``, a typed value for the rest), so a wrapped target streams partials of its own
    kind, as a model target does (cached per type)."""
    with _lock:
        try:
            return _wrappers[tp]
        except KeyError:
            pass
        except TypeError:  # typing objects holding unhashable metadata: build it each time
            return _build_wrapper(tp)
        wrapper = _wrappers[tp] = _build_wrapper(tp)
        return wrapper


_wrappers: dict[Any, type[BaseModel]] = {}


def _build_wrapper(tp: Any) -> type[BaseModel]:
    value = _partial_annotation(tp) | None
    model: type[BaseModel] = create_model("PartialValue", value=(value, None))
    return model


# -- values still being written: held back until complete -----------------------------------


class Cut(str):
    """The string value the text so far ends inside (its closing quote not here yet): text
    for a ``str`` field, but not yet a date, an enum member, a UUID… (``"2024`` would read
    as a Unix timestamp)."""

    __slots__ = ()


#: the validation context's key a partial's validators set when they met a ``Cut``
HELD = "held"

#: types a ``Cut`` may show as it is (text), and JSON numbers, which the schema never sends
#: as strings (sparing a validator call per number on every chunk)
_NOT_HELD: frozenset[Any] = frozenset({str, Any, object, int, float, bool, type(None)})


def _hold_cut(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, Cut):
        if info.context is not None:
            info.context[HELD] = True
        raise PydanticCustomError("cut_string", "a string still being written")
    return value


_HOLD = BeforeValidator(_hold_cut)


def _held(tp: Any) -> Any:
    """``tp``, or ``tp`` that refuses a ``Cut`` (and says so in the validation context)."""
    try:
        if tp in _NOT_HELD:
            return tp
    except TypeError:  # unhashable typing objects: not text
        pass
    return Annotated[tp, _HOLD]


# -- unions: the branch the keys so far name ------------------------------------------------


def _partial_union(args: collections.abc.Sequence[Any]) -> Any:
    """The partial of ``Union[args]``. Object-shaped branches (models, dataclasses,
    ``TypedDict``s) are told apart by their tag when they all have one (a ``Literal`` field
    with a value of its own: nothing until it is complete), else by the branch knowing the
    most of the keys so far (nothing while it knows none); pydantic's own choice would be
    the first branch, an all-optional partial accepting any object."""
    parts = [_partial_annotation(a) for a in args]
    fields = [_object_fields(a) for a in args]
    objects = [i for i, f in enumerate(fields) if f is not None]
    if len(objects) < 2:
        return Union[tuple(parts)]  # noqa: UP007
    others = [p for i, p in enumerate(parts) if i not in objects]
    choices = [Annotated[parts[i], Tag(str(i))] for i in objects]
    if others:
        choices.append(Annotated[Union[tuple(others)], Tag("other")])  # noqa: UP007
    tags = _tags([fields[i] or [] for i in objects])
    if tags is not None:
        pick = _by_tag(dict(zip(objects, tags, strict=True)))
    else:
        pick = _by_keys({i: frozenset(w for _, _, w in fields[i] or []) for i in objects})
    return Annotated[Union[tuple(choices)], Discriminator(pick)]  # noqa: UP007


def _tags(branches: list[list[_Field]]) -> list[tuple[str, frozenset[Any]]] | None:
    """Per branch, its tag's wire key and values: a field every branch has, a ``Literal``
    in each, no value in two branches; None when there is no such field."""
    shared = set.intersection(*({name for name, _, _ in b} for b in branches))
    for name in (n for n, _, _ in branches[0] if n in shared):
        found = [_literal_tag(b, name) for b in branches]
        if any(f is None for f in found):
            continue
        tags = [f for f in found if f is not None]
        if sum(len(values) for _, values in tags) == len(frozenset().union(*(v for _, v in tags))):
            return tags
    return None


def _literal_tag(fields: list[_Field], name: str) -> tuple[str, frozenset[Any]] | None:
    for field, annotation, wire in fields:
        if field != name:
            continue
        origin: Any = get_origin(annotation)
        while origin is Annotated:
            annotation = get_args(annotation)[0]
            origin = get_origin(annotation)
        if origin is not typing.Literal:
            return None
        # an enum member in a Literal is sent as its value
        return wire, frozenset(getattr(v, "value", v) for v in get_args(annotation))
    return None


def _by_tag(tags: dict[int, tuple[str, frozenset[Any]]]) -> Callable[[Any], str | None]:
    def pick(value: Any) -> str | None:
        if not isinstance(value, dict):
            return "other"
        for branch, (key, values) in tags.items():
            tag = value.get(key)
            # a Cut tag ("do" of "dog") is no tag yet; an unhashable one is none at all
            with contextlib.suppress(TypeError):
                if not isinstance(tag, Cut) and tag in values:
                    return str(branch)
        return None  # pydantic's union_tag_not_found: not known yet

    return pick


def _by_keys(keys: dict[int, frozenset[str]]) -> Callable[[Any], str | None]:
    def pick(value: Any) -> str | None:
        if not isinstance(value, dict):
            return "other"
        best, known, tied = None, 0, False
        for branch, names in keys.items():
            count = sum(1 for key in value if key in names)
            if count > known:
                best, known, tied = str(branch), count, False
            elif count == known and count:
                tied = True
        # branches the keys so far fit equally: which one it is is not said yet
        return None if tied else best

    return pick


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


#: what matters outside a string (containers, the key/value separators, a quote), and inside
_OUTSIDE = re.compile(r'["{}\[\]:,]')
_INSIDE = re.compile(r'["\\]')


class StringScan:
    """Whether the JSON text so far ends inside a string value (not a key), kept up to date
    piece by piece: each piece is read once, so a long answer costs no rescan per chunk."""

    __slots__ = ("_containers", "_escape", "_in_string", "_key", "_key_next")

    def __init__(self) -> None:
        self._containers: list[str] = []  # "{" and "[" still open
        self._in_string = False
        self._escape = False  # the piece ended on a backslash inside a string
        self._key = False  # the open string is an object's key
        self._key_next = False  # a string starting now would be a key

    @property
    def in_value(self) -> bool:
        return self._in_string and not self._key

    def feed(self, piece: str) -> None:
        at = 0
        if self._escape and piece:
            self._escape, at = False, 1
        while at < len(piece):
            found = (_INSIDE if self._in_string else _OUTSIDE).search(piece, at)
            if found is None:
                return
            at = found.end()
            char = found.group()
            if char == "\\":  # inside a string: the next character is escaped
                if at == len(piece):
                    self._escape = True
                at += 1
            elif char == '"':
                self._in_string = not self._in_string
                self._key = self._in_string and self._key_next
            else:
                self._structure(char)

    def _structure(self, char: str) -> None:
        if char in "{[":
            self._containers.append(char)
        elif char in "}]" and self._containers:
            self._containers.pop()
        if char == ":":
            self._key_next = False
        else:  # after "{" or "," in an object a key comes; in an array a value
            self._key_next = char in "{," and self._containers[-1:] == ["{"]


def last_string(obj: Any) -> tuple[Any, Any, tuple[Any, ...]] | None:
    """Where the last string value of ``obj`` is (for a text that ends inside it): its
    container, its key there, and its path, a list's index as None (all items of a list
    have one type). The last value in document order is the last key's, or the last
    item's, all the way down. None: the last value is no string."""
    parent: Any = None
    key: Any = None
    path: list[Any] = []
    node = obj
    while isinstance(node, dict | list) and node:
        if isinstance(node, dict):
            parent, key = node, next(reversed(node))
            path.append(key)
        else:
            parent, key = node, len(node) - 1
            path.append(None)
        node = parent[key]
    if parent is None or not isinstance(node, str):
        return None
    return parent, key, tuple(path)


def same_partial(a: Any, b: Any) -> bool:
    """Whether two partial values are equal, newest part first: what a stream adds is at
    the end, so two partials that differ are told apart at once, where ``==`` on models
    would compare every item before it (per chunk, a cost that grows with the answer)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        mine, theirs = a.__dict__, b.__dict__
        return all(same_partial(mine[k], theirs[k]) for k in reversed(mine))
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_partial, reversed(a), reversed(b)))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same_partial(a[k], b[k]) for k in reversed(a))
    return bool(a == b)
