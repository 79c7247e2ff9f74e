"""Reading a CSV file as it is: encoding, dialect, and each record's raw text.

The filled file must differ from the input only in the target cells. So the encoding (and
its BOM), the separator, the quoting style and the line endings are detected and reused,
and every record is read together with its exact raw text: a row that does not change is
written back byte for byte.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Encodings tried, in order, for a file without a BOM. latin-1 decodes any byte, so it
#: ends the list: a file is never refused for its encoding, and its bytes round-trip.
FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")
DELIMITERS = ",;\t|"
#: (quote character, skipinitialspace) pairs, in order of preference: the first one that
#: puts the most of the sample's lines in rows as wide as the header wins (``_quoting``),
#: so ``"`` without skipping is kept unless another reading really fits the file better.
QUOTINGS = (('"', False), ('"', True), ("'", False), ("'", True))
SAMPLE_CHARS = 64 * 1024
#: Codecs with an explicit byte order, for writing: the plain "utf-16" codec reads either
#: order but writes the machine's, which changed every byte of a big-endian file. They
#: write no BOM, so ``Format.bom`` puts it back; ``open_text`` reads with "utf-16".
EXPLICIT_BOM = frozenset({"utf-16-le", "utf-16-be"})


def bom_encoding(path: Path) -> str | None:
    """The encoding a byte-order mark announces (kept on output), else ``None``."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    return None


def open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    """``path`` opened for reading in ``encoding``, past its BOM (the "utf-16" decoder
    reads the BOM's byte order and drops it)."""
    return open(path, encoding="utf-16" if encoding in EXPLICIT_BOM else encoding, newline="")


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
    #: lines above the header (Excel's ``sep=`` line, rows before a named header row),
    #: skipped when reading and copied as they are
    skip_lines: int = 0
    #: whether the first of them is a ``sep=`` line (which Excel does not show as a row)
    sep_line: bool = False

    @property
    def first_row(self) -> int:
        """The number of the first row under the header, as Excel numbers the rows (and
        ``--header-row`` counts them): what messages about a row call it."""
        return self.skip_lines - self.sep_line + 2

    @property
    def bom(self) -> str:
        """What to write before the header: the BOM, where the codec does not write it."""
        return "\ufeff" if self.encoding in EXPLICIT_BOM else ""

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
        # "\r\n": csv.writer (before 3.12) quotes only the line terminator's characters,
        # so with "\n" a value holding a lone "\r" was written bare and split on reading.
        return {**self.reader_options(), "quoting": quoting, "lineterminator": "\r\n"}


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


def _reader(sample: str, delimiter: str, quotechar: str, skip: bool) -> Any:
    """``csv.reader`` over ``sample`` (its ``line_num`` counts the lines read so far)."""
    fmt = Format("", delimiter, quotechar, skip, False, "\n")
    return csv.reader(io.StringIO(sample, newline=""), **fmt.reader_options())


def _parse_header(sample: str, delimiter: str, quotechar: str, skip: bool) -> list[str]:
    header: list[str] = next(_reader(sample, delimiter, quotechar, skip), [])
    return header


def _agreement(sample: str, delimiter: str, quotechar: str, skip: bool) -> int:
    """How many of the sample's lines lie in records as wide as its header.

    Lines, not records: a wrong quote character that cuts a multi-line record into narrow
    pieces, or swallows many lines into one record, loses lines either way.
    """
    records = _reader(sample, delimiter, quotechar, skip)
    agreeing = 0
    try:
        width = len(next(records, []))
        read = records.line_num
        for fields in records:
            if len(fields) == width:
                agreeing += records.line_num - read
            read = records.line_num
    except csv.Error:  # e.g. a field over the size limit: judge on what was read
        pass
    return agreeing


def _quoting(sample: str, delimiter: str) -> tuple[str, bool]:
    """The quote character and skipinitialspace that fit the sample best (``QUOTINGS``).

    Not the sniffer's: it takes ``'b', 'c'`` inside a ``"``-quoted field for quoting and
    skipped spaces, which then splits valid rows at the commas inside their quotes; and a
    skipinitialspace the file does not need drops the leading spaces of cells.
    """
    scores = {choice: _agreement(sample, delimiter, *choice) for choice in QUOTINGS}
    return max(QUOTINGS, key=scores.__getitem__)  # max keeps the first of equals


#: Excel's first line naming the separator (``sep=;``), which Excel reads and hides
_SEP_LINE = re.compile(r"sep=([^\"'\r\n])(?:\r\n|\n|\r)")


def preamble(sample: str, header_row: int | None) -> tuple[int, str | None, str | None]:
    """The lines above the header in ``sample`` (the file's first characters): how many,
    the separator an Excel ``sep=X`` first line names (``None``: no such line), and the
    sample from the header on (``None``: the sample ends before it). ``header_row``
    counts rows as Excel shows them, without the ``sep=`` line."""
    lines = io.StringIO(sample, newline="").readlines()
    found = _SEP_LINE.fullmatch(lines[0]) if lines else None
    skip = (1 if found else 0) + (header_row or 1) - 1
    rest = "".join(lines[skip:]) if skip < len(lines) else None
    return skip, found[1] if found else None, rest


def detect_format(
    sample: str, encoding: str, suffix: str, wanted: Sequence[str], delimiter: str | None = None
) -> tuple[Format, list[str]]:
    """The dialect of ``sample`` (the file's first characters) and its header.

    ``csv.Sniffer`` guesses the separator from the sample; its guess is checked against the
    header: a separator under which every ``wanted`` (``--from``) column exists wins over
    one under which it does not, because the sniffer is easily fooled by punctuation in
    the data. For the same reason the quote character and skipinitialspace are not the
    sniffer's but those under which the records agree with the header (``_quoting``).
    A ``delimiter`` given (Excel's ``sep=`` line named it) is taken as it is.
    """
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    trimmed = sample[: cut + 1] if cut > 0 else sample
    default = "\t" if suffix.lower() == ".tsv" else ","
    candidates: list[str] = [delimiter] if delimiter is not None else []
    if delimiter is None:
        with contextlib.suppress(csv.Error):
            candidates.append(csv.Sniffer().sniff(trimmed, delimiters=DELIMITERS).delimiter)
        candidates += [default, *DELIMITERS]
    delimiter, quoting = candidates[0], None
    for candidate in dict.fromkeys(candidates) if wanted else ():
        fits = _quoting(trimmed, candidate)
        names = {name.strip() for name in _parse_header(trimmed, candidate, *fits)}
        if all(name.strip() in names for name in wanted):
            delimiter, quoting = candidate, fits
            break
    quotechar, skip = quoting or _quoting(trimmed, delimiter)
    header = _parse_header(trimmed, delimiter, quotechar, skip)
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


@functools.cache
def _raw_field(delimiter: str, quotechar: str, skipinitialspace: bool) -> re.Pattern[str]:
    """One field as ``csv.reader`` (``strict=False``, doubled quotes) delimits it.

    A field that starts with the quote (after spaces, with skipinitialspace) runs to the
    closing quote, then on to the separator; any other field runs to the separator, quotes
    and all.
    """
    d, q = re.escape(delimiter), re.escape(quotechar)
    spaces = " *" if skipinitialspace else ""
    return re.compile(f"{spaces}{q}[^{q}]*(?:{q}{q}[^{q}]*)*(?:{q}[^{d}]*)?|[^{d}]*")


def split_raw(body: str, fmt: Format) -> list[str]:
    """A record's fields as they are written in the file (quotes, spaces and all).

    Each field ends where ``csv.reader`` ends it, so a stray quote inside an unquoted field
    or a space before a quoted one does not shift the cells. The caller still compares the
    count with the parsed fields and re-serialises the row if they differ.
    """
    if fmt.quotechar not in body:  # nothing quoted: the pieces are the fields
        return body.split(fmt.delimiter)
    field = _raw_field(fmt.delimiter, fmt.quotechar, fmt.skipinitialspace)
    fields: list[str] = []
    start = 0
    while True:
        found = field.match(body, start)
        end = found.end() if found else len(body)  # it always matches (maybe empty)
        fields.append(body[start:end])
        if end >= len(body):
            return fields
        start = end + 1


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
        return self._buffer.getvalue()[:-2] + ending

    def fields_text(self, fields: Sequence[str]) -> str:
        """Fields joined as they would appear inside a line (no ending)."""
        return self.text(fields, "")

    def cell(self, value: str) -> str:
        if value == "":  # a lone empty field is written as "" by csv.writer
            return self._fmt.quotechar * 2 if self._fmt.quote_all else ""
        if not self._fmt.quote_all and value[0] != " " and self._specials.isdisjoint(value):
            return value
        text = self.text([value], "")
        if self._fmt.skipinitialspace and text[0] == " ":
            # csv.writer leaves it bare, but a reader skipping initial spaces would lose them
            quote = self._fmt.quotechar
            return quote + value.replace(quote, quote * 2) + quote
        return text

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
