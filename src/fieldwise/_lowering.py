"""Pass two of lowering a pydantic type: its generated schema into the strict subset.

``Strictifier`` walks the schema that ``_wire_json_schema.WireJsonSchema`` generated (pass
one: pydantic's generator with fieldwise's wire shapes) from the root, following ``$ref``s,
and turns it into the strict subset: closed objects with every property required,
``oneOf`` → ``anyOf``, ``$ref`` siblings moved beside a one-branch ``anyOf`` (strict
endpoints reject siblings of ``$ref`` but accept them beside ``anyOf``), and keywords the
subset lacks moved into the description. Constraints moved to descriptions are still
enforced on decode, because decoding always validates with the user's own pydantic types.
"""

from __future__ import annotations

import decimal
import json
import math
import numbers
from typing import Any

from pydantic.json_schema import JsonSchemaValue

from ._description_words import (
    FORMAT_WORDS,
    ITEMS_IN_ORDER,
    MATCHES_PATTERN,
    UNIQUE_ITEMS,
    type_label,
)
from ._wire_json_schema import ANY_MESSAGE, LOWERED, NOTES, UNSUPPORTED, short_json
from .exceptions import SchemaError
from .strict_subset import ALLOWED_FORMATS

_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_SILENT_DROP = ("title", "default", "$schema", "$id", "$comment")

Lowered = tuple[str, str, str]  # (path, kind, detail)


class Strictifier:
    """Rewrites a generated schema into the strict subset, collecting what it lowered."""

    def __init__(self, raw: JsonSchemaValue) -> None:
        self.raw = dict(raw)
        self.defs_in: dict[str, Any] = dict(self.raw.pop("$defs", {}))
        self.defs_out: dict[str, Any] = {}
        self.root_def: str | None = None
        self.report: list[Lowered] = []

    def run(self) -> JsonSchemaValue:
        raw = self.raw
        if set(raw) == {"$ref"}:
            # A recursive root model: its body becomes the root and refs to it become "#".
            self.root_def = self._def_name(raw["$ref"])
            raw = dict(self.defs_in[self.root_def])
        out = self.node(raw, "")
        if out.get("type") != "object":
            raise SchemaError("the root of a strict schema must be an object")
        if self.defs_out:
            out["$defs"] = self.defs_out
        return out

    def lower(self, path: str, kind: str, detail: str) -> None:
        self.report.append((path, kind, detail))

    def _def_name(self, ref: str) -> str:
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self.defs_in:
            raise SchemaError(f"unresolvable reference {ref!r}")
        return ref[len(prefix) :]

    def _visit_ref(self, ref: str, path: str) -> str:
        name = self._def_name(ref)
        if name == self.root_def:
            return "#"
        if name not in self.defs_out:
            self.defs_out[name] = {}  # placeholder: stops recursion, keeps first-visit order
            self.defs_out[name] = self.node(self.defs_in[name], path)
        return ref

    def node(self, raw: Any, path: str) -> JsonSchemaValue:
        if raw is True or raw == {}:
            raise SchemaError(ANY_MESSAGE, path=path)
        if not isinstance(raw, dict):
            raise SchemaError(f"unexpected schema {raw!r}", path=path)
        s = dict(raw)
        if UNSUPPORTED in s:
            raise SchemaError(s[UNSUPPORTED], path=path)
        notes: list[str] = list(s.pop(NOTES, ()))
        for kind, detail in s.pop(LOWERED, ()):
            self.lower(path, kind, detail)
        description = s.pop("description", None)
        for key in _SILENT_DROP:
            s.pop(key, None)
        if "examples" in s:
            examples = s.pop("examples")
            shown = examples[:3] if isinstance(examples, list) else [examples]
            notes.append("e.g. " + ", ".join(short_json(e, 40) for e in shown))
            self.lower(path, "examples→description", "examples moved into the description")
        if "allOf" in s:
            parts = s.pop("allOf")
            if len(parts) != 1:
                raise SchemaError(
                    "an intersection (allOf) of several schemas cannot be expressed; "
                    "describe the value with one model",
                    path=path,
                )
            for key, value in parts[0].items():
                s.setdefault(key, value)
        discriminator = s.pop("discriminator", None)
        if "oneOf" in s:
            if "anyOf" in s:
                raise SchemaError("oneOf beside anyOf cannot be expressed", path=path)
            s["anyOf"] = s.pop("oneOf")
            if discriminator is not None:
                tag = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
                self.lower(
                    path,
                    "discriminator→anyOf",
                    f"tagged union on {tag!r} sent as anyOf; the tag still picks the branch "
                    "on decode",
                )
            else:
                self.lower(path, "oneOf→anyOf", "exactly-one-of sent as any-of")
        if "$ref" in s:
            ref = self._visit_ref(s.pop("$ref"), path)
            self._drop_leftovers(s, path)
            text = _describe(description, notes)
            if text is None:
                return {"$ref": ref}
            return {"description": text, "anyOf": [{"$ref": ref}]}
        out = self._any_of(s.pop("anyOf"), path) if "anyOf" in s else self._typed(s, path, notes)
        self._drop_leftovers(s, path)
        text = _describe(description, notes)
        if text is not None:
            if set(out) == {"$ref"}:
                return {"description": text, "anyOf": [out]}
            out = {"description": text, **{k: v for k, v in out.items() if k != "description"}}
        return out

    def _any_of(self, branches: list[Any], path: str) -> JsonSchemaValue:
        flat: list[JsonSchemaValue] = []
        seen: set[str] = set()
        for branch in branches:
            done = self.node(branch, path)
            parts = done["anyOf"] if set(done) == {"anyOf"} else [done]
            for part in parts:
                key = json.dumps(part, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    flat.append(part)
        if len(flat) == 1:
            return dict(flat[0])
        return {"anyOf": flat}

    def _typed(self, s: dict[str, Any], path: str, notes: list[str]) -> JsonSchemaValue:
        out: JsonSchemaValue = {}
        t = s.pop("type", None)
        types = set(t) if isinstance(t, list) else {t}
        if t is not None:
            out["type"] = t
        for key in ("enum", "const"):
            if key in s:
                out[key] = s.pop(key)
        if "object" in types or "properties" in s or "additionalProperties" in s:
            out.setdefault("type", "object")
            self._object(s, out, path, notes)
        if "array" in types or "items" in s or "prefixItems" in s:
            out.setdefault("type", "array")
            self._array(s, out, path, notes)
        self._string(s, out, path, notes)
        for key in _NUMBER_KEYWORDS:
            if key in s:
                out[key] = _json_number(s.pop(key), key, path)
        if not out:
            raise SchemaError(ANY_MESSAGE, path=path)
        return out

    def _object(self, s: dict[str, Any], out: JsonSchemaValue, path: str, notes: list[str]) -> None:
        props: dict[str, Any] = s.pop("properties", {})
        s.pop("required", None)
        extra = s.pop("additionalProperties", None)
        pattern_props = s.pop("patternProperties", None)
        if (extra not in (None, False) or pattern_props) and not props:
            raise SchemaError(
                "a free-form object (arbitrary keys) cannot be expressed; use `dict[str, X]` "
                "or a nested model with named fields",
                path=path,
            )
        if extra not in (None, False) or pattern_props:
            self.lower(
                path,
                "extra→closed",
                "the model accepts extra fields, but the strict schema is closed: only the "
                "declared fields are sent",
            )
        for key in ("minProperties", "maxProperties"):
            if key in s:
                value = s.pop(key)
                word = "at least" if key == "minProperties" else "at most"
                notes.append(f"{word} {value} entries")
                self.lower(path, f"{_snake(key)}→description", f"{key} {value} described")
        out["properties"] = {
            name: self.node(sub, f"{path}.{name}" if path else name) for name, sub in props.items()
        }
        out["required"] = list(props)
        out["additionalProperties"] = False

    def _array(self, s: dict[str, Any], out: JsonSchemaValue, path: str, notes: list[str]) -> None:
        item_path = f"{path}[]"
        prefix = s.pop("prefixItems", None)
        items = s.pop("items", None)
        if prefix is not None:
            positions = [self.node(p, item_path) for p in prefix]
            tail = None if items in (None, False) else self.node(items, item_path)
            choices = self._any_of([*positions, *([tail] if tail else [])], item_path)
            out["items"] = choices
            if "anyOf" in choices:
                words = ", ".join(type_label(p) for p in positions)
                more = f", then any number of {type_label(tail)}" if tail is not None else ""
                notes.append(f"{ITEMS_IN_ORDER}{words}{more}")
                self.lower(
                    path,
                    "tuple→array",
                    "positional item types are described; each position is checked on decode",
                )
        elif items is None or items is True or items == {}:
            raise SchemaError(
                "a list without an item type cannot be expressed; use `list[X]`", path=path
            )
        else:
            out["items"] = self.node(items, item_path)
        for key in ("minItems", "maxItems"):
            if key in s:
                out[key] = s.pop(key)
        if s.pop("uniqueItems", False):
            notes.append(UNIQUE_ITEMS)
            self.lower(path, "unique_items→description", "uniqueness is described")

    def _string(self, s: dict[str, Any], out: JsonSchemaValue, path: str, notes: list[str]) -> None:
        low, high = s.pop("minLength", None), s.pop("maxLength", None)
        if low is not None or high is not None:
            if low is not None and high is not None:
                notes.append(
                    f"exactly {_chars(low)}" if low == high else f"{low} to {_chars(high)}"
                )
            elif low is not None:
                notes.append(f"at least {_chars(low)}")
            else:
                notes.append(f"at most {_chars(high)}")
            if low is not None:
                self.lower(path, "min_length→description", f"minLength {low} described")
            if high is not None:
                self.lower(path, "max_length→description", f"maxLength {high} described")
        fmt = s.pop("format", None)
        if fmt is not None:
            if fmt in ALLOWED_FORMATS:
                out["format"] = fmt
            else:
                words = FORMAT_WORDS.get(fmt, f"format: {fmt}")
                if words:
                    notes.append(words)
                    self.lower(path, "format→description", f"format {fmt!r} described")
                else:
                    self.lower(path, "format→dropped", f"format {fmt!r}: sent as a plain string")
        pattern = s.pop("pattern", None)
        if pattern is not None:
            if any(token in pattern for token in _LOOKAROUND):
                notes.append(f"{MATCHES_PATTERN}{pattern}")
                self.lower(path, "pattern→description", "a look-around pattern described")
            else:
                out["pattern"] = pattern
        if "contentMediaType" in s or "contentSchema" in s:
            media = s.pop("contentMediaType", None)
            s.pop("contentSchema", None)
            s.pop("contentEncoding", None)
            notes.append(f"a string holding {media or 'encoded content'}")
            self.lower(path, "content→description", "an encoded string described")

    def _drop_leftovers(self, s: dict[str, Any], path: str) -> None:
        for key in list(s):
            if key.startswith("x-fieldwise-"):
                continue
            self.lower(path, "keyword→dropped", f"{key!r} is not in the strict subset")
            s.pop(key)


def _json_number(value: Any, key: str, path: str) -> int | float:
    """A bound as a JSON number: pydantic copies ``Field(ge=Decimal("1"))`` verbatim, and
    neither the strict subset nor ``json.dumps`` takes a Decimal (or a Fraction)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | decimal.Decimal):
        raise SchemaError(f"{key} {value!r} is not a number", path=path)
    if isinstance(value, int | float):
        return value
    as_float = float(value)
    if not math.isfinite(as_float):
        raise SchemaError(f"{key} {value!r} is not a finite number", path=path)
    whole = int(as_float)
    return whole if value == whole else as_float


def _describe(description: Any, notes: list[str]) -> str | None:
    text = "; ".join(dict.fromkeys(notes))
    if description and text:
        return f"{description} ({text})"
    if description:
        return str(description)
    return f"({text})" if text else None


def _chars(n: int) -> str:
    return f"{n} character" if n == 1 else f"{n} characters"


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
