"""The scale benchmark's corpus generator: schema, determinism, prefix property, lengths, offline fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.synth_corpus import (
    BEIR_DIR,
    LENGTHS,
    generate_rows,
    load_sentences,
    synthetic_sentences,
    write_corpus,
)


def test_schema_ids_and_determinism(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    meta = write_corpus(a, 300, seed=7)
    write_corpus(b, 300, seed=7)
    write_corpus(c, 300, seed=8)
    table = pq.read_table(a)
    assert table.schema == pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    assert table.num_rows == 300 and meta["docs"] == 300
    ids = table.column("id").to_pylist()
    assert ids[0] == "syn-0000000" and ids[-1] == "syn-0000299" and len(set(ids)) == 300
    assert all(t for t in table.column("title").to_pylist())  # every document has a title
    assert pq.read_table(b).equals(table)  # same seed: same corpus
    assert not pq.read_table(c).equals(table)
    assert meta["text"] == "sentences of scifact.zip + nfcorpus.zip"


def test_smaller_corpus_is_a_prefix(tmp_path: Path) -> None:
    sentences, titles, _ = load_sentences(BEIR_DIR)
    small = [
        row
        for block in generate_rows(9000, sentences, titles, seed=1)
        for row in zip(*block.values(), strict=True)
    ]
    big = [
        row
        for block in generate_rows(9100, sentences, titles, seed=1)
        for row in zip(*block.values(), strict=True)
    ]
    assert big[:9000] == small


def test_lengths_follow_the_trec_covid_shape() -> None:
    sentences, titles, _ = load_sentences(BEIR_DIR)
    [block] = generate_rows(4000, sentences, titles, seed=0)
    words = np.array(
        [len(t.split()) + len(x.split()) for t, x in zip(block["title"], block["text"], strict=True)]
    )
    assert abs(words.mean() - LENGTHS.mean_words) < 10  # about 160 words per document
    title_only = sum(1 for x in block["text"] if not x) / 4000
    assert 0.05 < title_only < 0.11
    assert (words > 400).any()  # a long tail: some documents need several chunks


def test_synthetic_fallback_without_beir(tmp_path: Path) -> None:
    sentences, titles, origin = load_sentences(tmp_path)  # no zip there
    assert origin.startswith("synthetic vocabulary")
    assert (sentences, titles) == synthetic_sentences()
    meta = write_corpus(tmp_path / "s.parquet", 50, beir_dir=tmp_path)
    assert meta["text"].startswith("synthetic") and pq.read_table(tmp_path / "s.parquet").num_rows == 50
