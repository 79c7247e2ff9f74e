"""Model output text → Python object, repairing near-JSON and saying what was repaired.

Strict JSON is tried first (the common case, and the fast one); only text that fails is
handed to ``json_repair``, whose log becomes ``Result.repairs``.
"""

from __future__ import annotations

import json
from typing import Any

import json_repair


class UnparseableOutput(ValueError):
    """The text holds no JSON value, even after repair."""


def parse_json(text: str) -> tuple[Any, list[str]]:
    """Return ``(value, repairs)``; ``repairs`` is empty when the text was valid JSON."""
    try:
        return json.loads(text), []
    except ValueError:
        pass
    repaired, log = json_repair.repair_json(text, return_objects=True, logging=True)
    if repaired in ("", None) or not isinstance(repaired, (dict, list)):
        raise UnparseableOutput(f"no JSON object found in the answer: {text[:120]!r}")
    repairs: list[str] = []
    for entry in log:
        note = str(entry.get("text", "")) if isinstance(entry, dict) else str(entry)
        if note and note not in repairs:
            repairs.append(note)
    return repaired, repairs or ["repaired near-JSON"]
