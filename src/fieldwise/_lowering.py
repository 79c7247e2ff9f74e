"""Lowering a pydantic type to the strict JSON-schema subset (the JSON side of ``schema.py``).

Two passes. ``WireJsonSchema`` is pydantic's own JSON-schema generator with a few shapes
changed at the core-schema level, where the type is still known: dict-like types become
lists of ``{key, value}`` objects, a non-nullable field with a default becomes nullable
(null = "use the default"), and what has no JSON shape becomes a marker instead of an
exception so the error can name the field path. It records which defaults (and TypedDict
keys) it made nullable, so that ``_wire.py`` rewrites exactly those nodes for decoding.

``Strictifier`` then walks the generated schema from the root, following ``$ref``s, and
turns it into the strict subset: closed objects with every property required, ``oneOf`` →
``anyOf``, ``$ref`` siblings moved beside a one-branch ``anyOf`` (strict endpoints reject
siblings of ``$ref`` but accept them beside ``anyOf``), and keywords the subset lacks moved
into the description. Constraints moved to descriptions are still enforced on decode,
because decoding always validates with the user's own pydantic types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonRef, JsonSchemaValue, NoDefault
from pydantic_core import core_schema as cs

from .exceptions import SchemaError
from .strict_subset import ALLOWED_FORMATS

UNSUPPORTED = "x-fieldwise-unsupported"
NOTES = "x-fieldwise-notes"
LOWERED = "x-fieldwise-lowered"

ANY_MESSAGE = (
    "`Any` (or a bare `object`, `dict` or `list`) has no shape a strict schema can express; "
    "use a nested model, `str`, or a concrete type such as `list[str]` or `dict[str, str]`"
)

DICT_LIKE = frozenset({"dict", "ordered-dict", "frozendict", "counter"})

# Formats outside the subset, said in words an LLM follows (None: nothing worth saying).
_FORMAT_WORDS: dict[str, str | None] = {
    "uri": "an absolute URL",
    "multi-host-uri": "a URL (several hosts may be comma-separated)",
    "binary": None,
    "password": None,
    "path": "a file path",
    "file-path": "a path to an existing file",
    "directory-path": "a path to an existing directory",
    "ipvanyaddress": "an IPv4 or IPv6 address",
    "ipvanyinterface": "an IPv4 or IPv6 interface",
    "ipvanynetwork": "an IPv4 or IPv6 network",
    "ipv4interface": "an IPv4 interface",
    "ipv6interface": "an IPv6 interface",
    "ipv4network": "an IPv4 network",
    "ipv6network": "an IPv6 network",
    "color": "a CSS color",
}

_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_SILENT_DROP = ("title", "default", "$schema", "$id", "$comment")

Lowered = tuple[str, str, str]  # (path, kind, detail)


def _marker(message: str) -> JsonSchemaValue:
    return {UNSUPPORTED: message}


def _add(js: JsonSchemaValue, key: str, item: Any) -> JsonSchemaValue:
    js.setdefault(key, []).append(item)
    return js


def _short_json(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wire_alias(field: Any) -> str | None:
    """The key a field has on the wire, as pydantic's by-alias validation JSON schema names it."""
    alias = field.get("validation_alias")
    if isinstance(alias, str):
        return alias
    if isinstance(alias, list):
        for path in alias:
            if isinstance(path, list) and len(path) == 1 and isinstance(path[0], str):
                return path[0]
    return None


class WireJsonSchema(GenerateJsonSchema):
    """pydantic's generator, with the wire shapes fieldwise sends instead of the Python ones."""

    def __init__(self) -> None:
        super().__init__(by_alias=True)
        # id -> node; holding the node keeps the id valid for the rewrite in _wire.py.
        self.null_default_nodes: dict[int, Any] = {}
        self.omit_fields: dict[int, Any] = {}
        self.optional_keys: dict[int, Any] = {}

    # -- what has no JSON shape -------------------------------------------------------------

    def any_schema(self, schema: cs.AnySchema) -> JsonSchemaValue:
        return _marker(ANY_MESSAGE)

    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> JsonSchemaValue:
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind == "callable":
            return _marker(
                "a callable cannot be extracted from text; remove the field or use `str`"
            )
        if kind in ("is-instance", "is-subclass"):
            cls = schema.get("cls")
            name = getattr(cls, "__name__", repr(cls))
            return _marker(
                f"the arbitrary class `{name}` has no JSON shape; describe it with a pydantic "
                "model (BaseModel) or use `str`"
            )
        return _marker(f"{error_info} cannot be expressed as JSON; use a nested model or `str`")

    # -- fields read from nested paths ---------------------------------------------------------

    def model_field_schema(self, schema: cs.ModelField) -> JsonSchemaValue:
        return self._unpathed(schema) or super().model_field_schema(schema)

    def dataclass_field_schema(self, schema: cs.DataclassField) -> JsonSchemaValue:
        return self._unpathed(schema) or super().dataclass_field_schema(schema)

    def _unpathed(self, field: Any) -> JsonSchemaValue | None:
        """A marker for a field only an ``AliasPath`` can fill (the wire has no such key)."""
        alias = field.get("validation_alias")
        if isinstance(alias, list) and wire_alias(field) is None:
            config = self._config  # private in pydantic; the names changed in 2.11
            by_name = getattr(config, "validate_by_name", getattr(config, "populate_by_name", 0))
            if not by_name:
                return _marker(
                    "an `AliasPath` alias reads a nested value the strict schema cannot place; "
                    "use a plain alias (or `AliasChoices` with a plain name first)"
                )
        return None

    # -- dicts: a list of {key, value} objects ------------------------------------------------

    def dict_schema(self, schema: cs.DictSchema) -> JsonSchemaValue:
        return self._key_value_list(schema)

    def ordered_dict_schema(self, schema: Any) -> JsonSchemaValue:
        return self._key_value_list(schema)

    def frozendict_schema(self, schema: Any) -> JsonSchemaValue:
        return self._key_value_list(schema)

    def counter_schema(self, schema: Any) -> JsonSchemaValue:
        return self._key_value_list(schema)

    def _key_value_list(self, schema: Any) -> JsonSchemaValue:
        keys = schema.get("keys_schema")
        values = schema.get("values_schema")
        if (keys is None or keys.get("type") == "any") and (
            values is None or values.get("type") == "any"
        ):
            return _marker(
                "a `dict` without key and value types has no shape a strict schema can express; "
                "use `dict[str, X]` or a nested model"
            )
        key_js = self.generate_inner(keys) if keys is not None else {"type": "string"}
        value_js = self.generate_inner(values) if values is not None else _marker(ANY_MESSAGE)
        if UNSUPPORTED not in key_js and not self._is_scalar(key_js, depth=0):
            key_js = _marker(
                "dict keys must be strings, numbers, enums or literals; use a list of models "
                "for anything else"
            )
        entry = {
            "type": "object",
            "properties": {"key": key_js, "value": value_js},
            "required": ["key", "value"],
            "additionalProperties": False,
        }
        js: JsonSchemaValue = {"type": "array", "items": entry}
        if "min_length" in schema:
            js["minItems"] = schema["min_length"]
        if "max_length" in schema:
            js["maxItems"] = schema["max_length"]
        _add(js, NOTES, "a list of key/value entries with unique keys")
        _add(
            js,
            LOWERED,
            (
                "dict→list",
                "sent as a list of {key, value} objects; turned back into a mapping on decode "
                "(a repeated key is a validation error)",
            ),
        )
        return js

    def _is_scalar(self, js: JsonSchemaValue, depth: int) -> bool:
        if depth > 8:
            return False
        if "$ref" in js:
            target = self._resolve(js["$ref"])
            return target is not None and self._is_scalar(target, depth + 1)
        if "enum" in js or "const" in js:
            return True
        branches = js.get("anyOf") or js.get("oneOf")
        if branches:
            return all(self._is_scalar(b, depth + 1) for b in branches)
        types = js.get("type")
        types = types if isinstance(types, list) else [types]
        return bool(types) and all(t in ("string", "integer", "number", "boolean") for t in types)

    def _resolve(self, ref: str) -> JsonSchemaValue | None:
        try:
            return self.get_schema_from_definitions(JsonRef(ref))
        except Exception:  # an unfinished or invalid definition: treat as unknown
            return None

    def _accepts_null(self, js: JsonSchemaValue, depth: int = 0) -> bool:
        if depth > 8 or UNSUPPORTED in js:
            return True  # fails later anyway; don't add noise
        types = js.get("type")
        if types == "null" or (isinstance(types, list) and "null" in types):
            return True
        if "const" in js and js["const"] is None:
            return True
        if "enum" in js and None in js["enum"]:
            return True
        for branch in (*js.get("anyOf", ()), *js.get("oneOf", ())):
            if self._accepts_null(branch, depth + 1):
                return True
        if "$ref" in js:
            target = self._resolve(js["$ref"])
            return target is not None and self._accepts_null(target, depth + 1)
        return False

    # -- defaults: nullable on the wire, restored on decode -----------------------------------

    def default_schema(self, schema: cs.WithDefaultSchema) -> JsonSchemaValue:
        js = self.generate_inner(schema["schema"])
        text = self._default_text(schema)
        if self._accepts_null(js):
            if text is not None and text != "null":
                js = dict(js)
                _add(js, NOTES, f"default: {text}")
                _add(
                    js,
                    LOWERED,
                    (
                        "default→description",
                        f"the default {text} is only described: the field is nullable, so "
                        "null stays null",
                    ),
                )
            return js
        self.null_default_nodes[id(schema)] = schema
        said = f"the default {text}" if text is not None else "the default"
        out: JsonSchemaValue = {"anyOf": [js, {"type": "null"}]}
        _add(out, NOTES, f"null means {said}")
        _add(out, LOWERED, ("default→nullable", f"null is replaced by {said} on decode"))
        return out

    def _default_text(self, schema: cs.WithDefaultSchema) -> str | None:
        default = schema.get("default", NoDefault)
        if default is not NoDefault:
            if isinstance(default, Mapping):  # said in its wire shape, a key/value list
                default = [{"key": k, "value": v} for k, v in default.items()]
            try:
                return _short_json(self.encode_default(default))
            except Exception:  # not JSON-able: describe it without its value
                return None
        factory = schema.get("default_factory")
        if factory in (list, dict, set, frozenset, tuple):
            return "(empty)"
        return None

    # -- TypedDict keys that may be missing: nullable on the wire, null = key left out --------

    def typed_dict_field_schema(self, schema: cs.TypedDictField) -> JsonSchemaValue:
        unpathed = self._unpathed(schema)
        if unpathed is not None:
            return unpathed
        js = self.generate_inner(schema["schema"])
        if schema.get("required", self._td_total):
            return js
        # Every key is required on the wire: encoding sends null for a missing key.
        self.optional_keys[id(schema)] = schema
        if self._accepts_null(js):
            return js  # null already means None here, as for model fields
        self.omit_fields[id(schema)] = schema
        out: JsonSchemaValue = {"anyOf": [js, {"type": "null"}]}
        _add(out, NOTES, "null if absent")
        _add(out, LOWERED, ("not-required→nullable", "null leaves the key out on decode"))
        return out

    _td_total = True

    def typed_dict_schema(self, schema: cs.TypedDictSchema) -> JsonSchemaValue:
        saved = self._td_total
        self._td_total = schema.get("total", True)
        try:
            return super().typed_dict_schema(schema)
        finally:
            self._td_total = saved


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
            notes.append("e.g. " + ", ".join(_short_json(e, 40) for e in shown))
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
                out[key] = s.pop(key)
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
                words = ", ".join(_label(p) for p in positions)
                more = f", then any number of {_label(tail)}" if tail is not None else ""
                notes.append(f"items in this order: {words}{more}")
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
            notes.append("items must be unique")
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
                words = _FORMAT_WORDS.get(fmt, f"format: {fmt}")
                if words:
                    notes.append(words)
                    self.lower(path, "format→description", f"format {fmt!r} described")
                else:
                    self.lower(path, "format→dropped", f"format {fmt!r}: sent as a plain string")
        pattern = s.pop("pattern", None)
        if pattern is not None:
            if any(token in pattern for token in _LOOKAROUND):
                notes.append(f"must match the regular expression {pattern}")
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


def _label(js: JsonSchemaValue | None) -> str:
    if js is None:
        return "?"
    if "$ref" in js:
        return "#" if js["$ref"] == "#" else str(js["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in js:
        return " or ".join(_label(b) for b in js["anyOf"])
    if "const" in js:
        return json.dumps(js["const"])
    if "enum" in js:
        return "one of " + "/".join(json.dumps(v) for v in js["enum"])
    t = js.get("type", "?")
    return "/".join(t) if isinstance(t, list) else str(t)
