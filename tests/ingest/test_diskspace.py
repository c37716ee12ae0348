"""The disk-space estimate against real qdrant-edge collections, and the refusal before loading."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.diskspace import (
    allocated_bytes,
    check_free_space,
    collection_estimate,
    estimate_bytes,
    free_bytes,
    human_bytes,
    need_for_run,
    quantized_bytes_per_vector,
    unindexed_apparent_bytes,
)
from ingest.errors import InputError
from ingest.options import CollectionSpec
from ingest.stores.edge import EdgeStore


def test_quantized_sizes_match_the_engine_files() -> None:
    # Measured quantized.data sizes / 3,974 points (see the module docstring).
    assert quantized_bytes_per_vector(256, "binary") == 127_168 // 3974 == 32
    assert quantized_bytes_per_vector(64, "binary") == 63_584 // 3974 == 16
    assert quantized_bytes_per_vector(256, "scalar") == 1_033_240 // 3974 == 260
    assert quantized_bytes_per_vector(64, "scalar") == 270_232 // 3974 == 68
    assert quantized_bytes_per_vector(1024, "binary", "two_bits") == 256
    assert quantized_bytes_per_vector(1024, "none") == 0


def test_estimate_of_the_calibration_run() -> None:
    # NFCorpus (3,974 chunks, 1,456 text bytes each on average) into 256/64 × none/binary/scalar, the
    # chunk text in the first collection only (text once per dataset), float collections with graphs.
    specs = [CollectionSpec(dim=d, quantization=q) for d in (256, 64) for q in ("none", "binary", "scalar")]
    parts = [
        collection_estimate(s, 3974, store_text=i == 0, avg_text_bytes=1456) for i, s in enumerate(specs)
    ]
    finished = sum(p.total for p in parts)
    measured = 28_536_832  # du -s --block-size=1 of the six collections (`--float-hnsw`, this layout)
    assert measured < finished < 1.3 * measured
    # The index build's check: twice the apparent size of the largest unindexed collection. With the
    # text: 2 × 32 MiB vector + payload chunks (~66 MiB); the binary one holds no text but gets a chunk
    # file of its own for its quantized copies (+32 MiB), which makes it the largest.
    apparent = unindexed_apparent_bytes(specs[0], 3974, store_text=True, avg_text_bytes=1456)
    assert apparent == 2 * (32 << 20) + (2 << 20) + 3974 * 32 + (256 << 10)
    quantized = unindexed_apparent_bytes(specs[1], 3974, store_text=False, avg_text_bytes=1456)
    assert quantized == apparent + (32 << 20)
    assert estimate_bytes(specs, 3974, True, 1456) == finished + 2 * quantized + (1 << 20)
    assert 238e6 < estimate_bytes(specs, 3974, True, 1456) < 239e6
    no_text = estimate_bytes(specs, 3974, False, 1456)
    assert no_text == estimate_bytes(specs, 3974, True, 1456) - 3974 * 1456  # the one text collection's
    # A collection without a graph (the default matrix's float ones) has no HNSW bytes.
    assert (
        collection_estimate(CollectionSpec(dim=64, hnsw_m=0), 3974, store_text=False, avg_text_bytes=0).hnsw
        == 0
    )


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[CollectionSpec], int, int]]:
    """Three real 64-d collections of 3,000 points with 1,000-byte texts, indexed.

    The texts are random words (English-like letters and spaces): the engine compresses payloads,
    and a repeated character would take almost no room at all.
    """
    root = tmp_path_factory.mktemp("edge") / "qdrant"
    specs = [CollectionSpec(dim=64, quantization=q) for q in ("none", "binary", "scalar")]
    n, text_bytes = 3000, 1000
    store = EdgeStore(root)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 64)).astype("float32")
    ids = [str(uuid.uuid5(uuid.NAMESPACE_OID, str(i))) for i in range(n)]
    letters = np.frombuffer(b"etaoinshrdlucmfwypvbgkjqxz     ", dtype=np.uint8)
    texts = [rng.choice(letters, text_bytes).tobytes().decode() for _ in range(n)]
    payloads = [
        {"doc_id": str(i), "chunk_no": 0, "source": "t", "char_start": 0, "char_end": 1000, "text": texts[i]}
        for i in range(n)
    ]
    for spec in specs:
        name = f"t-{spec.quantization}"
        store.ensure_collection(name, spec)
        store.upsert(name, ids, vectors, payloads)
        store.flush(name)
        apparent = sum(
            f.stat().st_size for f in (root / name / "shard" / "segments").rglob("*") if f.is_file()
        )
        estimated = unindexed_apparent_bytes(spec, n, store_text=True, avg_text_bytes=text_bytes)
        # What the engine doubles before it optimizes: the estimate is close and never under.
        assert apparent <= estimated <= apparent + (1 << 20), (spec.quantization, apparent, estimated)
        store.build_index(name)
    store.close()
    yield root, specs, n, text_bytes


def test_estimate_bounds_real_collections(loaded: tuple[Path, list[CollectionSpec], int, int]) -> None:
    root, specs, n, text_bytes = loaded
    for spec in specs:
        measured = allocated_bytes(root / f"t-{spec.quantization}")
        estimated = collection_estimate(spec, n, store_text=True, avg_text_bytes=text_bytes).total
        # Never under: the refusal must not let a run through that cannot fit; not wildly over either.
        assert measured <= estimated <= 1.6 * measured, (spec.quantization, measured, estimated)
    # Sparse files count what they occupy: the 32 MiB payload page is far from fully allocated.
    assert allocated_bytes(root) < sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_check_free_space_refuses_with_need_free_and_where(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)
    assert check_free_space(tmp_path / "data" / "qdrant", 1000) == pytest.approx(free, rel=0.01)
    with pytest.raises(InputError) as info:
        check_free_space(tmp_path / "data", free * 2)
    message = str(info.value)
    assert message.startswith(f"not enough disk space for this ingest: need {human_bytes(free * 2)}, free ")
    assert f" at {tmp_path / 'data'}: free space or pass --force (" in message
    assert check_free_space(tmp_path / "data", free * 2, force=True) > 0
    assert not (tmp_path / "data").exists()  # nothing created


def test_check_free_space_on_a_small_tmpfs(tmp_path: Path) -> None:
    """On a 20 MB tmpfs (when mounting is permitted; else the directory's real file system is used
    with a need above its free space) the NFCorpus default run is refused before loading."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )
    try:
        specs = [
            CollectionSpec(dim=d, quantization=q) for d in (256, 64) for q in ("none", "binary", "scalar")
        ]
        need = estimate_bytes(specs, 3974, True, 1456) if mounted else free_bytes(where) + 1
        with pytest.raises(InputError, match=r"need .* free .* at .*small: free space or pass --force"):
            check_free_space(where, need)
        if mounted:
            assert free_bytes(where) <= 20 << 20
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def test_need_for_run_extrapolates_the_first_batch() -> None:
    specs = [CollectionSpec(dim=64, quantization="none")]
    # NFCorpus's first 512 docs gave 560 chunks of 1,456 bytes on average; 3,633 docs in all.
    need = need_for_run(
        specs,
        total_docs=3633,
        sample_docs=512,
        sample_chunks=560,
        sample_text_bytes=560 * 1456,
        store_text=True,
    )
    chunks = -(-3633 * 560 * 11 // (512 * 10))  # ceil(3633 * 560 / 512 * 1.1)
    assert need == estimate_bytes(specs, chunks, True, 1456)
    resumed = need_for_run(
        specs,
        total_docs=3633,
        sample_docs=512,
        sample_chunks=560,
        sample_text_bytes=560 * 1456,
        store_text=True,
        existing_bytes=need - 1000,
    )
    assert resumed == 1000
    assert (
        need_for_run(
            specs, total_docs=0, sample_docs=0, sample_chunks=0, sample_text_bytes=0, store_text=True
        )
        > 0
    )
