"""Size caps, read from environment variables on every load.

Documents come from users and the web, so every loader bounds what it reads before it
parses: the file's bytes, what a zip unpacks to, and the text it produces. The caps are
read at each load (not import), so a server can change them without a restart and
tests can set them per test. Values are integers, optionally with a binary ``K``, ``M``
or ``G`` suffix (``FIELDWISE_MAX_DOCUMENT_BYTES=20M``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from fieldwise.exceptions import ConfigurationError

from .errors import DocumentTooLargeError

__all__ = ["ENV_VARS", "Limits", "check_chars", "check_size", "human_size"]

_MIB = 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1024, "m": _MIB, "g": 1024 * _MIB}

#: field name -> environment variable that overrides it.
ENV_VARS = {
    "max_document_bytes": "FIELDWISE_MAX_DOCUMENT_BYTES",
    "max_document_chars": "FIELDWISE_MAX_DOCUMENT_CHARS",
    "max_unpacked_bytes": "FIELDWISE_MAX_UNPACKED_BYTES",
    "max_compression_ratio": "FIELDWISE_MAX_COMPRESSION_RATIO",
    "max_zip_entries": "FIELDWISE_MAX_ZIP_ENTRIES",
}


@dataclass(frozen=True)
class Limits:
    """The caps every loader applies.

    - ``max_document_bytes``: the file itself (all formats).
    - ``max_document_chars``: the extracted text; far beyond any model's context, it
      only stops a small file that expands into a huge text.
    - ``max_unpacked_bytes``: the total a DOCX (a zip) declares it unpacks to.
    - ``max_compression_ratio``: unpacked / packed size, for the archive and for any
      member over 1 MiB unpacked. Real DOCX XML packs 5-30x; zip bombs 1000x and more.
    - ``max_zip_entries``: members in a DOCX; Word writes a few dozen.
    """

    max_document_bytes: int = 100 * _MIB
    max_document_chars: int = 20_000_000
    max_unpacked_bytes: int = 256 * _MIB
    max_compression_ratio: int = 200
    max_zip_entries: int = 10_000

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, each overridden by its environment variable when set."""
        values: dict[str, int] = {}
        for field_name, variable in ENV_VARS.items():
            raw = os.environ.get(variable)
            if raw is None or not raw.strip():
                continue
            match = _SIZE.match(raw)
            if match is None or int(match.group(1)) <= 0:
                raise ConfigurationError(
                    f"{variable}={raw!r} is not a positive size; use an integer, "
                    "optionally with K, M or G (for example 50M)."
                )
            values[field_name] = int(match.group(1)) * _FACTORS[match.group(2).lower()]
        return cls(**values)


def human_size(size: int) -> str:
    """A byte count as people read it (``"3.0 MiB"``), for error messages."""
    for unit, factor in (("GiB", 1024 * _MIB), ("MiB", _MIB), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def check_size(data: bytes, name: str, limits: Limits) -> None:
    """Refuse a file over ``max_document_bytes`` before any parser touches it."""
    check_file_size(len(data), name, limits)


def check_file_size(size: int, name: str, limits: Limits | None = None) -> None:
    """``check_size`` for a file of ``size`` bytes not read yet (``Document.open`` asks
    before reading it); ``limits`` from the environment when not given."""
    limits = limits or Limits.from_env()
    if size > limits.max_document_bytes:
        raise DocumentTooLargeError(
            f"the file is {human_size(size)}, over the "
            f"{human_size(limits.max_document_bytes)} cap; split it, or raise "
            f"{ENV_VARS['max_document_bytes']}.",
            name=name,
        )


def check_chars(length: int, name: str, limits: Limits) -> None:
    """Refuse extracted text over ``max_document_chars`` (checked as text accumulates)."""
    if length > limits.max_document_chars:
        raise DocumentTooLargeError(
            f"its text is over the {limits.max_document_chars:,}-character cap; split the "
            f"file, or raise {ENV_VARS['max_document_chars']}.",
            name=name,
        )
