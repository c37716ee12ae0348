"""The scale benchmark's modes: what `--modes` accepts and the `run_batches` worker count each runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.scale import mode_workers, parse_modes


def test_modes_map_to_run_batches_workers() -> None:
    assert parse_modes("inprocess, 1,auto,") == ["inprocess", "1", "auto"]
    assert parse_modes("") == ["auto"]
    # None lets the pipeline choose (`workers_for`), 0 is in-process threads, N worker processes.
    assert [mode_workers(m) for m in ("auto", "inprocess", "1", "3")] == [None, 0, 1, 3]
    # `onewriter` chooses workers as auto does; the child passes `writer=False` to run_batches.
    assert parse_modes("auto,onewriter") == ["auto", "onewriter"] and mode_workers("onewriter") is None


@pytest.mark.parametrize("bad", ["0", "threads", "-1", "1.5"])
def test_a_mode_that_is_not_auto_inprocess_or_a_count_is_refused(bad: str) -> None:
    with pytest.raises(
        SystemExit,
        match=re.escape(f"--modes: {bad!r} is not auto, inprocess, onewriter or a worker count >= 1"),
    ):
        parse_modes(bad)


def test_each_build_index_call_is_timed_per_collection(tmp_path: Path) -> None:
    """The harness wraps a real edge store's `build_index` and keeps wall and CPU per collection."""
    import uuid

    import numpy as np

    from benchmarks.scale import _short, _time_builds
    from ingest.config import CollectionSpec
    from ingest.stores.edge import EdgeStore

    rng = np.random.default_rng(0)
    with EdgeStore(tmp_path) as store:
        timings = _time_builds(store)
        for name, spec in (
            ("corpus-171332-seed0-d16-none", CollectionSpec(16, "none")),
            ("corpus-171332-seed0-d16-binary", CollectionSpec(16, "binary")),
        ):
            store.ensure_collection(name, spec)
            ids = [str(uuid.UUID(int=i)) for i in range(500)]
            store.upsert(name, ids, rng.standard_normal((500, 16)).astype(np.float32), [{} for _ in ids])
            store.build_index(name)
            assert store.collection_spec(name)["indexed_vectors_count"] == 500
    assert list(timings) == ["corpus-171332-seed0-d16-none", "corpus-171332-seed0-d16-binary"]
    assert all(t["wall_s"] >= 0 and t["cpu_s"] >= 0 for t in timings.values())
    assert [_short(n) for n in timings] == ["d16-none", "d16-binary"]


@pytest.mark.parametrize("matrix", ["default", "published"])
def test_ef_construct_builds_every_graph_of_the_matrix_with_it(tmp_path: Path, matrix: str) -> None:
    import argparse

    from benchmarks.scale import _bench_config
    from ingest.config import resolve_collections

    args = argparse.Namespace(
        matrix=matrix, model="random-1024", data_dir=tmp_path, float_hnsw=False, ef_construct=64
    )
    specs = resolve_collections(_bench_config(args), 1024)
    if matrix == "published":
        assert [(s.dim, s.quantization, s.hnsw_m) for s in specs] == [(1024, "binary", 16)]
    else:
        assert len(specs) == 15 and {s.hnsw_m for s in specs if s.quantization == "none"} == {0}
    assert {s.hnsw_ef_construct for s in specs} == {64}
    # Without it, the collections' default.
    args.ef_construct = None
    assert {s.hnsw_ef_construct for s in resolve_collections(_bench_config(args), 1024)} == {100}


@pytest.mark.parametrize("ef_construct", [None, 64])
def test_quantizations_narrow_the_default_matrix(tmp_path: Path, ef_construct: int | None) -> None:
    import argparse

    from benchmarks.scale import _bench_config
    from ingest.config import resolve_collections

    args = argparse.Namespace(
        matrix="default",
        model="random-1024",
        data_dir=tmp_path,
        float_hnsw=False,
        ef_construct=ef_construct,
        quantizations="none,binary",
    )
    specs = resolve_collections(_bench_config(args), 1024)
    # The matrix issue 14 was filed against: 5 dims x none/binary, graphs on the binary ones only.
    assert sorted((s.dim, s.quantization) for s in specs) == sorted(
        (d, q) for d in (1024, 512, 256, 128, 64) for q in ("none", "binary")
    )
    assert {s.quantization for s in specs if s.hnsw_m} == {"binary"}
    assert {s.hnsw_ef_construct for s in specs} == {ef_construct or 100}
