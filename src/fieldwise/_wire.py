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

pydantic-core reuses a class's prebuilt validator/serializer for any ``model`` or
``dataclass`` node whose class is complete, ignoring the (rewritten) schema below it. For
validation, a rewritten model node therefore names a stand-in class whose ``__new__`` returns
an instance of the real class, so pydantic-core fills in a real instance (fields set, extras,
``model_post_init`` and config all as usual). For serialization, a rewritten model node
becomes a plain serializer that hands the field dict to a TypedDict schema.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterator
from typing import Any

from pydantic_core import (
    PydanticCustomError,
    PydanticOmit,
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

_FIELD_TYPES = ("model-field", "dataclass-field", "typed-dict-field")


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


class _Rewrite:
    """Rewrites a core schema at the changed nodes, and every model/dataclass above them."""

    def __init__(
        self, root: Node, direct: Callable[[Node], bool], *, serializers: bool = False
    ) -> None:
        self.root = root
        self.direct = direct
        self.serializers = serializers
        self.defs: dict[str, Node] = {}
        self._local: dict[int, tuple[bool, frozenset[str]]] = {}
        self._done: dict[int, Node] = {}
        self._collect(root, set())
        self.def_needs = self._solve_defs()

    def _collect(self, node: Node, seen: set[int]) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node.get("ref"), str):
            self.defs[node["ref"]] = node
        for key in self.slots(node):
            for child in _nodes(node[key]):
                self._collect(child, seen)

    def slots(self, node: Node) -> list[str]:
        """The keys of ``node`` holding core schemas to visit.

        For encoding, a function serializer's own schemas count too (a ``defaultdict`` field
        serializes through one); other serialization schemas are not core schemas.
        """
        slots = [key for key in _CHILD_KEYS if key in node]
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
        changed = self.direct(node)
        refs: set[str] = set()
        if node.get("type") == "definition-ref":
            refs.add(node["schema_ref"])
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

        return visit(self.root, None)


# -- validation ------------------------------------------------------------------------------


def _use_default(value: Any) -> Any:
    if value is None:
        raise PydanticUseDefault()
    return value


def _omit(value: Any) -> Any:
    if value is None:
        raise PydanticOmit()
    return value


def _pairs_to(container: Callable[[dict[Any, Any]], Any]) -> Callable[[list[Any]], Any]:
    def convert(entries: list[Any]) -> Any:
        out: dict[Any, Any] = {}
        for entry in entries:
            key = entry["key"]
            try:
                repeated = key in out
            except TypeError:
                raise PydanticCustomError(
                    "unhashable_key", "key {key} cannot be a mapping key", {"key": repr(key)}
                ) from None
            if repeated:
                raise PydanticCustomError(
                    "duplicate_key", "key {key} appears more than once", {"key": repr(key)}
                )
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

    def direct(node: Node) -> bool:
        key = id(node)
        return node.get("type") in DICT_LIKE or key in default_ids or key in omit_ids

    rewrite = _Rewrite(root, direct)
    if not rewrite.needs(root):
        return None

    def transform(new: Node, old: Node, config: Any) -> Node:
        kind = old["type"]
        if kind in DICT_LIKE:
            entries = cs.list_schema(
                _entry_schema(new, config),
                min_length=new.get("min_length"),
                max_length=new.get("max_length"),
                strict=new.get("strict"),
            )
            after = cs.no_info_after_validator_function(_pairs_to(_CONTAINERS[kind]), entries)
            return _keep(old, after)
        if kind == "default" and id(old) in default_ids:
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


# -- serialization ---------------------------------------------------------------------------


def _to_pairs(mapping: Any) -> list[dict[str, Any]]:
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

    def field_changes(node: Node) -> bool:
        return (
            wire_alias(node) != node.get("serialization_alias")
            or bool(node.get("serialization_exclude"))
            or node.get("serialization_exclude_if") is not None
        )

    def direct(node: Node) -> bool:
        kind = node.get("type")
        if kind in DICT_LIKE:
            return True
        if kind in _FIELD_TYPES:
            return id(node) in optional_ids or field_changes(node)
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
        if kind in DICT_LIKE:
            entries = cs.list_schema(_entry_schema(new, config))
            new["serialization"] = cs.plain_serializer_function_ser_schema(
                _to_pairs, return_schema=entries, when_used="always"
            )
        elif kind in _FIELD_TYPES:
            alias = wire_alias(new)
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
        elif kind in ("model", "dataclass") and "serialization" not in old:
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
