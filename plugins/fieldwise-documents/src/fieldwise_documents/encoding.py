"""Bytes to text without guessing wildly and without ever crashing.

Order of evidence, strongest first: a byte-order mark; an encoding the file declares
(HTML ``<meta charset>``, an XML declaration); UTF-16 without a BOM, recognised by its
zero bytes (one byte of each pair for Latin text; for other scripts the zeros of the
ASCII characters, always on the same side, and a strict decode of printable text);
strict UTF-8, which almost never decodes text that is not UTF-8; then
Windows-1252, which is what unlabeled legacy Western text nearly always is, and finally
Latin-1, which maps every byte and so cannot fail. A statistical detector
(charset-normalizer) is deliberately not used: on short documents its guesses are
unstable, and a wrong confident guess is worse than a predictable fallback.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = [
    "Decoded",
    "declared_html_encoding",
    "decode_bytes",
    "looks_binary",
    "normalize_newlines",
]

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM begins with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Labels whose meaning on the web differs from Python's codec of the same name (the
# WHATWG Encoding Standard): pages labelled Latin-1 or ASCII are decoded as
# Windows-1252, and so on. A declared UTF-16 cannot be true of a file whose
# declaration we could read as ASCII, so it means UTF-8.
_WEB_LABELS = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "cp819": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
}

_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)""")
_NEWLINES = re.compile(r"\r\n?")


@dataclass(frozen=True)
class Decoded:
    """Decoded text and how it was decoded (kept in the document's metadata)."""

    text: str
    encoding: str
    #: True when the encoding came from neither a BOM, a declaration, nor valid UTF-8.
    guessed: bool = False


def _codec(label: str) -> str | None:
    """Python's codec for an encoding label, or None when the label is unknown."""
    label = label.strip().lower()
    label = _WEB_LABELS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_html_encoding(data: bytes) -> str | None:
    """The encoding an HTML/XML file declares near its start, if any (and known)."""
    head = data[:4096]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        match = pattern.search(head)
        if match is not None:
            codec = _codec(match.group(1).decode("ascii"))
            if codec is not None:
                return codec
    return None


def _looks_utf16(data: bytes) -> str | None:
    """``utf-16-le``/``-be`` for BOM-less UTF-16, else None.

    Mostly Latin text has a zero in every other byte; real 8-bit text has almost none.
    Text in another script (Cyrillic, Greek, CJK...) has zeros only where it uses an
    ASCII character (space, digit, newline), and always in the same byte of the pair,
    so it is recognised by that one-sided pattern, checked by decoding the sample.
    """
    if len(data) < 4 or len(data) % 2:
        return None
    sample = data[:8192]
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_zeros > 0.4 * half and even_zeros < 0.05 * half:
        return "utf-16-le"
    if even_zeros > 0.4 * half and odd_zeros < 0.05 * half:
        return "utf-16-be"
    sides = (("utf-16-le", odd_zeros, even_zeros), ("utf-16-be", even_zeros, odd_zeros))
    for codec, high, low in sides:
        # At least 1% ASCII characters, so that a stray NUL in an 8-bit file (which
        # read as UTF-16 is CJK-looking noise) is not enough.
        if high >= max(2, half // 100) and low < high and _decodes_as_text(sample, codec):
            return codec
    return None


# Characters real text holds that str.isprintable() rejects: whitespace, spacing and
# invisible format characters (soft hyphen, zero-width and bidi marks, BOM).
_INVISIBLE = re.compile(
    r"[\t\n\r\f\v \xa0\xad\u1680\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]+"
)


def _decodes_as_text(sample: bytes, codec: str) -> bool:
    """Whether ``sample`` is valid ``codec`` holding only assigned, printable characters.

    Binary data read as UTF-16 hits lone surrogates, control characters, private-use
    or unassigned code points within a few hundred bytes; text in any script does not.
    The sample may end inside a surrogate pair, hence the incremental decoder.
    """
    try:
        text = codecs.getincrementaldecoder(codec)("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and _INVISIBLE.sub("", text).isprintable()


def decode_bytes(data: bytes, declared: str | None = None) -> Decoded:
    """Decode ``data`` by the order of evidence above; never raises.

    ``declared`` is an encoding the caller found in the content (HTML meta); a BOM
    still wins over it, as in browsers.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return Decoded(data[len(bom) :].decode(codec, errors="replace"), codec)
    if declared is not None:
        known = _codec(declared)
        if known is not None:
            return Decoded(data.decode(known, errors="replace"), known)
    # Before UTF-8: BOM-less UTF-16 of ASCII text is also valid UTF-8 (full of NULs).
    utf16 = _looks_utf16(data)
    if utf16 is not None:
        return Decoded(data.decode(utf16, errors="replace"), utf16, guessed=True)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return Decoded(data.decode("cp1252"), "cp1252", guessed=True)
    except UnicodeDecodeError:
        # Five bytes are undefined in Windows-1252; Latin-1 maps every byte.
        return Decoded(data.decode("latin-1"), "latin-1", guessed=True)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR to LF, so paragraph splitting sees one kind of line break."""
    return _NEWLINES.sub("\n", text)


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def looks_binary(text: str) -> bool:
    """Whether decoded text is really a binary file.

    A NUL near the start (git's test), or control characters making up more than a
    tenth of it: binary data mis-decoded (as UTF-16, say) rarely holds NULs but is
    full of such characters, while real text has almost none.
    """
    head = text[:8192]
    return "\x00" in head or len(_CONTROL.findall(head)) > len(head) / 10
