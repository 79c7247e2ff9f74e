"""split_document and merge_values: where cuts fall, and how chunk results combine."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fieldwise.chunking import Chunk, Conflict, merge_values, split_document
from fieldwise.document import Document

# --- split_document ---------------------------------------------------------------


def check_invariants(doc: Document, chunks: list[Chunk], max_chars: int) -> None:
    """What every split must satisfy, whatever the text."""
    previous_end = 0
    covered = []
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert 0 < len(chunk.text) <= max_chars
        assert chunk.start >= previous_end
        assert not chunk.text[0].isspace() and not chunk.text[-1].isspace()
        # Only whitespace is left out between chunks.
        assert doc.text[previous_end : chunk.start].strip() == ""
        first, last = doc.page_of(chunk.start), doc.page_of(chunk.end - 1)
        assert chunk.pages == tuple(range(first, last + 1))
        previous_end = chunk.end
        covered.append(chunk.text)
    assert doc.text[previous_end:].strip() == ""
    assert "".join("".join(covered).split()) == "".join(doc.text.split())


def para(label: str, sentences: int, words: int = 8) -> str:
    return " ".join(
        " ".join(f"{label}{s}w{w}" for w in range(words)) + "." for s in range(sentences)
    )


def test_small_pages_are_packed_and_cuts_fall_on_page_boundaries() -> None:
    pages = [para(f"p{i}", 3) for i in range(10)]  # ~250 chars each
    doc = Document.from_pages(pages)
    chunks = split_document(doc, 1000)
    check_invariants(doc, chunks, 1000)
    assert len(chunks) < len(pages)
    page_ends = {end for _, end in doc.pages}
    for chunk in chunks:
        assert chunk.end in page_ends  # never inside a page when pages fit
        assert len(chunk.pages) >= 2


def test_page_boundary_beats_a_later_paragraph_boundary() -> None:
    first = "A" * 300 + "."
    second = "\n\n".join(para(label, 3) for label in "bcd")  # paragraphs of ~125
    doc = Document.from_pages([first, second])
    assert doc.text.index("\n\nc0") < 500 < len(doc.text)  # a paragraph break fits too
    chunks = split_document(doc, 500)
    check_invariants(doc, chunks, 500)
    assert chunks[0].text == first
    assert chunks[0].pages == (1,)


def test_oversized_page_splits_at_paragraphs() -> None:
    paragraphs = [para(f"q{i}", 4) for i in range(6)]
    doc = Document("\n\n".join(paragraphs))
    size = len(paragraphs[0]) * 2 + 10
    chunks = split_document(doc, size)
    check_invariants(doc, chunks, size)
    for chunk in chunks:
        assert chunk.text.split("\n\n")[0] in paragraphs  # starts at a paragraph
        assert chunk.text.split("\n\n")[-1] in paragraphs  # ends at one


def test_oversized_paragraph_splits_at_sentences() -> None:
    sentences = [f"Sentence number {i} says something rather dull!" for i in range(40)]
    doc = Document(" ".join(sentences))
    chunks = split_document(doc, 300)
    check_invariants(doc, chunks, 300)
    assert len(chunks) > 1
    assert all(chunk.text.endswith("!") for chunk in chunks)


def test_sentence_closers_and_cjk_full_stops() -> None:
    doc = Document('He said "stop." Then left. ' * 20)
    chunks = split_document(doc, 100)
    check_invariants(doc, chunks, 100)
    assert all(c.text.endswith(('."', ".")) for c in chunks)
    cjk = Document("これは文です。" * 100)
    chunks = split_document(cjk, 50)
    check_invariants(cjk, chunks, 50)
    assert all(c.text.endswith("。") for c in chunks)


def test_lines_without_punctuation_split_at_line_breaks() -> None:
    doc = Document("\n".join(f"row {i} | value {i * 7}" for i in range(200)))
    chunks = split_document(doc, 250)
    check_invariants(doc, chunks, 250)
    lines = set(doc.text.split("\n"))
    for chunk in chunks:
        assert set(chunk.text.split("\n")) <= lines


def test_one_long_line_splits_at_spaces_then_hard() -> None:
    words = Document(" ".join(["lorem"] * 500))
    chunks = split_document(words, 64)
    check_invariants(words, chunks, 64)
    assert all(set(c.text.split()) == {"lorem"} for c in chunks)

    blob = Document("x" * 2500)
    assert [len(c.text) for c in split_document(blob, 1000)] == [1000, 1000, 500]


def test_every_unicode_space_is_a_word_boundary() -> None:
    from fieldwise.chunking import _SPACES

    assert set(_SPACES) | {"\n"} == {chr(i) for i in range(0x110000) if chr(i).isspace()}
    doc = Document("\u00a0".join(["word"] * 50) + "\u3000" + "end")
    chunks = split_document(doc, 12)
    check_invariants(doc, chunks, 12)
    assert all(c.text in ("word\u00a0word", "word", "end", "word\u3000end") for c in chunks)


def test_short_and_empty_documents() -> None:
    assert split_document(Document(""), 10) == []
    assert split_document(Document(" \n\n\t "), 10) == []
    doc = Document("  hello world \n")
    assert split_document(doc, 100) == [Chunk("hello world", 2, 13, (1,))]


def test_pages_of_a_chunk_and_empty_pages() -> None:
    doc = Document.from_pages(["one", "", "three", "four"])
    [chunk] = split_document(doc, 1000)
    assert chunk.pages == (1, 2, 3, 4)
    chunks = split_document(doc, 6)
    check_invariants(doc, chunks, 6)
    assert [c.pages for c in chunks] == [(1,), (3,), (4,)]


def test_pages_without_a_gap_between_them() -> None:
    doc = Document("aaaabbbbcccc", pages=[(0, 4), (4, 8), (8, 12)])
    chunks = split_document(doc, 9)
    assert [c.text for c in chunks] == ["aaaabbbb", "cccc"]
    assert [c.pages for c in chunks] == [(1, 2), (3,)]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_document(Document("text"), 0)


def test_large_document_is_linear() -> None:
    text = "\n".join(f"line {i} has no full stop" for i in range(150_000))  # ~3.6 MB
    started = time.perf_counter()
    chunks = split_document(Document(text), 2000)
    assert time.perf_counter() - started < 5
    assert len(chunks) >= len(text) // 2000


words = st.text(alphabet="abcdefgh.!?;", min_size=1, max_size=12)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "  \n \n", "\t", "。"])
page_text = st.lists(st.tuples(words, separators), max_size=60).map(
    lambda parts: "".join(w + s for w, s in parts)
)


@settings(max_examples=300, deadline=None)
@given(pages=st.lists(page_text, min_size=1, max_size=6), max_chars=st.integers(1, 120))
def test_split_invariants_hold_for_any_text(pages: list[str], max_chars: int) -> None:
    doc = Document.from_pages(pages)
    check_invariants(doc, split_document(doc, max_chars), max_chars)


# --- merge_values -----------------------------------------------------------------


class Address(BaseModel):
    street: str | None = None
    city: str | None = None


class Item(BaseModel):
    name: str
    price: float


class Invoice(BaseModel):
    number: str | None = None
    customer: str = ""
    total: float | None = None
    currency: str = "EUR"
    paid: bool | None = None
    address: Address | None = None
    items: list[Item] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    totals_by_tax: dict[str, float] = Field(default_factory=dict)
    codes: set[str] = Field(default_factory=set)
    period: tuple[int, int] | None = None


def test_lists_concatenate_and_deduplicate_in_order() -> None:
    a = Invoice(items=[Item(name="tea", price=2)], tags=["x", "y"])
    b = Invoice(items=[Item(name="cup", price=5), Item(name="tea", price=2.0)], tags=["y", "z"])
    merged = merge_values([a, b], Invoice).value
    assert merged.items == [Item(name="tea", price=2), Item(name="cup", price=5)]
    assert merged.tags == ["x", "y", "z"]


def test_same_name_different_item_is_kept() -> None:
    a = Invoice(items=[Item(name="tea", price=2)])
    b = Invoice(items=[Item(name="tea", price=3)])
    assert len(merge_values([a, b], Invoice).value.items) == 2


def test_scalars_take_the_first_present_value_and_report_conflicts() -> None:
    values = [
        Invoice(number=None, customer="", total=None),
        Invoice(number="INV-1", customer="Acme", total=100.0),
        Invoice(number="INV-1", customer="ACME Ltd", total=120.0),
        Invoice(number=None, customer="Acme", total=130.0),
    ]
    result = merge_values(values, Invoice)
    assert result.value.number == "INV-1"
    assert result.value.customer == "Acme"
    assert result.value.total == 100.0
    assert result.conflicts == [
        Conflict("customer", "Acme", ("ACME Ltd",)),
        Conflict("total", 100.0, (120.0, 130.0)),
    ]


def test_nested_models_merge_recursively_with_paths() -> None:
    a = Invoice(address=Address(street="1 Main St"))
    b = Invoice(address=Address(city="Springfield"))
    c = Invoice(address=Address(city="Shelbyville"))
    result = merge_values([a, b, c], Invoice)
    assert result.value.address == Address(street="1 Main St", city="Springfield")
    assert isinstance(result.value.address, Address)
    assert result.conflicts == [Conflict("address.city", "Springfield", ("Shelbyville",))]


def test_dicts_merge_by_key_and_sets_unite() -> None:
    a = Invoice(totals_by_tax={"vat": 19.0}, codes={"a"})
    b = Invoice(totals_by_tax={"vat": 21.0, "eco": 1.0}, codes={"b", "a"})
    result = merge_values([a, b], Invoice)
    assert result.value.totals_by_tax == {"vat": 19.0, "eco": 1.0}
    assert result.value.codes == {"a", "b"}
    assert result.conflicts == [Conflict("totals_by_tax[vat]", 19.0, (21.0,))]


def test_defaults_a_chunk_did_not_set_do_not_win() -> None:
    a = Invoice()  # currency left at its default "EUR"
    b = Invoice(currency="USD")
    result = merge_values([a, b], Invoice)
    assert result.value.currency == "USD"
    assert result.conflicts == []


def test_a_value_equal_to_the_default_gives_way_and_is_reported() -> None:
    """Null on the wire means the default and still marks the field set, so a chunk's
    value equal to the default is taken for "not found" and another chunk's value wins;
    the chunk may have meant it, so the choice is reported as a conflict."""
    a = Invoice(currency="EUR")  # set, and equal to the default
    b = Invoice(currency="USD")
    result = merge_values([a, b], Invoice)
    assert result.value.currency == "USD"
    assert result.conflicts == [Conflict("currency", "USD", ("EUR",))]


def test_chunks_without_items_disagree_with_nothing() -> None:
    """A chunk without line items answers ``[]`` (and ``{}``, a set: empty), which adds
    nothing to a concatenation: no conflict, where a chunk's scalar default is one."""
    empty = Invoice.model_validate({"number": "INV-1", "items": [], "tags": [],
                                    "totals_by_tax": {}, "codes": []})  # fmt: skip
    full = Invoice(items=[Item(name="tea", price=2)], tags=["a"], totals_by_tax={"vat": 1.0},
                   codes={"x"})  # fmt: skip
    more = Invoice(items=[Item(name="jam", price=3)])
    result = merge_values([empty, full, more], Invoice)
    assert [i.name for i in result.value.items] == ["tea", "jam"]
    assert result.value.tags == ["a"] and result.value.codes == {"x"}
    assert result.value.totals_by_tax == {"vat": 1.0}
    assert result.conflicts == []


def test_false_and_zero_are_values_not_absence() -> None:
    result = merge_values([Invoice(paid=False, total=0.0), Invoice(paid=True, total=5)], Invoice)
    assert result.value.paid is False and result.value.total == 0.0
    assert [c.path for c in result.conflicts] == ["total", "paid"]


def test_tuples_are_scalars() -> None:
    result = merge_values([Invoice(period=(1, 2)), Invoice(period=(3, 4))], Invoice)
    assert result.value.period == (1, 2)
    assert result.conflicts == [Conflict("period", (1, 2), ((3, 4),))]


def test_one_value_is_returned_equal() -> None:
    value = Invoice(number="A", items=[Item(name="x", price=1)])
    result = merge_values([value], Invoice)
    assert result.value == value and result.conflicts == []


class Range(BaseModel):
    low: int | None = None
    high: int | None = None
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def ordered(self) -> Range:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def test_merged_value_is_validated_again() -> None:
    with pytest.raises(ValidationError, match="low must not exceed high"):
        merge_values([Range(low=10), Range(high=5)], Range)
    assert merge_values([Range(low=1), Range(high=5)], Range).value == Range(low=1, high=5)


class Aliased(BaseModel):
    model_config = ConfigDict(extra="allow")

    total_amount: float | None = Field(default=None, alias="TotalAmount")
    lines: list[str] = Field(default_factory=list, alias="Lines")


def test_aliases_and_extra_fields() -> None:
    a = Aliased.model_validate({"TotalAmount": 3.5, "Lines": ["a"], "seen": "x"})
    b = Aliased.model_validate({"Lines": ["b"], "seen": "y", "other": 1})
    result = merge_values([a, b], Aliased)
    assert result.value.total_amount == 3.5
    assert result.value.lines == ["a", "b"]
    assert result.value.model_extra == {"seen": "x", "other": 1}
    assert result.conflicts == [Conflict("seen", "x", ("y",))]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge_values([], Invoice)
    bad: list[Any] = [Invoice(), Address()]
    with pytest.raises(TypeError, match="expects Invoice instances, got Address"):
        merge_values(bad, Invoice)


def test_merge_of_split_document_results() -> None:
    """The intended use: one value per chunk, merged into one answer."""
    doc = Document.from_pages(["Invoice INV-9 for Acme.", "Item tea 2.00", "Item cup 5.00"])
    chunks = split_document(doc, 30)
    per_chunk = [
        Invoice(
            number="INV-9" if "INV-9" in c.text else None,
            items=[Item(name=n, price=p) for n, p in (("tea", 2), ("cup", 5)) if n in c.text],
        )
        for c in chunks
    ]
    merged = merge_values(per_chunk, Invoice).value
    assert merged.number == "INV-9"
    assert [i.name for i in merged.items] == ["tea", "cup"]
