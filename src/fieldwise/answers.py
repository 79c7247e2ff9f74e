"""Turning one response into a value, or into the error that says why it is none.

Pure functions: the extraction loop calls them for sync, async and streamed answers alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pydantic_core
from pydantic import ValidationError

from .exceptions import EmptyOutputError, RefusalError, TruncatedOutputError
from .parsing import UnparseableOutput, parse_json
from .prompt import Mode
from .responses import ChatResponse
from .result import Usage
from .schema import CompiledSchema

_JSON_ERROR_TYPES = {"json_invalid", "json_type"}


def answer_text(response: ChatResponse, mode: Mode, usage: Usage) -> str:
    """The answer's JSON text, or the output error that explains why there is none."""
    if response.refusal:
        raise RefusalError(
            f"The model refused: {response.refusal!r}. Rephrase the instructions or "
            "use another model.",
            raw=response.refusal,
            usage=usage,
        )
    text = response.tool_arguments if mode == "tools" else response.content
    if response.finish_reason == "length":
        raise TruncatedOutputError(
            "The answer was cut off at the token limit (finish_reason 'length'). Raise "
            "max_tokens=, shorten the input, or keep reasoning off.",
            raw=text,
            usage=usage,
        )
    if not text or not text.strip():
        hint = (
            " The model wrote its answer into the reasoning field instead: keep "
            "reasoning off (reasoning=None) or choose a non-thinking model."
            if response.reasoning
            else " Try again, or another model/provider."
        )
        raise EmptyOutputError(
            f"The model returned empty content (finish_reason {response.finish_reason!r})." + hint,
            raw=response.reasoning or "",
            usage=usage,
        )
    return text


def decode_answer(compiled: CompiledSchema[Any], text: str) -> tuple[Any, list[str], list[Any]]:
    """``(value, repairs, errors)``; ``errors`` is empty on success."""
    try:
        return compiled.decode(text), [], []
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        if not any(e["type"] in _JSON_ERROR_TYPES and not e["loc"] for e in errors):
            return None, [], list(errors)
    try:
        obj, repairs = parse_json(text)
    except UnparseableOutput as exc:
        return None, [], [{"type": "json_invalid", "loc": (), "msg": str(exc)}]
    try:
        return compiled.decode_python(obj), repairs, []
    except ValidationError as exc:
        return None, repairs, list(exc.errors(include_url=False, include_context=False))
    except pydantic_core.PydanticSerializationError:  # a lone surrogate: not text at all
        message = (
            "the JSON holds a lone UTF-16 surrogate escape (such as \\ud83d, half of an "
            "emoji), which is not a character; write each character whole"
        )
        return None, repairs, [{"type": "json_invalid", "loc": (), "msg": message}]


def tool_call_id(response: ChatResponse) -> str:
    """The id a re-ask answers the model's tool call with: the server's, else one made
    from the answer (nine letters and digits, Mistral's format, the strictest known; the
    same for the same answer), so that plain and streamed answers re-ask alike."""
    if response.tool_call_id:
        return response.tool_call_id
    seed = f"{response.id or ''}\0{response.tool_arguments or ''}"
    return hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:9]


def summarise_errors(errors: Sequence[Any], limit: int = 3) -> str:
    parts = []
    for error in list(errors)[:limit]:
        loc = ".".join(str(p) for p in error.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {error.get('msg', '')}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more
