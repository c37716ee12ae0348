"""What a configuration costs to serve, measured from the engine's own files of the shard.

A qdrant-edge shard (`<data dir>/qdrant/<collection>/shard/segments/<segment>/`) keeps each part of a
collection in its own files, so their sizes are the memory each part takes when loaded:

    vector_storage/matrix.dat, vectors/     original float32 vectors (`original_vectors`)
    vector_storage/quantized.data, ...      binary / int8 codes (`quantized_vectors`)
    vector_storage/deleted*                 deletion flags (`flags`)
    vector_index/ (graph.bin, links*.bin)   the HNSW graph (`hnsw_graph`)
    id_tracker.*                            external id ↔ offset mappings and versions (`id_tracker`)
    payload_index/                          payload field indexes (`payload_index`)
    payload_storage/                        payloads, memmapped, read only for the returned hits

Sizes are the bytes stored (`min(size, allocated blocks)`): the engine preallocates sparse files
(payload pages, flags) whose holes take neither disk nor memory.

Serving RAM of a configuration × search mode (`serving_cost`) is what the search touches on every query
and so must stay in memory: the id tracker, the deletion flags and the payload index always; then
    exact                 + the original vectors (the full scan reads them all)
    float HNSW            + the original vectors + the HNSW graph
    quantized, any HNSW   + the quantized vectors + the HNSW graph. The original vectors can stay on disk
                          (memmapped, `on_disk = true`): only rescoring reads them, `candidates × dim × 4`
                          bytes per query (`rescore_disk_bytes_per_query`, candidates = limit × oversampling
                          of every search the query made; a memmapped read costs at least one 4 KiB page
                          per candidate when it is not cached). A collection ingested with the default
                          `on_disk = false` also holds them in RAM (`resident_as_configured_bytes`).
Payload storage is memmapped and read only for the hits returned; it is reported, not counted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.config import CollectionSpec
from ingest.stores.base import SearchParams, VectorStore

PARTS: tuple[str, ...] = (
    "original_vectors",
    "quantized_vectors",
    "hnsw_graph",
    "id_tracker",
    "flags",
    "payload_index",
    "payload_storage",
    "metadata",
)
# Parts every search touches, whatever the mode.
ALWAYS_IN_RAM: tuple[str, ...] = ("id_tracker", "flags", "payload_index")
FLOAT32_BYTES = 4


def part_of(relative: Path) -> str:
    """The part of a collection a file inside a segment directory holds (one of `PARTS`).

    Args:
        relative: The file's path relative to its segment directory.
    """
    top = relative.parts[0] if relative.parts else ""
    if top == "vector_storage":
        name = relative.parts[1] if len(relative.parts) > 1 else ""
        if name.startswith("quantized"):
            return "quantized_vectors"
        if name.startswith("deleted"):
            return "flags"
        if name.endswith(".json"):
            return "metadata"
        return "original_vectors"
    if top == "vector_index":
        return "metadata" if relative.name.endswith(".json") else "hnsw_graph"
    if top.startswith("id_tracker"):
        return "id_tracker"
    return top if top in ("payload_index", "payload_storage") else "metadata"


def stored_bytes(path: Path) -> int:
    """Bytes a file really stores: its size, or its allocated blocks when smaller (a sparse file)."""
    st = path.stat()
    blocks = getattr(st, "st_blocks", None)
    return int(st.st_size if blocks is None else min(st.st_size, blocks * 512))


@dataclass
class ShardFootprint:
    """The stored bytes of a shard's segments, by part.

    Attributes:
        directory: The shard directory.
        points: Points in the collection.
        parts: Part (`PARTS`) → bytes stored, summed over segments.
        segments: Segment directories found.
    """

    directory: str
    points: int
    parts: dict[str, int] = field(default_factory=dict)
    segments: int = 0

    def get(self, part: str) -> int:
        """Bytes of one part (0 when absent)."""
        return int(self.parts.get(part, 0))


def shard_footprint(shard_dir: Path, points: int) -> ShardFootprint:
    """Measure a qdrant-edge shard's segment files by part (see the module docstring).

    Args:
        shard_dir: The shard directory (holding `segments/`).
        points: Points in the collection.

    Returns:
        The footprint (empty parts when the shard has no segments).
    """
    parts = dict.fromkeys(PARTS, 0)
    segments_dir = shard_dir / "segments"
    segments = [p for p in segments_dir.iterdir() if p.is_dir()] if segments_dir.is_dir() else []
    for segment in segments:
        for file in _files(segment):
            parts[part_of(file.relative_to(segment))] += stored_bytes(file)
    return ShardFootprint(str(shard_dir), points, parts, len(segments))


def _files(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield Path(dirpath) / name


def store_footprint(store: VectorStore, name: str) -> ShardFootprint | None:
    """The footprint of a collection of an embedded (qdrant-edge) store; None for a server store,
    whose files are not on this machine.

    Args:
        store: The open store.
        name: Collection name.
    """
    root = getattr(store, "root", None)
    if getattr(store, "backend", None) != "edge" or root is None:
        return None
    from ingest.stores.edge import SHARD_DIR_NAME

    shard_dir = Path(root) / name / SHARD_DIR_NAME
    if not shard_dir.is_dir():
        return None
    return shard_footprint(shard_dir, store.count(name))


def in_ram_parts(spec: CollectionSpec, params: SearchParams) -> list[str]:
    """The parts a search touches on every query, so must keep in RAM (see the module docstring)."""
    if params.exact:
        return ["original_vectors", *ALWAYS_IN_RAM]
    if spec.quantization == "none" or params.ignore_quantization:
        return ["original_vectors", "hnsw_graph", *ALWAYS_IN_RAM]
    return ["quantized_vectors", "hnsw_graph", *ALWAYS_IN_RAM]


@dataclass
class ServingCost:
    """What one configuration × search mode needs to serve.

    Attributes:
        ram_bytes: Bytes that must stay in RAM.
        ram_per_vector: `ram_bytes` / points.
        rescore_disk_bytes_per_query: Mean bytes of original vectors read to rescore one query (0: none).
        detail: Parts counted, every part's bytes, what the collection as ingested keeps resident.
    """

    ram_bytes: int
    ram_per_vector: float
    rescore_disk_bytes_per_query: float
    detail: dict[str, Any]


def serving_cost(
    footprint: ShardFootprint,
    spec: CollectionSpec,
    params: SearchParams,
    *,
    rescored: bool,
    oversampling: float,
    chunk_hits_asked: list[int],
) -> ServingCost:
    """The serving cost of one search mode on a measured shard.

    Args:
        footprint: The shard's files by part.
        spec: The collection.
        params: The mode's search parameters.
        rescored: Whether the mode rescores with the original vectors.
        oversampling: The oversampling it runs with.
        chunk_hits_asked: Per query, the sum of the limits of the searches it made (the @10 search).

    Returns:
        RAM (total and per vector), rescoring disk read per query and the detail.
    """
    in_ram = in_ram_parts(spec, params)
    ram = sum(footprint.get(p) for p in in_ram)
    memmapped = [p for p in ("original_vectors",) if p not in in_ram and footprint.get(p)]
    resident = ram + (0 if spec.on_disk else sum(footprint.get(p) for p in memmapped))
    vector_bytes = spec.dim * FLOAT32_BYTES
    disk = 0.0
    if rescored and chunk_hits_asked:
        reads = [math.ceil(asked * oversampling) * vector_bytes for asked in chunk_hits_asked]
        disk = float(sum(reads) / len(reads))
    points = max(1, footprint.points)
    return ServingCost(
        ram_bytes=int(ram),
        ram_per_vector=ram / points,
        rescore_disk_bytes_per_query=disk,
        detail={
            "in_ram": in_ram,
            "memmapped": memmapped,
            "parts": dict(footprint.parts),
            "resident_as_configured_bytes": int(resident),
            "points": footprint.points,
            "segments": footprint.segments,
            "shard": footprint.directory,
        },
    )
