"""Compile a Python type once into a strict ``response_format`` and a fast decoder/encoder.

``compile_schema(Invoice)`` returns a :class:`CompiledSchema`: the strict JSON schema to send,
a report of everything that had to be lowered to fit the strict subset, and ``decode`` /
``encode`` between the wire JSON and the user's objects. Results are cached per type.

What the wire looks like, and why:

- The root is always an object. A type that is not a pydantic model (``list[Invoice]``,
  ``int``, ``Invoice | None``, a RootModel, TypedDict or dataclass) is sent as
  ``{"value": ...}`` and unwrapped on decode (``wrapped`` is True).
- Every property is required; optional means nullable. A field with a default that cannot
  be null becomes nullable on the wire, and null there means "use the default" (pydantic
  applies the default or default factory on decode; the field still counts as set in
  ``model_fields_set``, since the model did send it, except in a model whose own
  ``mode="before"``/``"wrap"`` validator must see the key left out instead). A field that
  is already nullable keeps null as a real ``None``: its non-null default is only mentioned
  in the description, so the model can still answer null, and can answer the default by
  writing it. A discriminated union's tag stays non-null even with a default: pydantic
  needs it to pick the branch.
- ``dict[K, V]`` (K a string, number, enum or literal type) is a list of ``{key, value}``
  objects, turned back into a mapping on decode; a repeated key is a validation error.
- A TypedDict key that may be missing is required and nullable on the wire: null leaves it
  out (or is ``None``, when its type allows None); encoding sends null for a missing key.
- Constraints the subset lacks (string lengths, unique items, unknown formats, look-around
  patterns, tuple positions) are described in the field's description, and still enforced
  on decode: decoding always validates with the user's own types.
- Discriminated unions are sent as ``anyOf``; ``extra="allow"`` models as closed objects.
- The schema is the validation shape, named as validation reads it (field names under
  ``validate_by_alias=False``), whatever ``json_schema_mode_override`` says. A ``Json[...]``
  field is a string holding pydantic's own JSON: nothing inside it is lowered.

Each of these is listed in ``report`` with the field path where it happened. What has no
JSON shape (``Any``, callables, arbitrary classes, free-form objects) raises
:class:`~fieldwise.exceptions.SchemaError` at compile time, naming the field path.

The user's code sees pydantic's shapes, never the wire's: a validator that reads the raw
input (``mode="before"``/``"wrap"``/``"plain"``) gets a mapping for a ``dict`` field and no
key for a default sent as null, and examples are written as for the model's constructor.
``encode`` writes the wire shape: the user's field, model and annotated serializers describe
another output, so they run only for a custom type that cannot serialize itself, or behind
a validator that reads the raw input (as its inverse).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import threading
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin, overload

import pydantic_core
from pydantic import (
    BaseModel,
    PydanticUndefinedAnnotation,
    PydanticUserError,
    RootModel,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import SchemaSerializer, SchemaValidator
from pydantic_core import core_schema as cs

from ._lowering import Strictifier
from ._wire import tag_fields
from ._wire_json_schema import WireJsonSchema
from ._wire_serialize import serialization_schema
from ._wire_validate import validation_schema
from .exceptions import SchemaError
from .strict_subset import _Checker

__all__ = ["COMPILER_VERSION", "CompiledSchema", "Lowering", "compile_schema"]

#: Part of every fingerprint: bump it when the compiler's output for a type may change, so
#: caches keyed on fingerprints stop matching results decoded under the old rules.
COMPILER_VERSION = "2"

T = TypeVar("T")

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_-]")
_NAME_MAX = 64


@dataclass(frozen=True, slots=True)
class Lowering:
    """One thing the strict subset could not say as-is, and what was done instead.

    ``path`` is the wire path (``"items[].sku"``; ``""`` is the root; a dict's entries are
    ``"prices[].key"`` / ``"prices[].value"``), ``detail`` a sentence for people, and
    ``kind`` one of these labels:

    ``wrapped``, ``dict→list``, ``default→nullable``, ``default→description``,
    ``not-required→nullable``, ``tuple→array``, ``discriminator→anyOf``, ``oneOf→anyOf``,
    ``extra→closed``, ``min_length→description``, ``max_length→description``,
    ``unique_items→description``, ``min_properties→description``,
    ``max_properties→description``, ``format→description``, ``format→dropped``,
    ``pattern→description``, ``content→description``, ``examples→description``,
    ``keyword→dropped``, ``limit`` (the schema exceeds a strict endpoint's size limits).
    """

    path: str
    kind: str
    detail: str


class CompiledSchema(Generic[T]):
    """A type compiled for strict structured output. Build it with :func:`compile_schema`.

    The dicts it holds (``schema``, ``response_format``) are shared by every caller of the
    cached compile: copy them before changing them.
    """

    __slots__ = (
        "_adapter",
        "_decode",
        "_encode",
        "fingerprint",
        "name",
        "report",
        "response_format",
        "schema",
        "target",
        "wrapped",
    )

    target: Any
    name: str
    schema: dict[str, Any]
    response_format: dict[str, Any]
    report: tuple[Lowering, ...]
    fingerprint: str
    wrapped: bool

    def __init__(
        self,
        *,
        target: Any,
        name: str,
        schema: dict[str, Any],
        report: tuple[Lowering, ...],
        wrapped: bool,
        decode: Callable[[str | bytes], T],
        encode: Callable[[T], str],
    ) -> None:
        self.target = target
        self.name = name
        self.schema = schema
        self.report = report
        self.wrapped = wrapped
        self.response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
        canonical = json.dumps(
            {"compiler": COMPILER_VERSION, "name": name, "schema": schema},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        self.fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        self._decode = decode
        self._encode = encode
        self._adapter: TypeAdapter[Any] | None = None

    def decode(self, json_text: str | bytes) -> T:
        """Validate the model's JSON answer into ``T``; raises ``pydantic.ValidationError``."""
        return self._decode(json_text)

    def decode_python(self, obj: Any) -> T:
        """Validate an already-parsed (e.g. repaired) answer with exactly ``decode``'s rules.

        Going through JSON keeps JSON-mode semantics (strict models accept ISO dates and enum
        values), which Python-mode validation of parsed data would not.
        """
        return self._decode(pydantic_core.to_json(obj))

    def from_python(self, obj: Any) -> T:
        """Validate a value written in the Python shape (a hand-written example) into ``T``.

        Unlike ``decode_python``, which takes the wire shape, a ``dict`` field here is a
        mapping and a defaulted field may be left out. Python-mode validation comes first;
        a value it refuses is tried in JSON mode too, so ISO date strings still suit strict
        models. Raises ``pydantic.ValidationError`` (the Python-mode errors).
        """
        if self._adapter is None:
            self._adapter = TypeAdapter(self.target)
        try:
            value: T = self._adapter.validate_python(obj)
            return value
        except ValidationError as first:
            try:
                value = self._adapter.validate_json(pydantic_core.to_json(obj))
                return value
            except (ValidationError, pydantic_core.PydanticSerializationError):
                raise first from None

    def encode(self, instance: T) -> str:
        """The wire JSON for ``instance``: the shape ``schema`` describes (few-shot examples)."""
        return self._encode(instance)

    def __repr__(self) -> str:
        return f"CompiledSchema({self.name}, lowered={len(self.report)})"


# -- the cache -------------------------------------------------------------------------------

_CACHE_MAX = 1024
_cache: dict[tuple[Any, Any], CompiledSchema[Any]] = {}
_unhashable: list[tuple[tuple[Any, Any], CompiledSchema[Any]]] = []
_lock = threading.Lock()


def _cache_key(tp: Any) -> tuple[Any, Any]:
    """``tp`` with the order of its arguments, which typing's ``==`` ignores.

    ``Union[A, B] == Union[B, A]`` (and ``Literal`` compares as a set), but the order is the
    order of ``anyOf``/``enum`` on the wire and decides pydantic's smart-union tie-breaks.
    """
    return (tp, _argument_order(tp))


def _argument_order(tp: Any) -> tuple[Any, ...]:
    return tuple((arg, _argument_order(arg)) for arg in get_args(tp))


def _lookup(key: tuple[Any, Any]) -> CompiledSchema[Any] | None:
    try:
        return _cache.get(key)
    except TypeError:  # typing objects holding unhashable metadata
        for stored, compiled in _unhashable:
            if stored is key or _safe_eq(stored, key):
                return compiled
        return None


def _safe_eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _store(key: tuple[Any, Any], compiled: CompiledSchema[Any]) -> None:
    try:
        if len(_cache) >= _CACHE_MAX:
            del _cache[next(iter(_cache))]
        _cache[key] = compiled
    except TypeError:
        if len(_unhashable) >= _CACHE_MAX:
            del _unhashable[0]
        _unhashable.append((key, compiled))


@overload
def compile_schema(tp: type[T]) -> CompiledSchema[T]: ...
@overload
def compile_schema(tp: Any) -> CompiledSchema[Any]: ...
def compile_schema(tp: Any) -> CompiledSchema[Any]:
    """Compile ``tp`` (once; later calls return the same object) for strict structured output.

    Raises :class:`~fieldwise.exceptions.SchemaError` when ``tp`` has no strict JSON shape.
    """
    key = _cache_key(tp)
    hit = _lookup(key)
    if hit is not None:
        return hit
    with _lock:
        hit = _lookup(key)
        if hit is None:
            hit = _compile(tp)
            _store(key, hit)
    return hit


# -- compiling -------------------------------------------------------------------------------


def _compile(tp: Any) -> CompiledSchema[Any]:
    if inspect.isroutine(tp) or isinstance(tp, functools.partial):
        # pydantic would validate a function's arguments and *call* it with what the model
        # wrote: a typo (mod:process for mod:Process) must not run user code on model output
        raise SchemaError(
            f"{getattr(tp, '__qualname__', tp)!r} is a function, not a type: pass a pydantic "
            "model class (or a type such as list[Invoice])."
        )
    name = _schema_name(tp)
    model = _plain_model(tp)
    if model is not None:
        core: dict[str, Any] = model.__pydantic_core_schema__  # type: ignore[assignment]
    else:
        core = _wrapper_schema(tp, name)

    generator = _Generator(tag_fields(core))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = generator.generate(core, mode="validation")
    strictifier = Strictifier(raw)
    schema = strictifier.run()
    report = [Lowering(*entry) for entry in strictifier.report]
    if model is None:
        label = _type_label(tp)
        report.insert(
            0, Lowering("", "wrapped", f'{label} is sent as {{"value": ...}} and unwrapped')
        )
    checker = _Checker(schema)
    checker.run()
    if checker.problems:  # a compiler bug, not a user error: say so plainly
        raise SchemaError(
            "internal error: the compiled schema is not strict: " + "; ".join(checker.problems)
        )
    report.extend(Lowering("", "limit", text) for text in checker.limits)

    defaults = set(generator.null_default_nodes)
    omit = set(generator.omit_fields)
    val_core = validation_schema(core, defaults, omit)
    ser_core = serialization_schema(core, set(generator.optional_keys))
    decode, encode = _codecs(model, core, val_core, ser_core, name)
    return CompiledSchema(
        target=tp,
        name=name,
        schema=schema,
        report=tuple(report),
        wrapped=model is None,
        decode=decode,
        encode=encode,
    )


class _Generator(WireJsonSchema):
    def render_warning_message(self, kind: Any, detail: str) -> str | None:
        return None  # pydantic's warnings are about keywords the strict pass drops anyway


def _plain_model(tp: Any) -> type[BaseModel] | None:
    """``tp`` when it is a model whose own JSON shape is an object; else None (wrap it)."""
    if not isinstance(tp, type) or not issubclass(tp, BaseModel) or issubclass(tp, RootModel):
        return None
    if not tp.__pydantic_complete__:
        try:
            tp.model_rebuild(raise_errors=True)
        except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
            raise SchemaError(
                f"`{tp.__name__}` is not fully defined ({exc}); define the types it refers "
                f"to, then call `{tp.__name__}.model_rebuild()`"
            ) from exc
    return tp


def _wrapper_schema(tp: Any, name: str) -> dict[str, Any]:
    try:
        inner: dict[str, Any] = dict(TypeAdapter(tp).core_schema)
    except (PydanticUserError, PydanticUndefinedAnnotation, TypeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaError(
            f"cannot build a schema for {tp!r} ({reason}); use a pydantic model or a standard "
            "type such as `list[Model]`, `int` or `str`"
        ) from exc
    definitions = None
    if inner.get("type") == "definitions":
        definitions = inner["definitions"]
        inner = inner["schema"]
    wrapper = cs.typed_dict_schema(
        {"value": cs.typed_dict_field(inner, required=True)}, config={"title": name}
    )
    if definitions is not None:
        return dict(cs.definitions_schema(wrapper, definitions))
    return dict(wrapper)


def _root_config(core: dict[str, Any]) -> Any:
    node = core
    while True:
        kind = node.get("type")
        if kind == "model":
            return node.get("config")
        if kind in ("definitions", "function-before", "function-after", "function-wrap"):
            node = node["schema"]
            continue
        return None


def _codecs(
    model: type[BaseModel] | None,
    core: dict[str, Any],
    val_core: dict[str, Any] | None,
    ser_core: dict[str, Any] | None,
    name: str,
) -> tuple[Callable[[str | bytes], Any], Callable[[Any], str]]:
    """Build decode/encode once; the common case is pydantic's own validator, untouched."""
    if model is not None:
        config = _root_config(core)
        if val_core is None:
            decode: Callable[[str | bytes], Any] = model.__pydantic_validator__.validate_json
        else:
            decode = SchemaValidator(val_core, config).validate_json
        serializer = (
            model.__pydantic_serializer__
            if ser_core is None
            else SchemaSerializer(ser_core, config)
        )

        def encode(instance: Any) -> str:
            return serializer.to_json(
                instance, by_alias=True, round_trip=True, warnings="error"
            ).decode()

        return decode, encode

    validator = SchemaValidator(val_core or core)
    wrapped_serializer = SchemaSerializer(ser_core or core)
    validate_json = validator.validate_json

    def decode_wrapped(json_text: str | bytes) -> Any:
        return validate_json(json_text)["value"]

    def encode_wrapped(value: Any) -> str:
        return wrapped_serializer.to_json(
            {"value": value}, by_alias=True, round_trip=True, warnings="error"
        ).decode()

    return decode_wrapped, encode_wrapped


# -- names -----------------------------------------------------------------------------------


def _type_label(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "None"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _type_label(args[0])
    if origin is Literal:
        return "Literal"
    if origin is Union or origin is types.UnionType:
        return "_or_".join(_type_label(a) for a in args)
    if origin is not None:
        base = getattr(origin, "__name__", None) or str(origin)
        return f"{base}[{','.join(_type_label(a) for a in args)}]"
    label = getattr(tp, "__name__", None)
    return label if isinstance(label, str) else type(tp).__name__


def _schema_name(tp: Any) -> str:
    """A ``json_schema.name`` endpoints accept (``^[a-zA-Z0-9_-]{1,64}$``), stable per type."""
    label = _type_label(tp)
    name = _NAME_BAD.sub("_", label) or "schema"
    if len(name) > _NAME_MAX:
        digest = hashlib.sha256(label.encode()).hexdigest()[:8]
        name = f"{name[: _NAME_MAX - 9]}_{digest}"
    return name
