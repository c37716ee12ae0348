"""The fast exact encoder against the libraries it reproduces: token ids and normalised vectors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from ingest.encoder.fast import FastStaticEncoder, normalise_rows
from ingest.encoder.models import build_random_static_model, teacher_tokenizer
from ingest.encoder.static import Encoder, load_encoder
from ingest.encoder.wordpiece import WordPieceIds, token_ids_reference, unsupported_reason
from tests.ingest.encoder.texts import VARIED, fuzz_texts


def test_token_ids_identical_on_varied_text(small_encoder: Encoder) -> None:
    ref = token_ids_reference(small_encoder.tokenizer, VARIED)
    got = small_encoder.token_ids(VARIED)
    for text, a, b in zip(VARIED, got, ref, strict=True):
        assert a == b, f"ids differ for {text[:60]!r}"
    assert small_encoder.count_tokens(VARIED) == [len(r) for r in ref]
    assert any(100 in r for r in ref), "the list must exercise [UNK]"
    assert max(len(r) for r in ref) > 512, "the list must hold a text longer than 512 tokens"


def test_token_ids_identical_on_fuzz(small_encoder: Encoder) -> None:
    texts = fuzz_texts(400, seed=7)
    assert small_encoder.token_ids(texts) == token_ids_reference(small_encoder.tokenizer, texts)


def test_added_tokens_match_case_sensitively_like_the_tokenizer() -> None:
    from tokenizers import AddedToken

    tokenizer = teacher_tokenizer()
    tokenizer.add_tokens([AddedToken("zzqx", normalized=False), AddedToken("<Doc>", normalized=False)])
    texts = [
        "ZZQX zzqx Zzqx xzzqxy",
        "A <Doc> and <doc> and <DOC>",
        "plain Text",
        "[MASK] [Mask]",
        "[MA\x1cSK] and [MASK\x1c] zz\x1dqx [MA\x00SK] zz\x00qx",
    ]
    flat, ends = WordPieceIds(tokenizer).batch(texts)
    got = [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    ref = token_ids_reference(tokenizer, texts)
    assert got == ref
    assert ref[0].count(tokenizer.token_to_id("zzqx")) == 2  # "zzqx" alone and inside "xzzqxy"
    spaced = teacher_tokenizer()
    spaced.add_tokens([AddedToken("new york", normalized=False)])
    assert unsupported_reason(spaced) == "added token 'new york' contains whitespace"


def test_every_code_point_tokenises_identically() -> None:
    tokenizer = teacher_tokenizer()
    ids = WordPieceIds(tokenizer)
    # Every BMP code point (surrogates excepted), a sample of the others (VARIED covers the
    # astral characters that matter: emoji, musical symbols, Kawi). 24 code points per text, each
    # inside a word, alone, and after an uppercase letter.
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and (c < 0x10000 or c % 23 == 0)]
    texts = [
        " ".join(f"a{chr(c)}b {chr(c)} Q{chr(c)}" for c in cps[i : i + 24]) for i in range(0, len(cps), 24)
    ]
    flat, ends = ids.batch(texts)
    ref = token_ids_reference(tokenizer, texts)
    got = [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    bad = [t for t, g, r in zip(texts, got, ref, strict=True) if g != r]
    assert not bad, f"{len(bad)} texts differ, first: {bad[0][:80]!r}"


def test_fast_equals_sentence_transformers(small_encoder: Encoder, beir_sample: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(small_encoder.location.path), device="cpu")
    texts = VARIED + fuzz_texts(100, seed=3) + beir_sample
    ref = np.asarray(st.encode(texts, normalize_embeddings=True), dtype=np.float32)
    got = small_encoder.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 64)
    assert np.abs(got - ref).max() < 1e-5
    # ST's own token ids (what its EmbeddingBag averages) match ours.
    st_ids = [e.ids for e in st[0].tokenizer.encode_batch(texts, add_special_tokens=False)]
    assert small_encoder.token_ids(texts) == st_ids


def test_empty_and_tokenless_texts_give_zero_vectors(small_encoder: Encoder) -> None:
    vecs = small_encoder.encode(["", "   ", "\x00\x01", "word", "\u0301"])
    norms = np.linalg.norm(vecs, axis=1)
    assert not np.isnan(vecs).any()
    np.testing.assert_allclose(norms, [0, 0, 0, 1, 0], atol=1e-6)
    assert small_encoder.encode([]).shape == (0, 64)


def test_model2vec_semantics_on_standin(standin_dir: Path, beir_sample: list[str]) -> None:
    from model2vec import StaticModel

    enc = load_encoder(str(standin_dir), data_dir=standin_dir.parents[1])
    assert enc.describe()["format"] == "model2vec"
    unk = enc.tokenizer.token_to_id("[UNK]")
    assert enc.describe()["dropped_token_ids"] == [unk]
    texts = VARIED + beir_sample[:100]
    model = StaticModel.from_pretrained(str(standin_dir), quantize_to="float32", force_download=False)
    ref = model.encode(texts, max_length=None, use_multiprocessing=False, normalize=True)
    got = enc.encode(texts)
    assert np.abs(got - ref).max() < 1e-5
    # Model2Vec's ids are the tokenizer's without [UNK]; ours are the tokenizer's.
    ours = enc.token_ids(texts)
    model.max_length = None  # its tokenizer truncates at 512 unless told otherwise
    assert [[i for i in ids if i != unk] for ids in ours] == model.tokenize(texts)
    assert ours == token_ids_reference(enc.tokenizer, texts)
    # A text of unknown tokens only has nothing to average: zero vector, as in Model2Vec.
    only_unk = enc.encode(["☃ ꙮ"])
    assert enc.token_ids(["☃ ꙮ"]) == [[unk, unk]] and not only_unk.any()


def test_plain_path_matches_fast_path(small_encoder: Encoder, tmp_path: Path) -> None:
    plain = load_encoder(str(small_encoder.location.path), data_dir=tmp_path, fast=False)
    assert plain.describe()["fast_path"] is None
    np.testing.assert_allclose(plain.encode(VARIED), small_encoder.encode(VARIED), atol=1e-5)


def test_other_tokenizer_types_use_the_tokenizer(tmp_path: Path) -> None:
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.normalizer = normalizers.NFKC()
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(VARIED * 3, trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]"]))
    assert unsupported_reason(bpe) is not None
    path = build_random_static_model(tmp_path / "bpe", dim=16, tokenizer=bpe)
    enc = load_encoder(str(path), data_dir=tmp_path)
    assert enc.describe()["fast_path"] == "tokenizer-batch"
    np.testing.assert_allclose(enc.encode(VARIED), enc.plain_encode(VARIED), atol=1e-5)
    assert enc.token_ids(VARIED) == token_ids_reference(bpe, VARIED)


def test_worker_processes_give_the_same_vectors(
    small_encoder: Encoder, beir_sample: list[str], tmp_path: Path
) -> None:
    texts = (beir_sample * 4)[:1100] + VARIED
    pooled = load_encoder(str(small_encoder.location.path), data_dir=tmp_path, workers=2)
    try:
        assert pooled.describe()["workers"] == 2
        np.testing.assert_array_equal(pooled.encode(texts), small_encoder.encode(texts))
    finally:
        pooled.close()


def test_fast_encoder_rejects_ids_outside_the_table() -> None:
    enc = FastStaticEncoder(teacher_tokenizer(), np.ones((10, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="outside the embedding table"):
        enc.encode(["hello world"])


def test_normalise_rows_is_zero_safe() -> None:
    vecs = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    out = normalise_rows(vecs)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_caches_stay_exact_across_batches_and_resets(
    small_model_dir: Path, tmp_path: Path, beir_sample: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.encoder.wordpiece as wordpiece

    texts = VARIED + fuzz_texts(60, seed=5) + beir_sample[:120]
    enc = load_encoder(str(small_model_dir), data_dir=tmp_path)
    reference = enc.plain_encode(texts)
    whole = enc.encode(texts)
    # Batch after batch, texts repeat in new company: cached rows must be found again, not mixed up.
    monkeypatch.setattr(wordpiece, "MAX_CACHE_ENTRIES", 400)  # several resets along the way
    fresh = load_encoder(str(small_model_dir), data_dir=tmp_path)
    rng = random.Random(0)
    for _ in range(4):
        order = rng.sample(range(len(texts)), len(texts))
        for start in range(0, len(order), 37):
            part = order[start : start + 37]
            got = fresh.encode([texts[i] for i in part])
            np.testing.assert_array_equal(got, whole[part])
            assert fresh.count_tokens([texts[i] for i in part]) == [
                len(enc.token_ids([texts[i]])[0]) for i in part
            ]
    assert fresh._fast._ids is not None and fresh._fast._ids._rows.count < 400 + 4000
    assert np.abs(whole - reference).max() < 1e-5


def test_table_summed_in_column_slices_matches_the_library(
    tmp_path: Path, beir_sample: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.encoder.fast as fast
    from ingest.encoder.fast import SLICE_DIMS, release_mapped_pages

    path = build_random_static_model(tmp_path / "random-300", dim=300, seed=2)
    texts = VARIED + beir_sample[:100]
    few = load_encoder(str(path), data_dir=tmp_path)
    from_table = few.encode(texts)  # fewer texts than SLICE_AFTER_TEXTS: summed from the table itself
    assert few._fast._slices is None and few._fast._slicing is None
    monkeypatch.setattr(fast, "SLICE_AFTER_TEXTS", 0)
    enc = load_encoder(str(path), data_dir=tmp_path)
    got = enc.encode(texts)
    np.testing.assert_array_equal(got, from_table)  # the same sums, bit for bit
    slices = enc._fast._table_slices()
    assert [(a, b) for a, b, _ in slices] == [
        (0, SLICE_DIMS),
        (SLICE_DIMS, 2 * SLICE_DIMS),
        (2 * SLICE_DIMS, 300),
    ]
    assert np.abs(got - enc.plain_encode(texts)).max() < 1e-5
    # The memory-mapped table stays readable after its pages were handed back.
    release_mapped_pages(enc.files.table)
    np.testing.assert_array_equal(np.asarray(enc.files.table[:3, :5]), slices[0][2].numpy()[:3, :5])


def test_table_slices_are_copied_in_the_background_once_enough_texts_were_bagged(
    tmp_path: Path, beir_sample: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.encoder.fast as fast

    monkeypatch.setattr(fast, "SLICE_AFTER_TEXTS", 40)
    path = build_random_static_model(tmp_path / "random-300", dim=300, seed=3)
    texts = VARIED + beir_sample[:50]
    counting = load_encoder(str(path), data_dir=tmp_path)
    assert counting.count_tokens(texts) == [len(ids) for ids in counting.token_ids(texts)]
    assert counting._fast._slicing is None and counting._fast._slices is None  # counting copies nothing
    enc = load_encoder(str(path), data_dir=tmp_path)
    enc._fast.bag(texts[:39])
    assert enc._fast._slicing is None and enc._fast._slices is None  # 39 texts: not yet
    bag = enc._fast.bag(texts)
    assert enc._fast._slicing is not None  # started by the bag, joined by the next embed
    got = enc._fast.embed(bag)
    assert enc._fast._slicing is None and enc._fast._slices is not None
    np.testing.assert_array_equal(got, counting.encode(texts))
    assert np.abs(got - enc.plain_encode(texts)).max() < 1e-5
    closing = load_encoder(str(path), data_dir=tmp_path)
    closing._fast.bag(texts)
    assert closing._fast._slicing is not None
    closing.close()  # waits for the copy under way
    assert closing._fast._slicing is None
