"""The bulk (cold) path of the encoder's token counts against the tokenizer's own ids."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.sparse import csr_matrix
from tokenizers import Tokenizer

from ingest.encoder.bulk_chunks import ragged_gather
from ingest.encoder.models import teacher_tokenizer
from ingest.encoder.wordpiece import WordPieceIds, token_ids_reference
from tests.ingest.encoder.texts import LONG_WORD, VARIED, fuzz_texts


def _reference_bag(tokenizer: Tokenizer, texts: list[str]) -> csr_matrix:
    """Texts × vocabulary counts of the tokenizer's own ids."""
    ref = token_ids_reference(tokenizer, texts)
    rows = np.repeat(np.arange(len(ref)), [len(r) for r in ref])
    cols = np.array([t for r in ref for t in r], dtype=np.int64)
    shape = (len(texts), tokenizer.get_vocab_size(with_added_tokens=True))
    return csr_matrix((np.ones(cols.size, dtype=np.float32), (rows, cols)), shape=shape)


def _assert_same_counts(got: csr_matrix, ref: csr_matrix, texts: list[str]) -> None:
    diff = abs(got - ref).sum(axis=1).A.ravel()
    bad = np.flatnonzero(diff)
    assert not bad.size, f"{bad.size} texts differ, first: {texts[int(bad[0])][:80]!r}"


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return teacher_tokenizer()


def test_cold_and_warm_bags_equal_the_tokenizer(tokenizer: Tokenizer, beir_sample: list[str]) -> None:
    texts = VARIED + fuzz_texts(600, seed=21) + beir_sample
    ref = _reference_bag(tokenizer, texts)
    ids = WordPieceIds(tokenizer)
    _assert_same_counts(ids.bag(texts), ref, texts)  # every chunk new: the bulk path
    _assert_same_counts(ids.bag(texts), ref, texts)  # every chunk cached
    # New chunks among known ones, and known words in new chunks.
    more = fuzz_texts(300, seed=22) + [t.upper() for t in beir_sample[:50]] + [t + "!?" for t in VARIED]
    _assert_same_counts(ids.bag(more), _reference_bag(tokenizer, more), more)


def test_every_code_point_counts_identically(tokenizer: Tokenizer) -> None:
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and (c < 0x10000 or c % 23 == 0)]
    texts = [
        " ".join(f"a{chr(c)}b {chr(c)} Q{chr(c)}" for c in cps[i : i + 24]) for i in range(0, len(cps), 24)
    ]
    _assert_same_counts(WordPieceIds(tokenizer).bag(texts), _reference_bag(tokenizer, texts), texts)


def test_bulk_path_takes_most_chunks_and_matches_per_chunk_ids(
    tokenizer: Tokenizer, beir_sample: list[str]
) -> None:
    ids = WordPieceIds(tokenizer)
    bulk = ids._rows._chunks
    chunks = sorted({c for t in [*beir_sample, *VARIED] for c in t.split()})
    mask = bulk._bulk_mask(pl.Series(chunks, dtype=pl.String))
    # Non-ASCII chunks without marks or added-token characters are taken in bulk too.
    assert mask.mean() > 0.9 and mask[[i for i, c in enumerate(chunks) if not c.isascii()]].any()
    assert not mask[chunks.index("[MASK]")]
    taken = [c for c, m in zip(chunks, mask, strict=True) if m]
    lengths, flat = bulk._bulk_ids(pl.Series(taken, dtype=pl.String))
    ends = np.cumsum(lengths)
    got = [flat[a:b].tolist() for a, b in zip(ends - lengths, ends, strict=True)]
    assert got == token_ids_reference(tokenizer, taken)
    assert LONG_WORD in taken and got[taken.index(LONG_WORD)] == [tokenizer.token_to_id("[UNK]")]


def test_word_cache_resets_stay_exact(tokenizer: Tokenizer, beir_sample: list[str]) -> None:
    ids = WordPieceIds(tokenizer)
    bulk = ids._rows._chunks
    bulk._max_entries = 200  # a reset before nearly every batch
    texts = beir_sample[:120] + VARIED
    for start in range(0, len(texts), 25):
        part = texts[start : start + 25]
        _assert_same_counts(ids.bag(part), _reference_bag(tokenizer, part), part)
        assert bulk.word_count > 0
    ids.bag(texts[:5])
    assert bulk.word_count < 200 + tokenizer.get_vocab_size() + 2000


def test_ragged_gather() -> None:
    lengths = np.array([2, 0, 3, 1])
    ptr = np.cumsum(lengths) - lengths
    flat = np.array([10, 11, 30, 31, 32, 40])
    assert flat[ragged_gather(ptr, lengths, np.array([2, 0, 1, 2, 3]))].tolist() == [
        30,
        31,
        32,
        10,
        11,
        30,
        31,
        32,
        40,
    ]
    assert ragged_gather(ptr, lengths, np.array([1, 1], dtype=np.int64)).size == 0


def test_cold_chunk_token_counts_equal_the_tokenizer_per_run(
    tokenizer: Tokenizer, beir_sample: list[str]
) -> None:
    texts = VARIED + fuzz_texts(200, seed=23) + beir_sample[:100]
    counts = WordPieceIds(tokenizer).chunk_token_counts(texts)  # a fresh instance: every run is new
    checked = 0
    for text, got in zip(texts, counts, strict=True):
        if got is None:  # characters removed before splitting, or taken whole: not counted per run
            continue
        runs = text.split()
        assert got.tolist() == [len(ids) for ids in token_ids_reference(tokenizer, runs)], text[:60]
        checked += 1
    assert checked > len(VARIED) + 50 and all(c is not None for c in counts[-100:])  # BEIR: all counted
