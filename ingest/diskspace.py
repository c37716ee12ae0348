"""How much disk an ingest into qdrant-edge will take, and a refusal before loading when it will not fit.

Model per collection of `n` points at dimension `d` (qdrant-edge 0.9.0 segment files, measured below):

- original vectors `vector_storage/matrix.dat`: `n * d * 4` (float32, whatever the quantization);
- quantized copy `quantized.data`: binary `n * ceil(d * bits / 128) * 16` (packed in 128-bit words:
  64-d one-bit takes 16 bytes, not 8), scalar int8 `n * (d + 4)` (a float offset per vector);
- payload `payload_storage/page_*.dat`: `n * (PAYLOAD_OVERHEAD + text bytes)` with the chunk text
  stored, `n * PAYLOAD_OVERHEAD` without (doc id, chunk number, source, offsets);
- HNSW `vector_index/`: level 0 holds up to `2 * m` links of 4 bytes per point, upper levels about
  1/m of that again: budgeted uncompressed at `n * (2 * m * 4 + 16)` (the engine stores them
  compressed: measured 24-32 bytes per point for m = 16, so this is an upper bound);
- id tracker `id_tracker.mappings` + `.versions`: ~32 bytes per point (UUID -> offset, version);
- a fixed `SEGMENT_FIXED` per collection (configs, bitmasks, the pre-allocated tracker pages).

Building the index needs far more free space than the collection will take, for two reasons:

- the engine checks before optimizing that the free space is at least twice the *apparent* size of the
  segments it rewrites (`check_segments_size` in qdrant's `segment_optimizer.rs`: `2 * dir_disk_size`,
  else `Not enough space available for optimization, needed: X, available: Y`);
- an appendable segment's files are sparse and pre-sized: vectors in 32 MiB `chunk_N.mmap` files,
  binary quantized copies in 32 MiB `quantized_data/chunk_N.mmap` files (scalar ones are only built
  when indexing: they need the quantiles), payload in 32 MiB
  `page_N.dat` files, plus 1 MiB trackers and flags. So a loaded, not yet indexed
  collection of a few thousand points already has an apparent size of ~66 MiB (measured: 69,355,114 B
  for 3,000 64-d points, 103,721,411 B for 30,000 points with 1.5 kB texts), and its index build asks
  for ~140 MiB free (measured on NFCorpus at 64-d: "needed: 139.94 MiB").

Collections are loaded together and indexed one after the other, so `estimate_bytes` is every finished
collection plus twice the largest apparent size of an unindexed one: the free space the last index
build can ask for. (The new segment written beside the old one while indexing takes real blocks less
than that check.)

Calibration (2026-12-04, `python -m ingest nfcorpus --dims 256,64 --quantization none,binary,scalar`,
random 256-d static model, NFCorpus: 3,633 docs -> 3,974 chunks, text stored; mean chunk text
1,456 bytes), blocks allocated per collection (`du -s --block-size=1`; `du -sb` prints 72-76 MB
because `page_0.dat` is a 32 MiB sparse file):

    collection      measured      matrix.dat  quantized  payload page  HNSW links+graph  id tracker
    d256-none       9,441,280     4,069,380   -          4,902,912     140,991           115,254
    d256-binary     9,629,696     4,069,380   127,168    4,902,912     169,944           115,254
    d256-scalar    10,485,760     4,069,380   1,033,240  4,902,912     140,258           115,254
    d64-none        6,365,184     1,017,348   -          4,902,912     118,224           115,254
    d64-binary      6,483,968     1,017,348   63,584     4,902,912     140,497           115,254
    d64-scalar      6,647,808     1,017,348   270,232    4,902,912     118,872           115,254

The payload page takes 1,234 bytes per point for 1,456 bytes of text (the engine compresses values),
so `PAYLOAD_OVERHEAD` + the full text length over-estimates it by ~28%; HNSW is over-estimated by its
uncompressed bound (572 kB against 118-170 kB). For that run the model gives 60.3 MB finished
(measured: 49.1 MB, so +23%), and `estimate_bytes` 267.6 MB: + 2 x 103.1 MB (the binary 256-d
collection) for the index build's check + 1 MiB of bookkeeping. A 20 MB disk can never hold even this
small run: it is refused upfront.

Since the chunk text is stored once per dataset (in the first collection of the run, the manifests'
`text_collection`), only that collection's payload carries it; the same run (`--float-hnsw`, stand-in
model) now takes 28,536,832 bytes in all, against 31.4 MB from the model (+10%), and `estimate_bytes`
gives 238.7 MB. A collection without an HNSW graph (`hnsw_m` 0: the default matrix's float ones) has no
graph bytes.
tests/ingest/test_diskspace.py checks the model against real qdrant-edge collections.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingest.errors import InputError

PAYLOAD_OVERHEAD = 128
ID_TRACKER_PER_POINT = 32
HNSW_UPPER_LEVELS_PER_POINT = 16
SEGMENT_FIXED = 256 << 10
# Appendable segments grow their vector and payload files in sparse chunks of this size.
ENGINE_CHUNK = 32 << 20
# Trackers and deletion flags of an appendable segment (sparse, pre-sized).
APPENDABLE_FIXED = 2 << 20
BINARY_BITS = {"one_bit": 1.0, "two_bits": 2.0, "one_and_half_bits": 1.5}
# Checkpoints, manifests, run directories: a few kB per batch; this covers them with room to spare.
BOOKKEEPING_BYTES = 1 << 20


class SpecLike(Protocol):
    """What the estimate reads of a collection spec (`ingest.options.CollectionSpec` fits: read-only
    members, so its frozen fields and Literal types match)."""

    @property
    def dim(self) -> int: ...

    @property
    def quantization(self) -> str: ...

    @property
    def hnsw_m(self) -> int: ...

    @property
    def binary_encoding(self) -> str: ...


@dataclass(frozen=True)
class CollectionEstimate:
    """Estimated bytes of one finished collection, by part.

    Attributes:
        vectors: Original float32 vectors.
        quantized: The quantized copy (0 without quantization).
        payload: Payload storage.
        hnsw: HNSW links (uncompressed upper bound).
        id_tracker: Point id mappings and versions.
        fixed: Per-segment fixed files.
    """

    vectors: int
    quantized: int
    payload: int
    hnsw: int
    id_tracker: int
    fixed: int

    @property
    def total(self) -> int:
        """Every part added up."""
        return self.vectors + self.quantized + self.payload + self.hnsw + self.id_tracker + self.fixed


def quantized_bytes_per_vector(dim: int, quantization: str, binary_encoding: str = "one_bit") -> int:
    """Bytes of one vector's quantized copy as qdrant-edge stores it (0 for `none`)."""
    if quantization == "binary":
        bits = dim * BINARY_BITS.get(binary_encoding, 2.0)
        return math.ceil(bits / 128) * 16
    if quantization == "scalar":
        return dim + 4
    return 0


def collection_estimate(
    spec: SpecLike, points: int, *, store_text: bool, avg_text_bytes: float
) -> CollectionEstimate:
    """Estimate one collection's bytes on disk once loaded and indexed (see the module docstring).

    Args:
        spec: The collection's dim, quantization, binary encoding and HNSW m.
        points: Chunks (points) it will hold.
        store_text: Whether chunk texts are stored in the payload.
        avg_text_bytes: Mean UTF-8 bytes of a chunk's text.

    Returns:
        The estimate by part.
    """
    n = max(0, int(points))
    text = avg_text_bytes if store_text else 0.0
    return CollectionEstimate(
        vectors=n * spec.dim * 4,
        quantized=n * quantized_bytes_per_vector(spec.dim, spec.quantization, spec.binary_encoding),
        payload=int(n * (PAYLOAD_OVERHEAD + text)),
        hnsw=n * (2 * spec.hnsw_m * 4 + HNSW_UPPER_LEVELS_PER_POINT) if spec.hnsw_m else 0,
        id_tracker=n * ID_TRACKER_PER_POINT,
        fixed=SEGMENT_FIXED,
    )


def unindexed_apparent_bytes(spec: SpecLike, points: int, *, store_text: bool, avg_text_bytes: float) -> int:
    """The apparent size (`du -sb`) of a loaded, not yet indexed collection: its sparse 32 MiB vector
    chunks and payload pages, trackers and id tracker; what the engine's pre-optimization check doubles.
    """
    est = collection_estimate(spec, points, store_text=store_text, avg_text_bytes=avg_text_bytes)
    chunks = max(1, math.ceil(est.vectors / ENGINE_CHUNK)) + max(1, math.ceil(est.payload / ENGINE_CHUNK))
    if spec.quantization == "binary":  # binary copies get chunk files of their own while appendable
        chunks += max(1, math.ceil(est.quantized / ENGINE_CHUNK))
    return chunks * ENGINE_CHUNK + APPENDABLE_FIXED + est.id_tracker + est.fixed


def estimate_bytes(
    specs: Iterable[SpecLike], chunks_estimate: int, store_text: bool, avg_text_bytes: float
) -> int:
    """Estimate the free space an ingest into qdrant-edge needs, at its peak (the last index build).

    Args:
        specs: Every collection the run loads, the text collection (the first) first.
        chunks_estimate: Chunks (points per collection) the run will store.
        store_text: Whether chunk texts are stored (in the first collection's payloads only).
        avg_text_bytes: Mean UTF-8 bytes of a chunk's text.

    Returns:
        Finished collections + twice the largest unindexed apparent size (the engine's check before
        it optimizes) + bookkeeping.
    """
    specs = list(specs)
    if not specs:
        return BOOKKEEPING_BYTES
    n, text = chunks_estimate, avg_text_bytes
    # The text is stored once per dataset, in the first collection (the manifests' `text_collection`).
    texts = [store_text and i == 0 for i in range(len(specs))]
    finished = sum(
        collection_estimate(s, n, store_text=t, avg_text_bytes=text).total
        for s, t in zip(specs, texts, strict=True)
    )
    check = max(
        2 * unindexed_apparent_bytes(s, n, store_text=t, avg_text_bytes=text)
        for s, t in zip(specs, texts, strict=True)
    )
    return finished + check + BOOKKEEPING_BYTES


def need_for_run(
    specs: Iterable[SpecLike],
    *,
    total_docs: int,
    sample_docs: int,
    sample_chunks: int,
    sample_text_bytes: int,
    store_text: bool,
    existing_bytes: int = 0,
) -> int:
    """The bytes a run still needs, extrapolated from its first encoded batch (before its first upsert).

    Args:
        specs: Every collection the run loads.
        total_docs: Documents in the source (BEIR: corpus lines; Parquet: rows; HF: rows).
        sample_docs: Documents of the first batch.
        sample_chunks: Chunks of the first batch.
        sample_text_bytes: UTF-8 bytes of the first batch's chunk texts.
        store_text: Whether chunk texts are stored in the payload.
        existing_bytes: What the run's collections already occupy (`allocated_bytes`), for a resumed run.

    Returns:
        `estimate_bytes` for `total_docs * chunks per doc` (10% margin) minus `existing_bytes`, at least 0.
    """
    per_doc = sample_chunks / max(1, sample_docs)
    chunks = math.ceil(total_docs * per_doc * 1.1)
    avg_text = sample_text_bytes / max(1, sample_chunks)
    return max(0, estimate_bytes(specs, chunks, store_text, avg_text) - existing_bytes)


def allocated_bytes(path: Path) -> int:
    """Bytes a file tree really occupies (blocks allocated, as `du -s`; sparse files count what they use)."""
    path = Path(path)
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the file system of `path` or its nearest existing ancestor."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def human_bytes(n: float) -> str:
    """Format a byte count as `12.3 MB` (decimal units, as `df -H` prints)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_free_space(path: Path, need: int, force: bool = False) -> int:
    """Refuse a run that will not fit, before anything is loaded.

    Args:
        path: Where the run writes (the data dir or its `qdrant/`; need not exist yet).
        need: Bytes the run still has to write (`estimate_bytes` minus what resumed collections hold).
        force: Only log the shortfall instead of raising (the user accepts the risk).

    Returns:
        The free bytes found.

    Raises:
        InputError: `need X, free Y at <path>: free space or pass --force`, when `need` > free and
            not `force`.
    """
    free = free_bytes(path)
    if need > free and not force:
        raise InputError(
            f"not enough disk space for this ingest: need {human_bytes(need)}, free {human_bytes(free)} at "
            f"{path}: free space or pass --force (an estimate; a run that fills the disk stops with a "
            "message and keeps its stored batches)"
        )
    return free
