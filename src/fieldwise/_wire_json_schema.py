"""Pass one of lowering a pydantic type: its JSON schema, with the shapes fieldwise sends.

``WireJsonSchema`` is pydantic's own JSON-schema generator with a few shapes changed at the
core-schema level, where the type is still known: dict-like types become lists of
``{key, value}`` objects, a non-nullable field with a default becomes nullable (null = "use
the default"; not a discriminated union's tag, which must pick the branch), and what has no
JSON shape becomes a marker instead of an exception so the error can name the field path.
It always describes the validation shape, with the keys validation reads. It records which
defaults (and TypedDict keys) it made nullable, so that ``_wire_validate.py`` rewrites exactly
those nodes for decoding. Pass two, into the strict subset, is ``_lowering.Strictifier``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic.json_schema import GenerateJsonSchema, JsonRef, JsonSchemaValue, NoDefault
from pydantic_core import core_schema as cs

from ._description_words import UNIQUE_KEYS

UNSUPPORTED = "x-fieldwise-unsupported"
NOTES = "x-fieldwise-notes"
LOWERED = "x-fieldwise-lowered"

ANY_MESSAGE = (
    "`Any` (or a bare `object`, `dict` or `list`) has no shape a strict schema can express; "
    "use a nested model, `str`, or a concrete type such as `list[str]` or `dict[str, str]`"
)

DICT_LIKE = frozenset({"dict", "ordered-dict", "frozendict", "counter"})


def _marker(message: str) -> JsonSchemaValue:
    return {UNSUPPORTED: message}


def _add(js: JsonSchemaValue, key: str, item: Any) -> JsonSchemaValue:
    js.setdefault(key, []).append(item)
    return js


def short_json(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reads_aliases(config: Any) -> bool:
    """Whether validation reads fields by their aliases (``validate_by_alias``, default on).

    ``config`` is a core config dict or pydantic's config wrapper; ``validate_by_alias=False``
    (with ``validate_by_name=True``) makes the field name the only key decode accepts.
    """
    if isinstance(config, Mapping):
        return bool(config.get("validate_by_alias", True))
    return bool(getattr(config, "validate_by_alias", True))


def wire_alias(field: Any, config: Any = None) -> str | None:
    """The key a field has on the wire, as pydantic's by-alias validation JSON schema names it.

    None means the field's name; so it is when the config turns validation by alias off.
    """
    if config is not None and not reads_aliases(config):
        return None
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

    def __init__(self, tag_fields: Collection[int] = ()) -> None:
        super().__init__(by_alias=True)
        # Ids of the defaults / TypedDict fields of discriminator tags (``_wire.tag_fields``):
        # pydantic needs a tag to pick the branch, so it stays required and non-null.
        self.tag_fields = frozenset(tag_fields)
        # id -> node; holding the node keeps the id valid for the rewrites in _wire_validate.py
        # and _wire_serialize.py.
        self.null_default_nodes: dict[int, Any] = {}
        self.omit_fields: dict[int, Any] = {}
        self.optional_keys: dict[int, Any] = {}

    # -- always the validation shape, named the way validation reads it ----------------------

    @property
    def mode(self) -> Literal["validation"]:
        """Always validation: the wire is what decode accepts, whatever the model's
        ``json_schema_mode_override`` asks of pydantic's own schema."""
        return "validation"

    @property
    def by_alias(self) -> bool:
        """Properties are named by alias unless the model at hand validates by name only."""
        return reads_aliases(self._config)

    @by_alias.setter
    def by_alias(self, value: bool) -> None:
        pass  # set by pydantic's __init__; the config decides instead

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
        if isinstance(alias, list) and reads_aliases(self._config) and wire_alias(field) is None:
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
        _add(js, NOTES, f"a list of key/value {UNIQUE_KEYS}")
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
        if id(schema) in self.tag_fields:
            return js  # a discriminator tag: null could not pick a branch
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
        # the report is the user's: the default as decoding gives it, not its wire shape
        python = self._default_text(schema, wire=False)
        restored = f"the default {python}" if python is not None else "the default"
        _add(out, LOWERED, ("default→nullable", f"null is replaced by {restored} on decode"))
        return out

    def _default_text(self, schema: cs.WithDefaultSchema, *, wire: bool = True) -> str | None:
        default = schema.get("default", NoDefault)
        if default is not NoDefault:
            if wire and isinstance(default, Mapping):  # for the model: a key/value list
                default = [{"key": k, "value": v} for k, v in default.items()]
            try:
                return short_json(self.encode_default(default))
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
        if schema.get("required", self._td_total) or id(schema) in self.tag_fields:
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
