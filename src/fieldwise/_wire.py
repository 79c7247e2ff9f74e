"""Decoding and encoding the wire shape inside pydantic-core (the data side of ``schema.py``).

When the wire shape is pydantic's own JSON shape (the common case), ``schema.py`` decodes
with the model's own validator and encodes with its own serializer. Otherwise the type's core
schema is rewritten, and a ``SchemaValidator`` / ``SchemaSerializer`` is built from it once:

- ``_wire_validate.validation_schema``, the core schema for decoding;
- ``_wire_shapes``, the conversion from the wire shape to the Python shape that precedes a
  validator function reading the raw input;
- ``_wire_serialize.serialization_schema``, the core schema for encoding.

This module holds what they share: walking a core schema's child slots, and ``_Rewrite``,
which rewrites a core schema at the changed nodes and every model/dataclass above them:
pydantic-core reuses a class's prebuilt validator/serializer for any ``model`` or
``dataclass`` node whose class is complete, ignoring the (rewritten) schema below it
(``_wire_validate`` and ``_wire_serialize`` each say how they deal with that). Below a
validator function that reads the raw input, what validates is the original schema; its
references point at copies of the original definitions (``_PY`` suffix), since the
definitions themselves are rewritten for the JSON side. A ``Json[...]`` string is pydantic's
own JSON, so nothing inside it is rewritten either.

It also finds the discriminated unions' tag fields (``tag_fields``), which
``_wire_json_schema.WireJsonSchema`` keeps required and non-null on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic_core import PydanticCustomError
from pydantic_core import core_schema as cs

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

# Validators whose function reads the raw input (everything below them sees Python data).
_RAW_INPUT = ("function-before", "function-wrap", "function-plain")
# Suffix of the copied original definitions that Python-shaped data validates against.
_PY = ":fieldwise-python"


def _is_node(value: dict[str, Any]) -> bool:
    """A core schema (its ``type`` names its kind), not a mapping of them: a model's
    ``fields`` are keyed by field name, and a field may be called ``type``."""
    return isinstance(value.get("type"), str)


def _nodes(value: Any) -> Iterator[Node]:
    if isinstance(value, dict):
        if _is_node(value):
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
        if _is_node(value):
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


# -- shared by the rewrites ------------------------------------------------------------------


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
