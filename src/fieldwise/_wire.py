"""Decoding and encoding the wire shape inside pydantic-core (the data side of ``schema.py``).

When the wire shape is pydantic's own JSON shape (the common case), ``schema.py`` decodes
with the model's own validator and encodes with its own serializer. Otherwise the type's core
schema is rewritten, and a ``SchemaValidator`` / ``SchemaSerializer`` is built from it once:

- every dict-like node (the JSON side lowers them all) validates a list of ``{key, value}``
  objects (keys and values with their own schemas, in JSON mode), then an after-function
  builds the mapping;
- a default that ``_wire_json_schema.WireJsonSchema`` made nullable (it records the node ids)
  validates ``nullable(inner)`` and turns ``None`` into ``PydanticUseDefault`` (pydantic then
  applies the default or default factory itself);
- a TypedDict key that became nullable turns ``None`` into ``PydanticOmit``.

Validation therefore stays one ``validate_json`` call with JSON-mode semantics (strict
models keep working) and error locations are pydantic's own.

A validator that reads the raw input (``mode="before"``/``"wrap"``/``"plain"``, the user's or
pydantic's own) must see the Python shape, as it would without fieldwise: a mapping for a
``dict`` field, no key for a default sent as null. Such a node is preceded by a conversion
(``_Shapes``) from the wire shape to the Python shape, and what validates below it is the
original schema: pydantic-core validates a function's output as Python data anyway. Its
references point at copies of the original definitions (``_PY`` suffix), since the
definitions themselves are rewritten for the JSON side. A ``Json[...]`` string is pydantic's
own JSON, so nothing inside it is rewritten either.

pydantic-core reuses a class's prebuilt validator/serializer for any ``model`` or
``dataclass`` node whose class is complete, ignoring the (rewritten) schema below it. For
validation, a rewritten model node therefore names a stand-in class whose ``__new__`` returns
an instance of the real class, so pydantic-core fills in a real instance (fields set, extras,
``model_post_init`` and config all as usual). For serialization, a rewritten model node
becomes a plain serializer that hands the field dict to a TypedDict schema.

Encoding writes the wire shape, which is the validation shape: the user's field, model and
annotated serializers describe other outputs, so they run only for values pydantic cannot
serialize by itself (custom types), and where a validator function reads the raw input
(their inverse, e.g. base64 both ways).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import (
    PydanticCustomError,
    PydanticOmit,
    PydanticSerializationError,
    PydanticSerializationUnexpectedValue,
    PydanticUseDefault,
)
from pydantic_core import core_schema as cs

from ._wire_json_schema import DICT_LIKE, wire_alias
from .exceptions import SchemaError

Node = dict[str, Any]

# Keys under which a core schema holds other core schemas (directly, or in lists/mappings).
_CHILD_KEYS = (
    "schema",
    "items_schema",
    "keys_schema",
    "values_schema",
    "choices",
    "fields",
    "steps",
    "lax_schema",
    "strict_schema",
    "json_schema",
    "python_schema",
    "extras_schema",
    "extras_keys_schema",
    "return_schema",
    "computed_fields",
    "arguments_schema",
    "definitions",
)
# The wire shape of a validator function's input, when it differs from its inner schema.
_INPUT_KEY = "json_schema_input_schema"

_FIELD_TYPES = ("model-field", "dataclass-field", "typed-dict-field")
# Validators whose function reads the raw input (everything below them sees Python data).
_RAW_INPUT = ("function-before", "function-wrap", "function-plain")
# Suffix of the copied original definitions that Python-shaped data validates against.
_PY = ":fieldwise-python"


def _nodes(value: Any) -> Iterator[Node]:
    if isinstance(value, dict):
        if "type" in value:
            yield value
        else:
            for item in value.values():
                yield from _nodes(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _nodes(item)


def _map(value: Any, fn: Callable[[Node], Node]) -> Any:
    """Apply ``fn`` to every schema in a child slot, keeping the slot's container shape."""
    if isinstance(value, dict):
        if "type" in value:
            return fn(value)
        mapped = {k: _map(v, fn) for k, v in value.items()}
        return value if all(mapped[k] is value[k] for k in value) else mapped
    if isinstance(value, list | tuple):
        items = [_map(v, fn) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    return value


def _all_slots(node: Node) -> list[str]:
    """Every key of ``node`` holding core schemas, a function serializer's own included."""
    slots = [key for key in (*_CHILD_KEYS, _INPUT_KEY) if key in node]
    ser = node.get("serialization")
    if isinstance(ser, dict) and ser.get("type") in ("function-wrap", "function-plain"):
        slots.append("serialization")
    return slots


def _walk(root: Node) -> Iterator[Node]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        for key in _all_slots(node):
            stack.extend(_nodes(node[key]))


class _Rewrite:
    """Rewrites a core schema at the changed nodes, and every model/dataclass above them.

    ``direct(node, config)`` says whether a node itself changes; ``config`` is the core
    config of the model, dataclass or TypedDict the node belongs to (None outside them).
    """

    def __init__(
        self,
        root: Node,
        direct: Callable[[Node, Any], bool],
        *,
        serializers: bool = False,
        inputs: bool = False,
    ) -> None:
        self.root = root
        self.direct = direct
        self.serializers = serializers
        self.inputs = inputs
        self.defs: dict[str, Node] = {}
        self.python_defs: dict[str, Node] = {}
        self._configs: dict[int, Any] = {}
        self._local: dict[int, tuple[bool, frozenset[str]]] = {}
        self._done: dict[int, Node] = {}
        self._collect(root, set(), None)
        self.def_needs = self._solve_defs()

    def _collect(self, node: Node, seen: set[int], config: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.get("type") in ("model", "dataclass", "typed-dict") and "config" in node:
            config = node["config"]
        self._configs[id(node)] = config
        if isinstance(node.get("ref"), str):
            self.defs[node["ref"]] = node
        for key in _all_slots(node):
            for child in _nodes(node[key]):
                self._collect(child, seen, config)

    def slots(self, node: Node) -> list[str]:
        """The keys of ``node`` holding core schemas to visit.

        For encoding, a function serializer's own schemas count too (a ``defaultdict`` field
        serializes through one); other serialization schemas are not core schemas. For
        decoding, so does a validator function's input schema (the wire shape it reads).
        Nothing inside a ``json`` node is visited: its string holds pydantic's own JSON.
        """
        if node.get("type") == "json":
            return []
        slots = [key for key in _CHILD_KEYS if key in node]
        if self.inputs and _INPUT_KEY in node:
            slots.append(_INPUT_KEY)
        if self.serializers:
            ser = node.get("serialization")
            if isinstance(ser, dict) and ser.get("type") in ("function-wrap", "function-plain"):
                slots.append("serialization")
        return slots

    def local(self, node: Node) -> tuple[bool, frozenset[str]]:
        """(a change below, not following refs; the refs used below)."""
        key = id(node)
        if key in self._local:
            return self._local[key]
        self._local[key] = (False, frozenset())  # shared-node guard; core schemas are trees
        changed = self.direct(node, self._configs.get(key))
        refs: set[str] = set()
        if node.get("type") == "definition-ref":
            refs.add(node["schema_ref"])
        if node.get("type") == "json" and "schema" in node:  # unchanged inside, but its
            refs |= self.local(node["schema"])[1]  # references may not be
        for slot in self.slots(node):
            if slot != "definitions":
                for child in _nodes(node[slot]):
                    child_changed, child_refs = self.local(child)
                    changed = changed or child_changed
                    refs |= child_refs
        result = (changed, frozenset(refs))
        self._local[key] = result
        return result

    def _solve_defs(self) -> dict[str, bool]:
        needs = {ref: self.local(node)[0] for ref, node in self.defs.items()}
        moved = True
        while moved:
            moved = False
            for ref, node in self.defs.items():
                if not needs[ref] and any(needs.get(r, False) for r in self.local(node)[1]):
                    needs[ref] = moved = True
        return needs

    def needs(self, node: Node) -> bool:
        changed, refs = self.local(node)
        if changed or any(self.def_needs.get(r, False) for r in refs):
            return True
        if node.get("type") == "definitions":
            return any(self.needs(d) for d in node["definitions"])
        return False

    def run(self, transform: Callable[[Node, Node, Any], Node]) -> Node:
        def visit(node: Node, config: Any) -> Node:
            if not self.needs(node):
                return node
            key = id(node)
            if key in self._done:
                return self._done[key]
            if node.get("type") in ("model", "dataclass", "typed-dict") and "config" in node:
                config = node["config"]
            new = dict(node)
            for slot in self.slots(node):
                new[slot] = _map(node[slot], lambda child: visit(child, config))
            result = transform(new, node, config)
            self._done[key] = result
            return result

        return self._with_python_defs(visit(self.root, None))

    # -- the original schema, for data in the Python shape ----------------------------------

    def original(self, node: Node) -> Node:
        """A copy of the original ``node`` whose references use original definitions.

        The definitions themselves are rewritten for the wire shape; the copies (named with
        the ``_PY`` suffix) are added to the root by ``run``.
        """
        if node.get("type") == "definition-ref":
            self._python_def(node["schema_ref"])
            return {**node, "schema_ref": node["schema_ref"] + _PY}
        ref = node.get("ref")
        if isinstance(ref, str) and ref in self.defs:  # one definition per name: refer to it
            self._python_def(ref)
            return {"type": "definition-ref", "schema_ref": ref + _PY}
        out = dict(node)
        for slot in _all_slots(node):
            out[slot] = _map(node[slot], self.original)
        return out

    def _python_def(self, ref: str) -> None:
        name = ref + _PY
        if name in self.python_defs:
            return
        self.python_defs[name] = {}  # placeholder: stops recursion
        body = dict(self.defs[ref])
        del body["ref"]
        self.python_defs[name] = {**self.original(body), "ref": name}

    def _with_python_defs(self, root: Node) -> Node:
        if not self.python_defs:
            return root
        added = list(self.python_defs.values())
        if root.get("type") == "definitions":
            return {**root, "definitions": [*root["definitions"], *added]}
        return dict(cs.definitions_schema(root, added))  # type: ignore[arg-type]


# -- discriminator tags --------------------------------------------------------------------


def _tag_keys(discriminator: Any) -> set[str]:
    if isinstance(discriminator, str):
        return {discriminator}
    if isinstance(discriminator, list):
        return {
            path[0]
            for path in discriminator
            if isinstance(path, list) and len(path) == 1 and isinstance(path[0], str)
        }
    return set()  # a callable discriminator reads whatever it likes


def _branch_fields(node: Node, defs: dict[str, Node], seen: set[int]) -> Iterator[tuple[str, Node]]:
    """``(name, field)`` for every field of the models a union branch can be."""
    if id(node) in seen:
        return
    seen.add(id(node))
    kind = node.get("type")
    if kind == "definition-ref":
        target = defs.get(node["schema_ref"])
        if target is not None:
            yield from _branch_fields(target, defs, seen)
    elif kind in ("union", "tagged-union"):
        for choice in _nodes(node["choices"]):
            yield from _branch_fields(choice, defs, seen)
    elif kind in ("model-fields", "typed-dict"):
        yield from node["fields"].items()
    elif kind == "dataclass-args":
        yield from ((field["name"], field) for field in node["fields"])
    elif kind in ("model", "dataclass", "definitions", "nullable", "custom-error") or (
        kind is not None and kind.startswith("function-") and "schema" in node
    ):
        yield from _branch_fields(node["schema"], defs, seen)


def tag_fields(root: Node) -> set[int]:
    """Ids of the defaults and TypedDict fields holding a discriminated union's tag.

    pydantic reads the tag to pick the branch, and a missing or null tag picks none; so the
    wire keeps these required and non-null even when the field has a default.
    """
    defs = {node["ref"]: node for node in _walk(root) if isinstance(node.get("ref"), str)}
    found: set[int] = set()
    for node in _walk(root):
        if node.get("type") != "tagged-union":
            continue
        keys = _tag_keys(node.get("discriminator"))
        for choice in _nodes(node["choices"]) if keys else ():
            for name, field in _branch_fields(choice, defs, set()):
                alias = field.get("validation_alias")
                if name not in keys and not (isinstance(alias, str) and alias in keys):
                    continue
                if field.get("type") == "typed-dict-field":
                    found.add(id(field))
                elif field["schema"].get("type") == "default":
                    found.add(id(field["schema"]))
    return found


# -- validation ------------------------------------------------------------------------------


def _use_default(value: Any) -> Any:
    if value is None:
        raise PydanticUseDefault()
    return value


def _omit(value: Any) -> Any:
    if value is None:
        raise PydanticOmit()
    return value


def _check_new_key(key: Any, seen: dict[Any, Any]) -> None:
    try:
        repeated = key in seen
    except TypeError:
        raise PydanticCustomError(
            "unhashable_key", "key {key} cannot be a mapping key", {"key": repr(key)}
        ) from None
    if repeated:
        raise PydanticCustomError(
            "duplicate_key", "key {key} appears more than once", {"key": repr(key)}
        )


def _pairs_to(container: Callable[[dict[Any, Any]], Any]) -> Callable[[list[Any]], Any]:
    def convert(entries: list[Any]) -> Any:
        out: dict[Any, Any] = {}
        for entry in entries:
            key = entry["key"]
            _check_new_key(key, out)
            out[key] = entry["value"]
        return out if container is dict else container(out)

    return convert


_CONTAINERS: dict[str, Callable[[dict[Any, Any]], Any]] = {
    "dict": dict,
    "ordered-dict": collections.OrderedDict,
    "counter": collections.Counter,
    "frozendict": dict,
}


def _stand_in(cls: type[Any]) -> type[Any]:
    """A class pydantic-core has no prebuilt validator for, whose instances are ``cls``'s.

    pydantic-core makes the instance by calling the class's ``__new__`` with no arguments.
    ``partial(cls.__new__, cls)`` does that without a Python frame per instance (the stand-in
    class arrives as an ignored extra argument, which ``object.__new__`` accepts for classes
    with their own ``__init__``, as models and dataclasses have); a class whose ``__new__``
    refuses it gets a Python function instead.
    """
    make: Any = functools.partial(cls.__new__, cls)
    namespace: dict[str, Any] = {"__slots__": (), "__module__": cls.__module__}
    try:
        made_ok = type(make(cls)) is cls
    except Exception:
        made_ok = False
    if made_ok:
        namespace["__new__"] = make
    else:
        new: Any = cls.__new__

        def __new__(_stand_in_cls: type[Any], *args: Any, **kwargs: Any) -> Any:
            return new(cls)

        namespace["__new__"] = __new__
    return type(cls.__name__, (), namespace)


def _entry_schema(node: Node, config: Any) -> Any:
    return cs.typed_dict_schema(
        {
            "key": cs.typed_dict_field(node.get("keys_schema") or cs.str_schema()),
            "value": cs.typed_dict_field(node.get("values_schema") or cs.any_schema()),
        },
        config=config,
    )


def _keep(old: Node, new: Any) -> Node:
    out: Node = dict(new)
    for key in ("ref", "metadata"):
        if key in old:
            out[key] = old[key]
    return out


def validation_schema(root: Node, default_ids: set[int], omit_ids: set[int]) -> Node | None:
    """The rewritten core schema for decoding, or None when the original one already fits."""

    def direct(node: Node, config: Any) -> bool:
        key = id(node)
        return node.get("type") in DICT_LIKE or key in default_ids or key in omit_ids

    rewrite = _Rewrite(root, direct, inputs=True)
    if not rewrite.needs(root):
        return None
    shapes = _Shapes(rewrite.defs, default_ids, omit_ids)

    def transform(new: Node, old: Node, config: Any) -> Node:
        kind = old["type"]
        if kind in _RAW_INPUT:
            return _keep(old, _raw_input(old, config, rewrite, shapes))
        if kind == "json":  # needs rewriting only for the references inside
            new["schema"] = rewrite.original(old["schema"])
        elif kind in DICT_LIKE:
            entries = cs.list_schema(
                _entry_schema(new, config),
                min_length=new.get("min_length"),
                max_length=new.get("max_length"),
                strict=new.get("strict"),
            )
            after = cs.no_info_after_validator_function(_pairs_to(_CONTAINERS[kind]), entries)
            return _keep(old, after)
        elif kind == "default" and id(old) in default_ids:
            inner = cs.nullable_schema(new["schema"])
            new["schema"] = cs.no_info_after_validator_function(_use_default, inner)
        elif kind == "typed-dict-field" and id(old) in omit_ids:
            inner = cs.nullable_schema(new["schema"])
            new["schema"] = cs.no_info_after_validator_function(_omit, inner)
        elif kind in ("model", "dataclass"):
            cls = new["cls"]
            if new.get("custom_init"):
                raise SchemaError(
                    f"`{cls.__name__}` defines `__init__`, so fieldwise cannot rebuild it after "
                    "lowering its dict fields or defaults; move that logic to `model_post_init`"
                )
            new["cls"] = _stand_in(cls)
        return new

    return rewrite.run(transform)


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


# -- the Python shape of wire data -------------------------------------------------------------


class _NoFit(Exception):
    """The value does not have this union branch's wire shape: try the next one."""


# (value, trial) -> the value in the Python shape; ``trial`` is set while trying union
# branches, where a value of another shape raises _NoFit instead of passing through.
Convert = Callable[[Any, bool], Any]

_LISTS = ("list", "set", "frozenset", "deque", "generator")
_INNER = ("default", "function-after", "custom-error", "definitions")


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


# -- serialization ---------------------------------------------------------------------------


def _user_serializer(node: Node) -> bool:
    """Whether ``node`` carries a serializer function of the user's that encoding bypasses.

    pydantic's own (URLs, paths, ``defaultdict``...) write the validation shape and stay.
    Behind a validator function that reads the raw input, the user's serializer is taken
    for that function's inverse (a custom type, base64 both ways) and stays too.
    """
    ser = node.get("serialization")
    if not isinstance(ser, dict) or ser.get("type") not in ("function-plain", "function-wrap"):
        return False
    if node.get("type") in _RAW_INPUT:
        return False
    function = ser.get("function")
    module = getattr(function, "__module__", None) or type(function).__module__
    return module.partition(".")[0] not in ("pydantic", "pydantic_core")


_ADAPTERS: dict[type[Any], TypeAdapter[Any] | None] = {}


def _own_adapter(cls: type[Any]) -> TypeAdapter[Any] | None:
    """The class's own serialization, when it defines a pydantic schema of its own.

    Other classes (``str`` from an after-validator, say) are left to the user's function,
    which is then the inverse of that validator.
    """
    if cls not in _ADAPTERS:
        adapter = None
        if hasattr(cls, "__get_pydantic_core_schema__"):
            try:
                adapter = TypeAdapter(cls)
            except Exception:  # a schema pydantic cannot build on its own: not ours to judge
                adapter = None
        if len(_ADAPTERS) >= 256:
            _ADAPTERS.clear()
        _ADAPTERS[cls] = adapter
    return _ADAPTERS[cls]


def _native_first(ser: Node) -> Node:
    """The user's serializer ``ser``, run only where the value's type cannot serialize itself.

    A field, ``PlainSerializer`` or ``WrapSerializer`` function writes what the user wants
    to read (``str`` for an ``int``, a custom date format), not the shape the schema
    describes and decode accepts; the type's own serialization writes that one. A value of
    a custom class is written by the class's own serializer, or failing that by the user's.
    """
    user = ser["function"]
    wrap = ser["type"] == "function-wrap"
    field = bool(ser.get("is_field_serializer"))
    info_arg = bool(ser.get("info_arg"))

    def run(owner: Any, value: Any, handler: Any, info: Any) -> Any:
        try:
            return handler(value)
        except (PydanticSerializationError, PydanticSerializationUnexpectedValue):
            pass
        adapter = _own_adapter(type(value))  # a custom type the user's function replaced
        if adapter is not None:
            try:
                return adapter.dump_python(value, mode="json", round_trip=True)
            except (PydanticSerializationError, PydanticSerializationUnexpectedValue):
                pass
        args = [owner, value] if field else [value]
        if wrap:
            args.append(handler)
        if info_arg:
            args.append(info)
        return user(*args)

    def serialize(value: Any, handler: Any, info: Any) -> Any:
        return run(None, value, handler, info)

    def serialize_field(owner: Any, value: Any, handler: Any, info: Any) -> Any:
        return run(owner, value, handler, info)

    return dict(
        cs.wrap_serializer_function_ser_schema(
            serialize_field if field else serialize,
            is_field_serializer=field,
            info_arg=True,
            when_used=ser.get("when_used", "always"),
        )
    )


def _to_pairs(mapping: Any) -> Any:
    if isinstance(mapping, list):  # already entries: a function serializer's handler wrote
        return mapping  # them, and its return schema (this one) serializes them again
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _field_dumper(cls: type[Any], names: tuple[str, ...], root: bool) -> Callable[[Any], Any]:
    def dump(value: Any) -> Any:
        if not isinstance(value, cls):
            raise PydanticSerializationUnexpectedValue(f"expected {cls.__name__}")
        if root:
            return value.root
        return {name: getattr(value, name) for name in names}

    return dump


def _fill_missing(names: tuple[str, ...]) -> Callable[[Any], Any]:
    def fill(value: Any) -> Any:
        if not isinstance(value, dict):
            raise PydanticSerializationUnexpectedValue("expected a dict")
        filled = dict(value)
        for name in names:
            filled.setdefault(name, None)
        return filled

    return fill


def _fields_of(node: Node) -> Node | None:
    """The model-fields / dataclass-args node of a model, under any validator wrappers."""
    while node.get("type") in ("function-before", "function-after", "function-wrap"):
        node = node["schema"]
    return node if node.get("type") in ("model-fields", "dataclass-args") else None


def _as_typed_dict_field(field: Node) -> Any:
    out: Node = {"type": "typed-dict-field", "schema": field["schema"], "required": True}
    for key in ("serialization_alias", "metadata"):
        if field.get(key) is not None:
            out[key] = field[key]
    return out


def serialization_schema(root: Node, optional_ids: set[int]) -> Node | None:
    """The rewritten core schema for encoding, or None when the original one already fits."""

    def field_changes(node: Node, config: Any) -> bool:
        return (
            wire_alias(node, config) != node.get("serialization_alias")
            or bool(node.get("serialization_exclude"))
            or node.get("serialization_exclude_if") is not None
        )

    def direct(node: Node, config: Any) -> bool:
        kind = node.get("type")
        if kind in DICT_LIKE or _user_serializer(node):
            return True
        if kind in _FIELD_TYPES:
            return id(node) in optional_ids or field_changes(node, config)
        if kind == "model-fields":
            return node.get("extra_behavior") == "allow" or bool(node.get("computed_fields"))
        if kind == "model":
            return (node.get("config") or {}).get("extra_fields_behavior") == "allow"
        return False

    rewrite = _Rewrite(root, direct, serializers=True)
    if not rewrite.needs(root):
        return None

    def transform(new: Node, old: Node, config: Any) -> Node:
        kind = old["type"]
        if kind == "json":  # needs rewriting only for the references inside
            new["schema"] = rewrite.original(old["schema"])
        elif _user_serializer(old) and kind not in ("model", "dataclass"):
            new["serialization"] = _native_first(old["serialization"])
        if kind in DICT_LIKE:
            entries = cs.list_schema(_entry_schema(new, config))
            new["serialization"] = cs.plain_serializer_function_ser_schema(
                _to_pairs, return_schema=entries, when_used="always"
            )
        elif kind in _FIELD_TYPES:
            alias = wire_alias(new, config)
            new.pop("serialization_alias", None)
            if alias is not None:
                new["serialization_alias"] = alias
            new.pop("serialization_exclude", None)
            new.pop("serialization_exclude_if", None)
        elif kind == "typed-dict":
            missing = tuple(
                name for name, field in old["fields"].items() if id(field) in optional_ids
            )
            if missing:
                shape = dict(new)
                shape["fields"] = {
                    name: (
                        {**f, "required": True, "schema": cs.nullable_schema(f["schema"])}
                        if name in missing
                        else f
                    )
                    for name, f in new["fields"].items()
                }
                shape.pop("ref", None)
                shape.pop("serialization", None)
                new["serialization"] = cs.plain_serializer_function_ser_schema(
                    _fill_missing(missing), return_schema=shape, when_used="always"
                )
        elif kind in ("model", "dataclass"):  # a model serializer's output is not the wire's
            return _keep(old, _dump_as_fields(new, config))
        return new

    return rewrite.run(transform)


def _dump_as_fields(model: Node, config: Any) -> Node:
    cls = model["cls"]
    root = bool(model.get("root_model"))
    fields = _fields_of(model["schema"])
    if root:
        shape = model["schema"]
        names: tuple[str, ...] = ()
    elif fields is None:
        raise SchemaError(f"cannot encode `{cls.__name__}`: unexpected core schema")
    elif fields["type"] == "model-fields":
        names = tuple(fields["fields"])
        shape = cs.typed_dict_schema(
            {name: _as_typed_dict_field(f) for name, f in fields["fields"].items()},
            config=model.get("config", config),
        )
    else:
        usable = [f for f in fields["fields"] if not f.get("init_only")]
        names = tuple(f["name"] for f in usable)
        shape = cs.typed_dict_schema(
            {f["name"]: _as_typed_dict_field(f) for f in usable},
            config=model.get("config", config),
        )
    return {
        "type": "any",
        "serialization": cs.plain_serializer_function_ser_schema(
            _field_dumper(cls, names, root), return_schema=shape, when_used="always"
        ),
    }
