"""The strict JSON-schema subset that OpenAI-style ``strict: true`` endpoints accept.

``check_strict_schema`` says, in words, why an endpoint would reject a schema. The schema
compiler runs it on its own output as a last line of defence, tests run it on generated models,
and the loopback fake server can run it to reject requests the way a real endpoint would.
The rules are those of OpenAI's structured outputs (followed by most providers); ``title`` is
tolerated because endpoints ignore it rather than reject it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALLOWED_FORMATS",
    "ALLOWED_KEYWORDS",
    "MAX_ENUM_VALUES",
    "MAX_NESTING",
    "MAX_PROPERTIES",
    "NAME_PATTERN",
    "check_strict_schema",
]

#: String formats a strict endpoint understands; any other ``format`` is rejected.
ALLOWED_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)

#: Every keyword a strict schema may use (``title`` is ignored by endpoints, not rejected).
ALLOWED_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "anyOf",
        "$defs",
        "$ref",
        "description",
        "title",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")

MAX_NESTING = 10
MAX_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000

#: What ``response_format.json_schema.name`` must match.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def check_strict_schema(schema: Mapping[str, Any], *, name: str | None = None) -> list[str]:
    """Return the reasons a strict endpoint would reject ``schema`` (empty: accepted).

    ``name``, when given, is checked as the ``json_schema.name`` sent beside the schema.
    Locations are JSON pointers (``#/properties/items/items``).
    """
    checker = _Checker(schema)
    checker.run()
    if name is not None and not NAME_PATTERN.match(name):
        checker.problems.append(f"name {name!r} does not match {NAME_PATTERN.pattern}")
    return checker.problems + checker.limits


class _Checker:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.root = schema
        self.problems: list[str] = []
        self.limits: list[str] = []  # size limits, kept apart: the compiler reports, not raises
        self.properties = 0
        self.enum_values = 0
        defs = schema.get("$defs") if isinstance(schema, Mapping) else None
        self.defs: Mapping[str, Any] = defs if isinstance(defs, Mapping) else {}
        self._depth_memo: dict[str, int] = {}

    def problem(self, pointer: str, text: str) -> None:
        self.problems.append(f"{pointer}: {text}")

    def run(self) -> None:
        root = self.root
        if not isinstance(root, Mapping):
            self.problems.append("#: the schema is not an object")
            return
        if root.get("type") != "object" or "anyOf" in root or "$ref" in root:
            self.problem("#", "the root must be an object schema (not anyOf or a bare $ref)")
        if "$defs" in root and not isinstance(root["$defs"], Mapping):
            self.problem("#/$defs", "$defs must be an object")
        for def_name, sub in self.defs.items():
            self.node(sub, f"#/$defs/{_escape(def_name)}")
        self.node(root, "#", is_root=True)
        if self.properties > MAX_PROPERTIES:
            self.limits.append(
                f"#: {self.properties} properties in all; at most {MAX_PROPERTIES} are allowed"
            )
        if self.enum_values > MAX_ENUM_VALUES:
            self.limits.append(
                f"#: {self.enum_values} enum values in all; at most {MAX_ENUM_VALUES} are allowed"
            )
        depth = self.depth(root, ("#",))
        if depth > MAX_NESTING:
            self.limits.append(
                f"#: objects nest {depth} levels deep; at most {MAX_NESTING} are allowed"
            )

    def node(self, node: Any, ptr: str, *, is_root: bool = False) -> None:
        if not isinstance(node, Mapping):
            self.problem(ptr, "a schema must be an object")
            return
        for key in node:
            if key not in ALLOWED_KEYWORDS:
                self.problem(ptr, f"keyword {key!r} is not allowed in strict mode")
        if "$defs" in node and not is_root:
            self.problem(ptr, "$defs is only allowed at the root")
        if "description" in node and not isinstance(node["description"], str):
            self.problem(ptr, "description must be a string")
        if "$ref" in node:
            self.check_ref(node, ptr)
            return
        has_shape = False
        if "anyOf" in node:
            has_shape = True
            branches = node["anyOf"]
            if not isinstance(branches, list) or not branches:
                self.problem(ptr, "anyOf must be a non-empty list")
            else:
                for i, branch in enumerate(branches):
                    self.node(branch, f"{ptr}/anyOf/{i}")
        if "enum" in node:
            has_shape = True
            values = node["enum"]
            if not isinstance(values, list) or not values:
                self.problem(ptr, "enum must be a non-empty list")
            else:
                self.enum_values += len(values)
        if "const" in node:
            has_shape = True
        types = self.types(node, ptr)
        if types:
            has_shape = True
        if not has_shape:
            self.problem(ptr, "the schema has no type (an empty schema accepts anything)")
        if "object" in types or "properties" in node:
            self.check_object(node, ptr)
        if "array" in types or "items" in node:
            self.check_array(node, ptr)
        if "format" in node and node["format"] not in ALLOWED_FORMATS:
            self.problem(ptr, f"format {node['format']!r} is not supported")
        if "pattern" in node and not isinstance(node["pattern"], str):
            self.problem(ptr, "pattern must be a string")
        for key in _NUMBER_KEYWORDS:
            value = node.get(key)
            if key in node and (isinstance(value, bool) or not isinstance(value, int | float)):
                self.problem(ptr, f"{key} must be a number")

    def types(self, node: Mapping[str, Any], ptr: str) -> list[str]:
        if "type" not in node:
            return []
        raw = node["type"]
        types = raw if isinstance(raw, list) else [raw]
        for t in types:
            if t not in _TYPES:
                self.problem(ptr, f"unknown type {t!r}")
        return [t for t in types if isinstance(t, str)]

    def check_ref(self, node: Mapping[str, Any], ptr: str) -> None:
        siblings = [k for k in node if k != "$ref"]
        if siblings:
            self.problem(ptr, f"$ref cannot have sibling keywords ({', '.join(siblings)})")
        ref = node["$ref"]
        if ref == "#":
            return
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            self.problem(ptr, f"$ref {ref!r} must point into #/$defs")
            return
        if _unescape(ref[len("#/$defs/") :]) not in self.defs:
            self.problem(ptr, f"$ref {ref!r} does not resolve")

    def check_object(self, node: Mapping[str, Any], ptr: str) -> None:
        props = node.get("properties")
        if not isinstance(props, Mapping):
            self.problem(ptr, "an object must list its properties")
            props = {}
        if node.get("additionalProperties") is not False:
            self.problem(ptr, "an object must have additionalProperties: false")
        required = node.get("required", [])
        if not isinstance(required, list) or set(required) != set(props):
            missing = [k for k in props if k not in (required or [])]
            extra = [k for k in required or [] if k not in props]
            detail = []
            if missing:
                detail.append(f"not required: {', '.join(map(str, missing))}")
            if extra:
                detail.append(f"required but not a property: {', '.join(map(str, extra))}")
            self.problem(ptr, "every property must be required (" + "; ".join(detail) + ")")
        self.properties += len(props)
        for key, sub in props.items():
            self.node(sub, f"{ptr}/properties/{_escape(key)}")

    def check_array(self, node: Mapping[str, Any], ptr: str) -> None:
        if not isinstance(node.get("items"), Mapping):
            self.problem(ptr, "an array must have an items schema")
        else:
            self.node(node["items"], f"{ptr}/items")
        for key in ("minItems", "maxItems"):
            value = node.get(key)
            if key in node and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                self.problem(ptr, f"{key} must be a non-negative integer")

    def depth(self, node: Any, stack: tuple[str, ...]) -> int:
        """Object nesting depth, going once around any $ref cycle."""
        return self._depth(node, stack)[0]

    def _depth(self, node: Any, stack: tuple[str, ...]) -> tuple[int, bool]:
        # The flag says whether a cycle was cut below: such a depth depends on the path taken
        # and must not be memoised.
        if not isinstance(node, Mapping):
            return 0, False
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref == "#":
                name = "#"
            elif ref.startswith("#/$defs/"):
                name = _unescape(ref[len("#/$defs/") :])
            else:
                return 0, False
            if name in stack:
                return 0, True
            if name in self._depth_memo:
                return self._depth_memo[name], False
            target = self.root if name == "#" else self.defs.get(name)
            value, cut = self._depth(target, (*stack, name))
            if not cut:
                self._depth_memo[name] = value
            return value, cut
        children: list[Any] = []
        props = node.get("properties")
        if isinstance(props, Mapping):
            children.extend(props.values())
        if isinstance(node.get("items"), Mapping):
            children.append(node["items"])
        if isinstance(node.get("anyOf"), list):
            children.extend(node["anyOf"])
        inner, cut = 0, False
        for child in children:
            value, child_cut = self._depth(child, stack)
            inner = max(inner, value)
            cut = cut or child_cut
        is_object = node.get("type") == "object" or isinstance(props, Mapping)
        return inner + (1 if is_object else 0), cut


def _escape(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _unescape(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")
