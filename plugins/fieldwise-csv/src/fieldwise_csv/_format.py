"""Reading a CSV file as it is: encoding, dialect, and each record's raw text.

The filled file must differ from the input only in the target cells. So the encoding (and
its BOM), the separator, the quoting style and the line endings are detected and reused,
and every record is read together with its exact raw text: a row that does not change is
written back byte for byte.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Encodings tried, in order, for a file without a BOM. latin-1 decodes any byte, so it
#: ends the list: a file is never refused for its encoding, and its bytes round-trip.
FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")
DELIMITERS = ",;\t|"
SAMPLE_CHARS = 64 * 1024


def bom_encoding(path: Path) -> str | None:
    """The encoding a byte-order mark announces (kept on output), else ``None``."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def candidate_encodings(path: Path) -> Sequence[str]:
    found = bom_encoding(path)
    return (found,) if found else FALLBACK_ENCODINGS


@dataclass(frozen=True)
class Format:
    """How the file is written, so that rewritten rows look like their neighbours."""

    encoding: str
    delimiter: str
    quotechar: str
    skipinitialspace: bool
    quote_all: bool
    lineterminator: str

    def reader_options(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            # RFC 4180 doubling; the sniffer guesses False whenever its sample holds no
            # doubled quote, which would then break on the first one.
            "doublequote": True,
            "skipinitialspace": self.skipinitialspace,
            "strict": False,
        }

    def writer_options(self) -> dict[str, Any]:
        quoting = csv.QUOTE_ALL if self.quote_all else csv.QUOTE_MINIMAL
        return {**self.reader_options(), "quoting": quoting, "lineterminator": "\n"}


def _line_ending(raw: str) -> str:
    if raw.endswith("\r\n"):
        return "\r\n"
    if raw.endswith(("\n", "\r")):
        return raw[-1]
    return ""


def split_ending(raw: str) -> tuple[str, str]:
    """``raw`` without its line ending, and the ending (``""`` on a last line)."""
    ending = _line_ending(raw)
    return (raw[: len(raw) - len(ending)] if ending else raw), ending


def _parse_header(sample: str, delimiter: str, quotechar: str) -> list[str]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, quotechar=quotechar)
    return next(reader, [])


def detect_format(
    sample: str, encoding: str, suffix: str, wanted: Sequence[str]
) -> tuple[Format, list[str]]:
    """The dialect of ``sample`` (the file's first characters) and its header.

    ``csv.Sniffer`` guesses from the sample; its guess is checked against the header: a
    separator under which every ``wanted`` (``--from``) column exists wins over one under
    which it does not, because the sniffer is easily fooled by punctuation in the data.
    """
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    trimmed = sample[: cut + 1] if cut > 0 else sample
    default = "\t" if suffix.lower() == ".tsv" else ","
    quotechar, skip = '"', False
    candidates: list[str] = []
    try:
        sniffed = csv.Sniffer().sniff(trimmed, delimiters=DELIMITERS)
        candidates.append(sniffed.delimiter)
        quotechar = sniffed.quotechar or '"'
        skip = bool(sniffed.skipinitialspace)
    except csv.Error:
        pass
    candidates += [default, *DELIMITERS]
    delimiter = candidates[0]
    for candidate in candidates:
        header = _parse_header(trimmed, candidate, quotechar)
        names = {name.strip() for name in header}
        if wanted and all(name.strip() in names for name in wanted):
            delimiter = candidate
            break
    header = _parse_header(trimmed, delimiter, quotechar)
    first_line = next(iter(io.StringIO(trimmed, newline="")), "")
    body, ending = split_ending(first_line)
    quoted = f"{quotechar}{delimiter}{quotechar}"
    quote_all = (
        len(header) > 0
        and body.startswith(quotechar)
        and body.endswith(quotechar)
        and body.count(quoted) >= len(header) - 1
    )
    return (
        Format(encoding, delimiter, quotechar, skip, quote_all, ending or "\n"),
        header,
    )


class Records:
    """``csv.reader`` over a text stream that also hands back each record's raw text.

    The C reader pulls exactly the lines a record needs, so the lines captured between two
    records are that record's text (embedded newlines included).
    """

    def __init__(self, stream: io.TextIOBase, fmt: Format) -> None:
        self._lines: list[str] = []
        self._reader = csv.reader(self._feed(stream), **fmt.reader_options())

    def _feed(self, stream: io.TextIOBase) -> Iterator[str]:
        for line in stream:
            self._lines.append(line)
            yield line

    def __iter__(self) -> Iterator[tuple[list[str], str]]:
        for fields in self._reader:
            raw = "".join(self._lines)
            self._lines.clear()
            yield fields, raw


def split_raw(body: str, fmt: Format) -> list[str]:
    """A record's fields as they are written in the file (quotes and all).

    Splits on the separator, then glues back pieces while a quote is open. A stray quote
    inside an unquoted field defeats this; the caller notices (the count differs from the
    parsed fields) and re-serialises the row instead.
    """
    pieces = body.split(fmt.delimiter)
    if fmt.quotechar not in body:  # nothing quoted: the pieces are the fields
        return pieces
    fields: list[str] = []
    open_piece: str | None = None
    for piece in pieces:
        current = piece if open_piece is None else open_piece + fmt.delimiter + piece
        if current.count(fmt.quotechar) % 2:
            open_piece = current
        else:
            fields.append(current)
            open_piece = None
    if open_piece is not None:
        fields.append(open_piece)
    return fields


class RowWriter:
    """Writes a changed row: original cells as they were, changed cells in the file's
    quoting style, the record's own line ending."""

    def __init__(self, fmt: Format) -> None:
        self._fmt = fmt
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, **fmt.writer_options())
        # Characters that make csv.writer quote a field (QUOTE_MINIMAL); a value without
        # them is written as it is, without a round trip through the writer (~1.5 µs a cell).
        self._specials = frozenset(fmt.delimiter + fmt.quotechar + "\r\n")

    def text(self, fields: Sequence[str], ending: str) -> str:
        """``fields`` serialised from scratch."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(fields)
        return self._buffer.getvalue()[:-1] + ending

    def fields_text(self, fields: Sequence[str]) -> str:
        """Fields joined as they would appear inside a line (no ending)."""
        return self.text(fields, "")

    def cell(self, value: str) -> str:
        if value == "":  # a lone empty field is written as "" by csv.writer
            return self._fmt.quotechar * 2 if self._fmt.quote_all else ""
        if not self._fmt.quote_all and value[0] != " " and self._specials.isdisjoint(value):
            return value
        return self.text([value], "")

    def splice(self, raw: str, fields: Sequence[str], width: int, updates: dict[int, str]) -> str:
        """``raw`` with the cells at ``updates``' positions replaced (the row padded to
        ``width``); every other cell keeps its exact bytes."""
        body, ending = split_ending(raw)
        parts = split_raw(body, self._fmt)
        if len(parts) != len(fields):
            row = list(fields) + [""] * max(0, width - len(fields))
            for index, value in updates.items():
                row[index] = value
            return self.text(row, ending)
        parts += [self.cell("")] * max(0, width - len(parts))
        for index, value in updates.items():
            parts[index] = self.cell(value)
        return self._fmt.delimiter.join(parts) + ending
