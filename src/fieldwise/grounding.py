"""Grounding: does each extracted string occur in the input, and where?

Small models invent plausible values (a street that is not in the letter). A string
field's value is *grounded* when it occurs in the input, ignoring case and runs of
whitespace; its evidence is the ``(start, end)`` character span in the input. Literal
and Enum fields are categories, not quotes, so they are not checked. Only strings are
checked: numbers and dates are often written differently from how the input says them.
"""

from __future__ import annotations

import enum
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def _is_category(annotation: Any) -> bool:
    """Literal/Enum (possibly inside Optional/Annotated): values that need not be quoted."""
    origin = get_origin(annotation)
    if origin is Literal:
        return True
    if origin is Annotated:
        return _is_category(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_category(a) for a in args)
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def _pattern(value: str) -> re.Pattern[str] | None:
    words = value.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def locate(value: str, text: str) -> tuple[int, int] | None:
    """The span of ``value`` in ``text`` (case- and whitespace-insensitive), or None."""
    pattern = _pattern(value)
    if pattern is None:
        return None
    found = pattern.search(text)
    return (found.start(), found.end()) if found else None


def _item_annotation(annotation: Any) -> Any:
    """The element type of ``list[X]``/``set[X]``/``tuple[X, ...]``/``dict[K, X]`` (through
    Optional/Annotated), so a ``list[Literal[...]]`` is known to hold categories."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _item_annotation(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _item_annotation(args[0]) if len(args) == 1 else None
    args = [a for a in get_args(annotation) if a is not Ellipsis]
    return args[-1] if args else None


def _walk(value: Any, path: str, annotation: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            child = getattr(value, name)
            if child is None or _is_category(info.annotation):
                continue
            _walk(child, f"{path}.{name}" if path else name, info.annotation, out)
    elif isinstance(value, str) and not isinstance(value, enum.Enum):
        if not _is_category(annotation):
            out.append((path, value))
    elif isinstance(value, (list, tuple, set, frozenset)):
        item = _item_annotation(annotation)
        for i, element in enumerate(value):
            _walk(element, f"{path}[{i}]", item, out)
    elif isinstance(value, dict):
        item = _item_annotation(annotation)
        for key, element in value.items():
            _walk(element, f"{path}[{key}]", item, out)


def check_grounding(value: Any, text: str) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """``(evidence, ungrounded)``: spans of the strings found, and the strings not found."""
    strings: list[tuple[str, str]] = []
    _walk(value, "", type(value) if isinstance(value, BaseModel) else None, strings)
    evidence: dict[str, tuple[int, int]] = {}
    ungrounded: dict[str, str] = {}
    for path, string in strings:
        if not string.strip():
            continue
        span = locate(string, text)
        if span is None:
            ungrounded[path or "value"] = string
        else:
            evidence[path or "value"] = span
    return evidence, ungrounded


def grounding_reask(ungrounded: dict[str, str]) -> str:
    listed = "; ".join(f"{path}: {value!r}" for path, value in list(ungrounded.items())[:10])
    return (
        f"These values do not occur in the input: {listed}. Copy each value exactly as it "
        "is written in the input, or use null where the input does not give one. Answer "
        "again with the complete JSON object."
    )
