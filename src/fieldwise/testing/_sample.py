"""A deterministic JSON-schema → instance sampler.

Why it exists: the fake server answers every request that has no scripted reply with an
instance of the schema the client sent, so a test exercises the happy path without writing a
reply per model. Deterministic, so test expectations and cache keys are stable. It covers the
strict subset fieldwise sends (``$defs``/``$ref`` incl. recursion, ``anyOf``, ``enum``/``const``,
formats, numeric bounds, ``minItems``) plus the common looser keywords a user's own schema may
carry (``oneOf``, ``allOf``, ``minLength``, ``pattern``).

The answer must also validate against the user's own types, which the fake never sees: so the
constraints fieldwise's compiler moves out of the strict subset into a field's description
(string lengths, tuple positions, unique items, look-around patterns, formats outside the
subset; see ``fieldwise._lowering``) are read back from the description's words
(``_schema_notes``). A string's text, for its length bounds and ``pattern``, is chosen in
``_pattern_text``, which generates one from the parsed regular expression when no friendly
candidate matches.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from .._description_words import ITEMS_IN_ORDER
from ._pattern_text import _text
from ._schema_notes import _notes, _positions

__all__ = ["sample"]

_FORMATS: dict[str, str] = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T12:00:00Z",
    "time": "12:00:00",
    "duration": "P1D",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
}
# Deeper than the strict limit (10 levels) but small enough to stop a runaway recursion.
_MAX_DEPTH = 40


def sample(schema: Mapping[str, Any] | bool) -> Any:
    """Return one instance valid against ``schema`` (same input, same output)."""
    root: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    return _Sampler(root).value(schema, ("#",), False, 0)


class _Sampler:
    """Walks a schema; ``minimal`` is switched on once a ``$ref`` is re-entered.

    In minimal mode nullable branches become null, arrays get ``minItems`` items and objects
    only their required properties, which is what makes recursive schemas finish.
    """

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> Any:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def value(self, schema: Any, stack: tuple[str, ...], minimal: bool, depth: int) -> Any:
        if schema is True or schema is None:
            return "example"
        if not isinstance(schema, Mapping):
            raise ValueError("a schema of false has no instance")
        if depth > _MAX_DEPTH:
            return None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = dict(self.resolve(ref))
            target.update((k, v) for k, v in schema.items() if k != "$ref")
            return self.value(target, (*stack, ref), minimal or ref in stack, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return None if minimal and None in enum else enum[0]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self._branch(schema, key, branches, stack, minimal, depth)
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in all_of:
                if isinstance(part, Mapping):
                    part = self._deref(part)
                    for k, v in part.items():
                        if k in ("properties", "$defs") and isinstance(merged.get(k), Mapping):
                            merged[k] = {**merged[k], **v}
                        elif k == "required" and isinstance(merged.get(k), list):
                            merged[k] = [*merged[k], *v]
                        else:
                            merged[k] = v
            return self.value(merged, stack, minimal, depth + 1)
        kind = self._type(schema, minimal)
        if kind == "null":
            return None
        if kind == "boolean":
            return True
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "string":
            return _string(schema)
        if kind == "array":
            return self._array(schema, stack, minimal, depth)
        if kind == "object":
            return self._object(schema, stack, minimal, depth)
        return "example"

    def _deref(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        return self.resolve(ref) if isinstance(ref, str) else schema

    def _branch(
        self,
        schema: Mapping[str, Any],
        key: str,
        branches: list[Any],
        stack: tuple[str, ...],
        minimal: bool,
        depth: int,
    ) -> Any:
        def is_null(branch: Any) -> bool:
            return isinstance(branch, Mapping) and (
                branch.get("type") == "null" or branch.get("const", ...) is None
            )

        if minimal and any(is_null(b) for b in branches):
            return None
        chosen = next((b for b in branches if not is_null(b)), None)
        if chosen is None:
            return None
        siblings = {k: v for k, v in schema.items() if k != key}
        if siblings and isinstance(chosen, Mapping):
            chosen = {**siblings, **chosen}
        return self.value(chosen, stack, minimal, depth + 1)

    def _type(self, schema: Mapping[str, Any], minimal: bool) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            if minimal and "null" in kind:
                return "null"
            non_null = [k for k in kind if k != "null"]
            return str(non_null[0]) if non_null else "null"
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    def _array(
        self, schema: Mapping[str, Any], stack: tuple[str, ...], minimal: bool, depth: int
    ) -> list[Any]:
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        notes = _notes(schema.get("description"))
        items = schema.get("items", True)
        if not prefix and ITEMS_IN_ORDER in notes:
            prefix = _positions(notes[ITEMS_IN_ORDER], items)
        low = int(schema.get("minItems", 0))
        count = low if minimal else max(low, 1, len(prefix))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        out = []
        for i in range(count):
            item_schema = prefix[i] if i < len(prefix) else items
            out.append(self.value(item_schema, stack, minimal, depth + 1))
        if (schema.get("uniqueItems") or "uniqueItems" in notes) and len(out) > 1:
            out = [_vary(v, i) for i, v in enumerate(out)]
        return out

    def _object(
        self, schema: Mapping[str, Any], stack: tuple[str, ...], minimal: bool, depth: int
    ) -> dict[str, Any]:
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if minimal and name not in required:
                continue
            out[name] = self.value(sub, stack, minimal, depth + 1)
        for name in sorted(required - set(props)):
            out[name] = "example"
        low = int(schema.get("minProperties", 0))
        extra = schema.get("additionalProperties", True)
        index = 0
        while len(out) < low and extra is not False:
            out[f"key{index}"] = self.value(extra, stack, True, depth + 1)
            index += 1
        return out


def _vary(value: Any, index: int) -> Any:
    """Make the ``index``-th item of a ``uniqueItems`` array differ from the others."""
    if isinstance(value, bool) or index == 0:
        return value
    if isinstance(value, int | float):
        return value + index
    if isinstance(value, str):
        return f"{value}{index}"
    if isinstance(value, dict):  # vary a property (a closed object takes no new key)
        for key, item in value.items():
            varied = _vary(item, index)
            if varied != item:
                return {**value, key: varied}
        return {**value, f"_{index}": index}
    return value


def _bounds(schema: Mapping[str, Any]) -> tuple[float, float, bool, bool]:
    """(low, high, low_open, high_open) from draft-2020 numeric keywords."""
    low, high, low_open, high_open = -math.inf, math.inf, False, False
    if _is_number(schema.get("minimum")):
        low = float(schema["minimum"])
    if _is_number(schema.get("exclusiveMinimum")) and schema["exclusiveMinimum"] >= low:
        low, low_open = float(schema["exclusiveMinimum"]), True
    if _is_number(schema.get("maximum")):
        high = float(schema["maximum"])
    if _is_number(schema.get("exclusiveMaximum")) and schema["exclusiveMaximum"] <= high:
        high, high_open = float(schema["exclusiveMaximum"]), True
    return low, high, low_open, high_open


def _numeric(schema: Mapping[str, Any], integer: bool) -> float | int:
    """The first friendly candidate inside the bounds (1 or 1.5, then values near a bound).

    With ``multipleOf`` the candidates are whole multiples (``step`` and 0 first), rounded to
    the step's decimals and kept only if ``value / step`` is whole in floating point, which is
    how validators check it (0.3 is not a multiple of 0.1 for them; 0.4 is).
    """
    low, high, low_open, high_open = _bounds(schema)

    def inside(v: float) -> bool:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    raw_step = schema.get("multipleOf")
    step: float = raw_step if _is_number(raw_step) else 0
    candidates: list[float]
    if step > 0:
        exponent = decimal.Decimal(repr(step)).as_tuple().exponent
        digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        ks: list[int] = [1, 0]
        if low > -math.inf:
            first = math.ceil(low / step)
            ks += range(first, first + 12)
        if high < math.inf:
            last = math.floor(high / step)
            ks += range(last, last - 12, -1)
        candidates = [round(k * step, digits) if digits else k * step for k in ks]
    else:
        one = 1 if integer else 1.5
        candidates = [one]
        if low > -math.inf:
            candidates += [math.floor(low) + 1 if integer else low + 1.0, low]
        if high < math.inf:
            candidates += [math.ceil(high) - 1 if integer else high - 1.0, high]
        if low > -math.inf and high < math.inf:
            candidates.append(math.floor((low + high) / 2) if integer else (low + high) / 2)
    for value in candidates:
        whole = not integer or float(value).is_integer()
        # validators test ``value / step`` for being whole, in floating point
        if inside(value) and whole and (step <= 0 or (value / step).is_integer()):
            return int(value) if integer else value
    return int(candidates[-1]) if integer else candidates[-1]


def _integer(schema: Mapping[str, Any]) -> int:
    return int(_numeric(schema, True))


def _number(schema: Mapping[str, Any]) -> float | int:
    return _numeric(schema, False)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(schema: Mapping[str, Any]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    notes = _notes(schema.get("description"))
    low = schema.get("minLength", notes.get("minLength", 0))
    high = schema.get("maxLength", notes.get("maxLength"))
    pattern = schema.get("pattern", notes.get("pattern"))
    if pattern is None and "format" in notes:
        return str(notes["format"])
    return _text(
        pattern if isinstance(pattern, str) else None,
        int(low),
        int(high) if isinstance(high, int) else None,
    )
