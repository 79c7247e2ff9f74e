"""The messages sent to the model: system prompt, few-shot examples, input, re-asks.

When the endpoint enforces ``response_format``, the schema is not repeated in the prompt
(it costs tokens and the grammar already says it). The re-ask echoes the model's answer
and lists the errors compactly (field path, message, a truncated input; no doc URLs), the
form pydantic-ai found small models fix best.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ValidationError

from .document import Document
from .exceptions import ConfigurationError, UnsupportedInputError
from .schema import CompiledSchema

Mode = Literal["json_schema", "json_object", "tools"]
Input = str | Sequence[dict[str, Any]] | Document

SYSTEM_PROMPT = (
    "You extract structured data from the user's input.\n"
    "- Use only information stated in the input; do not invent values.\n"
    "- Copy names, numbers and dates exactly as written, converting only their format "
    "where the schema requires it.\n"
    "- When the input does not give a value for a field that allows null, use null."
)


def system_message(compiled: CompiledSchema[Any], mode: Mode, instructions: str | None) -> str:
    parts = [SYSTEM_PROMPT]
    if mode == "json_object":
        parts.append(
            "Answer with one JSON object that follows this JSON schema, and nothing else:\n"
            "```json\n" + json.dumps(compiled.schema, separators=(",", ":")) + "\n```"
        )
    elif mode == "tools":
        parts.append(f"Call the function `{compiled.name}` with the extracted data.")
    if instructions:
        parts.append(instructions.strip())
    return "\n\n".join(parts)


def user_content(data: Input) -> str | list[dict[str, Any]]:
    """The user message content: text, a Document's text, or OpenAI content parts."""
    if isinstance(data, str):
        return data
    if isinstance(data, Document):
        return data.text
    if not isinstance(data, (list, tuple)) or not all(isinstance(p, dict) for p in data):
        raise UnsupportedInputError(
            f"Cannot extract from a {type(data).__name__}: pass a str, a fieldwise.Document "
            "(Document.open(path) for files), or a list of OpenAI content parts."
        )
    parts = [dict(part) for part in data]  # copies: the caller's objects are never mutated
    for part in parts:
        if part.get("type") not in ("text", "image_url", "input_audio", "file"):
            raise UnsupportedInputError(
                f"Unsupported content part type {part.get('type')!r}: use 'text', "
                "'image_url', 'input_audio' or 'file'."
            )
    return parts


def input_text(data: Input) -> str:
    """The text of an input (the text parts of a content list), for grounding checks."""
    if isinstance(data, str):
        return data
    if isinstance(data, Document):
        return data.text
    return "\n".join(str(p.get("text", "")) for p in data if p.get("type") == "text")


def build_messages(
    data: Input,
    compiled: CompiledSchema[Any],
    *,
    mode: Mode,
    instructions: str | None,
    examples: Sequence[tuple[str, Any]] | None,
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_message(compiled, mode, instructions)}
    ]
    for index, (example_input, example_output) in enumerate(examples or ()):
        messages.append({"role": "user", "content": user_content(example_input)})
        messages.append(
            {"role": "assistant", "content": _example_answer(compiled, example_output, index)}
        )
    messages.append({"role": "user", "content": user_content(data)})
    return messages


def _example_answer(compiled: CompiledSchema[Any], output: Any, index: int) -> str:
    """An example's answer in wire form.

    A dict (or other plain value) is what the user would pass to the model's constructor,
    so it is validated in the Python shape (a ``dict`` field as a mapping), then encoded.
    """
    try:
        if not _instance_of(output, compiled.target):
            output = compiled.from_python(output)
        return compiled.encode(output)
    except (ValidationError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"examples[{index}]: the output is not a valid {compiled.name}: {exc}"
        ) from None


def _instance_of(value: Any, target: Any) -> bool:
    """``isinstance`` for any target type; a TypedDict (and other typing classes) refuses
    instance checks, and its examples are plain dicts anyway."""
    try:
        return isinstance(target, type) and isinstance(value, target)
    except TypeError:
        return False


def _short(value: Any, limit: int = 80) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) <= limit else text[:limit] + "…"
    return value


def compact_errors(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's error dicts, cut to what helps a model fix them."""
    out = []
    for error in errors:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        item: dict[str, Any] = {"loc": loc or "(root)", "msg": error.get("msg", "")}
        if "input" in error and error.get("type") != "missing":
            item["input"] = _short(error["input"])
        out.append(item)
    return out


def reask_text(errors: Sequence[dict[str, Any]]) -> str:
    return (
        "Your answer did not validate:\n"
        + json.dumps(compact_errors(errors), ensure_ascii=False, default=str)
        + "\nFix the errors and answer again with the complete JSON object."
    )


def reask_messages(
    mode: Mode,
    answer: str,
    feedback: str,
    *,
    tool_name: str,
    tool_call_id: str | None,
) -> list[dict[str, Any]]:
    """The assistant's answer echoed back, then ``feedback`` (what to fix)."""
    if mode == "tools" and tool_call_id:
        function = {"name": tool_name, "arguments": answer}
        call = {"id": tool_call_id, "type": "function", "function": function}
        return [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": tool_call_id, "content": feedback},
        ]
    return [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": feedback},
    ]


def build_body(
    compiled: CompiledSchema[Any],
    messages: list[dict[str, Any]],
    *,
    model: str,
    mode: Mode,
    temperature: float,
    seed: int | None,
    top_p: float | None,
    max_tokens: int | None,
) -> dict[str, Any]:
    """The standard chat-completions body; how the answer's shape is enforced by ``mode``:
    a strict ``response_format``, ``json_object`` (schema in the prompt), or one forced
    tool whose parameters are the schema."""
    body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
    if seed is not None:
        body["seed"] = seed
    if top_p is not None:
        body["top_p"] = top_p
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if mode == "json_schema":
        body["response_format"] = compiled.response_format
    elif mode == "json_object":
        body["response_format"] = {"type": "json_object"}
    else:
        function = {"name": compiled.name, "parameters": compiled.schema, "strict": True}
        body["tools"] = [{"type": "function", "function": function}]
        body["tool_choice"] = {"type": "function", "function": {"name": compiled.name}}
    return body
