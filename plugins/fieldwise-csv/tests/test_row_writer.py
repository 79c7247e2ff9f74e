"""``RowWriter.cell`` writes a value exactly as ``csv.writer`` would, in every dialect (an
empty value is the one exception: inside a row it is written as nothing, see ``cell``)."""

from __future__ import annotations

import csv
import io

from fieldwise_csv._format import Format, RowWriter
from hypothesis import given
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
    assert RowWriter(fmt).cell(value) == out.getvalue()[:-1]
