"""The core schema for decoding the wire shape (``validation_schema``).

Where the wire shape is not pydantic's own JSON shape, the type's core schema is rewritten
(with ``_wire._Rewrite``) and ``schema.py`` builds a ``SchemaValidator`` from it once:

- every dict-like node (the JSON side lowers them all) validates a list of ``{key, value}``
  objects (keys and values with their own schemas, in JSON mode), then an after-function
  builds the mapping;
- a default that ``_wire_json_schema.WireJsonSchema`` made nullable (it records the node ids)
  validates ``nullable(inner)`` and turns ``None`` into ``PydanticUseDefault`` (pydantic then
  applies the default or default factory itself);
- a TypedDict key that became nullable turns ``None`` into ``PydanticOmit``.

Validation therefore stays one ``validate_json`` call with JSON-mode semantics (strict
models keep working) and error locations are pydantic's own.

A validator that reads the raw input (``mode="before"``/``"wrap"``/``"plain"``) is preceded
by the conversion to the Python shape that ``_wire_shapes`` builds.

pydantic-core reuses a class's prebuilt validator for any ``model`` or ``dataclass`` node
whose class is complete, ignoring the (rewritten) schema below it. A rewritten model node
therefore names a stand-in class whose ``__new__`` returns an instance of the real class, so
pydantic-core fills in a real instance (fields set, extras, ``model_post_init`` and config
all as usual).

Encoding is ``_wire_serialize``: the two rewrites change different nodes in different ways
and share only the machinery in ``_wire``.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticOmit, PydanticUseDefault
from pydantic_core import core_schema as cs

from ._wire import _RAW_INPUT, Node, _check_new_key, _entry_schema, _keep, _Rewrite
from ._wire_json_schema import DICT_LIKE
from ._wire_shapes import _raw_input, _Shapes
from .exceptions import SchemaError


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
