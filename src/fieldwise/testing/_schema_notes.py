"""Reading back the constraints fieldwise's compiler wrote into a schema's descriptions.

Why it exists: the strict schema subset has no keyword for string lengths, tuple positions,
unique items, look-around patterns or formats outside the subset, so ``fieldwise._lowering``
words them into the field's description instead. The sampler must still honour them for its
answer to validate against the user's own types, so this module parses those words back into
keyword-like notes. Separate from ``_sample`` because it mirrors the compiler's wording (and
must change with it), not the JSON-schema walk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from .._description_words import (
    FORMAT_WORDS,
    ITEMS_IN_ORDER,
    MATCHES_PATTERN,
    UNIQUE_ITEMS,
    UNIQUE_KEYS,
    type_label,
)

# Example values for formats outside the strict subset; read by the compiler's words for them.
_EXAMPLES = {
    "uri": "https://example.com/",
    "multi-host-uri": "https://example.com/",
    "ipvanyaddress": "192.0.2.1",
    "ipvanyinterface": "192.0.2.1/24",
    "ipvanynetwork": "192.0.2.0/24",
    "ipv4interface": "192.0.2.1/24",
    "ipv6interface": "2001:db8::1/64",
    "ipv4network": "192.0.2.0/24",
    "ipv6network": "2001:db8::/32",
    "color": "red",
}
_FORMAT_WORDS = {
    words: value
    for name, value in _EXAMPLES.items()
    if (words := FORMAT_WORDS.get(name)) is not None
}
_LENGTH_WORDS = re.compile(r"\b(?:(exactly|at least|at most) (\d+)|(\d+) to (\d+)) characters?\b")
_UNIQUE_WORDS = (UNIQUE_ITEMS, UNIQUE_KEYS)


def _notes(description: Any) -> Mapping[str, Any]:
    """The constraints fieldwise's compiler wrote into a description (see ``_lowering``)."""
    if not isinstance(description, str) or not description.endswith(")"):
        return {}
    return _read_notes(description)


@functools.lru_cache(maxsize=256)
def _read_notes(description: str) -> Mapping[str, Any]:
    notes: dict[str, Any] = {}
    length = _LENGTH_WORDS.search(description)
    if length is not None:
        word, n, low, high = length.groups()
        if word is None:
            notes.update(minLength=int(low), maxLength=int(high))
        elif word == "exactly":
            notes.update(minLength=int(n), maxLength=int(n))
        else:
            notes["minLength" if word == "at least" else "maxLength"] = int(n)
    if any(words in description for words in _UNIQUE_WORDS):
        notes["uniqueItems"] = True
    if ITEMS_IN_ORDER in description:
        notes[ITEMS_IN_ORDER] = description.split(ITEMS_IN_ORDER, 1)[1]
    if MATCHES_PATTERN in description:
        # the last note but for "a string holding ...", then the closing parenthesis
        pattern = description.split(MATCHES_PATTERN, 1)[1][:-1]
        pattern = pattern.rsplit("; a string holding ", 1)[0]
        try:
            re.compile(pattern)
            notes["pattern"] = pattern
        except re.error:
            pass
    for words, value in _FORMAT_WORDS.items():
        if words in description:
            notes["format"] = value
            break
    return notes


def _positions(words: str, items: Any) -> list[Any]:
    """The item schema of each position of a tuple lowered to ``items: {anyOf: [...]}``,
    from the description's ``items in this order: integer, string`` (as far as it reads)."""
    branches = items.get("anyOf") if isinstance(items, Mapping) else None
    if not isinstance(branches, list):
        return []
    labels = sorted(((type_label(b), b) for b in branches), key=lambda lb: -len(lb[0]))
    out: list[Any] = []
    at = 0
    while True:
        first = None
        while True:  # a position is "A" or "A or B or ...": its first label's branch
            found = next(((label, b) for label, b in labels if words.startswith(label, at)), None)
            if found is None:
                return out
            first = found[1] if first is None else first
            at += len(found[0])
            if not words.startswith(" or ", at):
                break
            at += len(" or ")
        out.append(first)
        if not words.startswith(", ", at) or words.startswith(", then any number of", at):
            return out
        at += len(", ")
