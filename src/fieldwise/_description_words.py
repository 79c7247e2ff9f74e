"""The words fieldwise's compiler writes into a description for what the strict schema
subset cannot say (tuple positions, unique items, look-around patterns, formats), which
the fake server's sampler (``fieldwise.testing._schema_notes``) reads back so its default
answers validate against the user's own types.

One module for both sides, so that the wording and its reader change together. It imports
nothing heavy: the fake server's process loads it without pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: formats outside the subset, said in words an LLM follows (None: nothing worth saying)
FORMAT_WORDS: dict[str, str | None] = {
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
ITEMS_IN_ORDER = "items in this order: "
UNIQUE_ITEMS = "items must be unique"
UNIQUE_KEYS = "entries with unique keys"
MATCHES_PATTERN = "must match the regular expression "


def type_label(js: Any) -> str:
    """How a description names a node's type (``string or null``, ``Address``)."""
    if not isinstance(js, Mapping):
        return "?"
    if "$ref" in js:
        return "#" if js["$ref"] == "#" else str(js["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in js:
        return " or ".join(type_label(b) for b in js["anyOf"])
    if "const" in js:
        return json.dumps(js["const"])
    if "enum" in js:
        return "one of " + "/".join(json.dumps(v) for v in js["enum"])
    t = js.get("type", "?")
    return "/".join(t) if isinstance(t, list) else str(t)
