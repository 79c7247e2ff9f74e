"""The Python shape of wire data, for the validator functions that read the raw input.

A validator that reads the raw input (``mode="before"``/``"wrap"``/``"plain"``, the user's or
pydantic's own) must see the Python shape, as it would without fieldwise: a mapping for a
``dict`` field, no key for a default sent as null. In the core schema for decoding
(``_wire_validate``), such a node is preceded by a conversion (``_Shapes``) from the wire
shape to the Python shape, and what validates below it is the original schema:
pydantic-core validates a function's output as Python data anyway. Its references point at
copies of the original definitions (``_wire._Rewrite.original``), since the definitions
themselves are rewritten for the JSON side.

It is a module of its own because it is not a rewrite of the core schema: it walks the
original schema once more and builds plain Python converters that run at validation time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic_core import PydanticCustomError
from pydantic_core import core_schema as cs

from ._wire import _INPUT_KEY, _RAW_INPUT, Node, _check_new_key, _nodes, _Rewrite, _tag_keys
from ._wire_json_schema import DICT_LIKE, wire_alias


class _NoFit(Exception):
    """The value does not have this union branch's wire shape: try the next one."""


# (value, trial) -> the value in the Python shape; ``trial`` is set while trying union
# branches, where a value of another shape raises _NoFit instead of passing through.
Convert = Callable[[Any, bool], Any]

_LISTS = ("list", "set", "frozenset", "deque", "generator")
_INNER = ("default", "function-after", "custom-error", "definitions")


def _raw_input(old: Node, config: Any, rewrite: _Rewrite, shapes: _Shapes) -> Node:
    """A validator function that reads the raw input, given the Python shape.

    The function (and pydantic-core below it, which validates its output as Python data)
    expects what pydantic would pass without fieldwise, so the wire's lowered shapes are
    turned back first and the original schema validates below.
    """
    below = dict(old)
    below.pop("ref", None)
    below.pop("metadata", None)
    original = rewrite.original(below)
    convert = shapes.of(old, config)
    if convert is None:
        return original

    def to_python(value: Any) -> Any:
        return convert(value, False)

    return dict(cs.no_info_before_validator_function(to_python, original))


class _Shapes:
    """Converters from wire-shaped JSON data to the Python shape, one per core-schema node.

    Built from the original schema: a dict-like node turns ``{key, value}`` entries into a
    mapping, a model/TypedDict/dataclass drops the keys whose null means "the default" (or
    "no key"), and containers, unions and references pass their items on. ``None`` stands
    for "the wire shape is the Python shape here". Anything the wire does not describe (an
    input already in the Python shape, a string for a model) passes through unchanged for
    pydantic to judge.
    """

    def __init__(self, defs: dict[str, Node], default_ids: set[int], omit_ids: set[int]) -> None:
        self.defs = defs
        self.default_ids = default_ids
        self.omit_ids = omit_ids
        self._built: dict[int, Convert | None] = {}

    def of(self, node: Node, config: Any) -> Convert | None:
        key = id(node)
        if key in self._built:
            return self._built[key]
        self._built[key] = self._deferred(key)  # a recursive type reaches itself
        built = self._build(node, config)
        self._built[key] = built
        return built

    def _maybe(self, node: Node | None, config: Any) -> Convert | None:
        return None if node is None else self.of(node, config)

    def _deferred(self, key: int) -> Convert:
        def convert(value: Any, trial: bool) -> Any:
            built = self._built[key]
            return value if built is None else built(value, trial)

        return convert

    def _build(self, node: Node, config: Any) -> Convert | None:
        kind = node.get("type")
        if kind in ("model", "dataclass", "typed-dict") and "config" in node:
            config = node["config"]
        if kind in DICT_LIKE:
            return _mapping(self._maybe(node.get("values_schema"), config))
        if kind == "model-fields" or kind == "typed-dict":
            return self._fields(node["fields"].items(), config)
        if kind == "dataclass-args":
            return self._fields(((f["name"], f) for f in node["fields"]), config)
        if kind in _LISTS:
            return _items(self._maybe(node.get("items_schema"), config))
        if kind == "tuple":
            positions = [self.of(item, config) for item in node.get("items_schema", [])]
            return _positions(positions, node.get("variadic_item_index"))
        if kind == "nullable":
            return _nullable(self.of(node["schema"], config))
        if kind in ("model", "dataclass", *_INNER):
            return self.of(node["schema"], config)
        if kind in _RAW_INPUT:
            return self._maybe(node.get(_INPUT_KEY) or node.get("schema"), config)
        if kind == "definition-ref":
            return self.of(self.defs[node["schema_ref"]], config)
        if kind == "json-or-python":
            return self.of(node["json_schema"], config)
        if kind == "lax-or-strict":  # the branch pydantic's JSON schema describes
            return self.of(node["strict_schema" if node.get("strict") else "lax_schema"], config)
        if kind == "chain":
            return self.of(node["steps"][0], config)
        if kind == "union":
            return self._union(list(_nodes(node["choices"])), config)
        if kind == "tagged-union":
            return self._tagged(node, config)
        return None  # a scalar, or a ``json`` string

    def _fields(self, fields: Iterable[tuple[str, Node]], config: Any) -> Convert | None:
        known: set[str] = set()
        active: list[tuple[str, Convert | None, bool]] = []
        for name, field in fields:
            keys = {name, wire_alias(field, config) or name}
            known |= keys
            convert = self.of(field["schema"], config)
            null_drops = id(field["schema"]) in self.default_ids or id(field) in self.omit_ids
            if convert is not None or null_drops:
                active.extend((key, convert, null_drops) for key in keys)
        return _object(frozenset(known), tuple(active)) if active else None

    def _union(self, choices: list[Node], config: Any) -> Convert | None:
        built = [self.of(choice, config) for choice in choices]
        shaped = [convert for convert in built if convert is not None]
        if not shaped:
            return None
        return _first_fit(tuple(shaped), any(convert is None for convert in built))

    def _tagged(self, node: Node, config: Any) -> Convert | None:
        by_tag = {tag: self.of(choice, config) for tag, choice in node["choices"].items()}
        if all(convert is None for convert in by_tag.values()):
            return None
        keys = sorted(_tag_keys(node.get("discriminator")))
        untagged = self._union(list(node["choices"].values()), config)

        def convert(value: Any, trial: bool) -> Any:
            for key in keys if isinstance(value, dict) else ():
                try:
                    branch = by_tag[value[key]]
                except (KeyError, TypeError):
                    continue
                return value if branch is None else branch(value, trial)
            return value if untagged is None else untagged(value, trial)

        return convert


def _mapping(values: Convert | None) -> Convert:
    def convert(value: Any, trial: bool) -> Any:
        if isinstance(value, dict):  # already a mapping (an answer not held to the schema)
            return value if values is None else {k: values(v, trial) for k, v in value.items()}
        if not isinstance(value, list):
            if trial:
                raise _NoFit
            return value
        out: dict[Any, Any] = {}
        for entry in value:
            if not (isinstance(entry, dict) and "key" in entry and "value" in entry):
                if trial:
                    raise _NoFit
                raise PydanticCustomError(
                    "key_value_list", "Input should be a list of objects with a key and a value"
                )
            key = entry["key"]
            _check_new_key(key, out)
            out[key] = entry["value"] if values is None else values(entry["value"], trial)
        return out

    return convert


def _object(known: frozenset[str], active: tuple[tuple[str, Convert | None, bool], ...]) -> Convert:
    def convert(value: Any, trial: bool) -> Any:
        if not isinstance(value, dict) or (trial and not value.keys() <= known):
            if trial:
                raise _NoFit
            return value
        out = dict(value)
        for key, inner, null_drops in active:
            if key not in out:
                continue
            if out[key] is None and null_drops:
                del out[key]  # pydantic then applies the default, or leaves the key out
            elif inner is not None:
                out[key] = inner(out[key], trial)
        return out

    return convert


def _items(inner: Convert | None) -> Convert | None:
    if inner is None:
        return None

    def convert(value: Any, trial: bool) -> Any:
        if not isinstance(value, list):
            if trial:
                raise _NoFit
            return value
        return [inner(item, trial) for item in value]

    return convert


def _positions(positions: list[Convert | None], variadic: int | None) -> Convert | None:
    if all(inner is None for inner in positions):
        return None

    def at(index: int, length: int) -> Convert | None:
        if variadic is None:
            return positions[index] if index < len(positions) else None
        after = len(positions) - variadic - 1  # fixed positions after the repeated one
        if index < variadic:
            return positions[index]
        if index >= length - after:
            return positions[len(positions) - (length - index)]
        return positions[variadic]

    def convert(value: Any, trial: bool) -> Any:
        if not isinstance(value, list):
            if trial:
                raise _NoFit
            return value
        out = []
        for index, item in enumerate(value):
            inner = at(index, len(value))
            out.append(item if inner is None else inner(item, trial))
        return out

    return convert


def _nullable(inner: Convert | None) -> Convert | None:
    if inner is None:
        return None

    def convert(value: Any, trial: bool) -> Any:
        return None if value is None else inner(value, trial)

    return convert


def _first_fit(shaped: tuple[Convert, ...], plain_branch: bool) -> Convert:
    """A union: the first branch whose wire shape the value has; pydantic picks again after."""

    def convert(value: Any, trial: bool) -> Any:
        for branch in shaped:
            try:
                return branch(value, True)
            except _NoFit:
                continue
        if trial and not plain_branch:
            raise _NoFit
        return value

    return convert
