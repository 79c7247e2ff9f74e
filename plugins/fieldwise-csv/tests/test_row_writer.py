"""``RowWriter.cell`` writes a value exactly as ``csv.writer`` would, in every dialect (an
empty value is the one exception: inside a row it is written as nothing, see ``cell``)."""

from __future__ import annotations

import csv
import io

from fieldwise_csv._format import Format, RowWriter, split_raw
from hypothesis import assume, given
from hypothesis import strategies as st


@given(
    value=st.text(alphabet=' ab,;"\r\n\t|é=', min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quote_all=st.booleans(),
)
def test_a_cell_is_written_as_csv_writer_writes_it(
    value: str, delimiter: str, quote_all: bool
) -> None:
    fmt = Format("utf-8", delimiter, '"', False, quote_all, "\n")
    out = io.StringIO()
    csv.writer(out, **fmt.writer_options()).writerow([value])
    assert RowWriter(fmt).cell(value) == out.getvalue()[:-2]


def _read(text: str, fmt: Format) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), **fmt.reader_options()))


@given(
    body=st.text(alphabet=" ab,;\"'\n\t|", min_size=1, max_size=12),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quotechar=st.sampled_from(['"', "'"]),
    skip=st.booleans(),
)
def test_raw_fields_are_the_fields_csv_reader_reads(
    body: str, delimiter: str, quotechar: str, skip: bool
) -> None:
    """Each raw piece is exactly one field, so a spliced row keeps its other cells' bytes
    (stray quotes and spaces after the separator included)."""
    fmt = Format("utf-8", delimiter, quotechar, skip, False, "\n")
    records = _read(body, fmt)
    assume(len(records) == 1 and not body.endswith("\n"))
    parts = split_raw(body, fmt)
    assert delimiter.join(parts) == body
    assert [(_read(part, fmt) or [[""]])[0][0] for part in parts] == records[0]


@given(
    value=st.text(alphabet=' ab,;"\r\n\t|é=', min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    skip=st.booleans(),
)
def test_a_cell_reads_back_as_its_value(value: str, delimiter: str, skip: bool) -> None:
    """Leading spaces too, in a file whose reader skips the spaces after a separator, and a
    lone carriage return (which csv.writer before 3.12 left unquoted with a "\\n" ending)."""
    fmt = Format("utf-8", delimiter, '"', skip, False, "\n")
    assert _read("x" + delimiter + RowWriter(fmt).cell(value), fmt) == [["x", value]]


def test_a_lone_carriage_return_is_quoted() -> None:
    fmt = Format("utf-8", ",", '"', False, False, "\n")
    assert RowWriter(fmt).cell("a\rb") == '"a\rb"'
