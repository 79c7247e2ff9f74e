"""The core schema for encoding the wire shape (``serialization_schema``).

Where the wire shape is not pydantic's own JSON shape, the type's core schema is rewritten
(with ``_wire._Rewrite``) and ``schema.py`` builds a ``SchemaSerializer`` from it once: a
dict-like node writes a list of ``{key, value}`` objects, a field is written under the name
validation reads (and never excluded), and a TypedDict key that may be missing is written as
null.

pydantic-core reuses a class's prebuilt serializer for any ``model`` or ``dataclass`` node
whose class is complete, ignoring the (rewritten) schema below it. A rewritten model node
therefore becomes a plain serializer that hands the field dict to a TypedDict schema.

Encoding writes the wire shape, which is the validation shape: the user's field, model and
annotated serializers describe other outputs, so they run only for values pydantic cannot
serialize by itself (custom types), and where a validator function reads the raw input
(their inverse, e.g. base64 both ways).

Decoding is ``_wire_validate``: the two rewrites change different nodes in different ways
and share only the machinery in ``_wire``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError, PydanticSerializationUnexpectedValue
from pydantic_core import core_schema as cs

from ._wire import _RAW_INPUT, Node, _entry_schema, _keep, _Rewrite
from ._wire_json_schema import DICT_LIKE, wire_alias
from .exceptions import SchemaError

_FIELD_TYPES = ("model-field", "dataclass-field", "typed-dict-field")


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
