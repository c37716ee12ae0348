"""The streaming ingest: source → chunks → encoder → every configured collection.

`IngestJob` holds the steps as separate functions so a Prefect flow can run them as coarse
tasks; `IngestJob.run_batches` (which `run_ingest` calls) runs the same steps as a three-stage
pipeline (read, encode, upsert) overlapping through bounded queues (`ingest.run_modes`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ingest.batches import BatchResult, EncodedBatch
from ingest.checkpoint import Checkpoint
from ingest.chunking import SCHEME as CHUNKING_SCHEME
from ingest.chunking import Chunker
from ingest.config import CollectionSpec, IngestConfig, resolve_collections
from ingest.encode_batch import encode_docs
from ingest.errors import CollectionMismatchError, IngestError, InputError
from ingest.memory import peak_rss_mb, release_freed_memory
from ingest.parallel import EncodeRecipe, choose_workers, size_hint
from ingest.records import Chunk, Document, point_id
from ingest.run_ids import new_run_id
from ingest.run_modes import run_in_processes, run_threaded
from ingest.stores.base import VectorStore
from ingest.summary import IngestSummary

if TYPE_CHECKING:
    from ingest.sources.base import Rejection

log = logging.getLogger(__name__)


def slice_vectors(vectors: np.ndarray, dims: set[int]) -> dict[int, np.ndarray]:
    """Matryoshka: prefix-slice full-dimension vectors to each dim and re-normalise."""
    from ingest.encoder.static import slice_normalise

    full = vectors.shape[1]
    return {d: (vectors if d == full else slice_normalise(vectors, d)) for d in dims}


class IngestJob:
    """An opened ingest: source, encoder, store, collections and their checkpoints.

    Use `open`, then `run_batches` (or feed `process_batch`, or `encode_batch` + `store_batch`, with
    the batches of `pending_batches`, as a flow's tasks do), then `finalize`, then `close`.
    """

    def __init__(
        self,
        cfg: IngestConfig,
        source: Any,
        encoder: Any,
        store: Any,
        specs: list[CollectionSpec],
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.encoder = encoder
        self.store = store
        self.specs = specs
        self.dataset: str = source.name
        self.names = [s.name(self.dataset) for s in specs]
        self.chunker = Chunker.for_encoder(encoder, cfg.chunk_tokens, cfg.chunk_overlap)
        self.model_info: dict[str, Any] = encoder.describe()
        self.fingerprint = {
            "dataset": self.dataset,
            "source": _stable_source(source.describe()),
            "model": self.model_info.get("model_id"),
            "batch_docs": cfg.batch_docs,
            "limit": cfg.limit,
            "chunk_tokens": cfg.chunk_tokens,
            "chunk_overlap": cfg.chunk_overlap,
            "chunking": CHUNKING_SCHEME,
            "store_text": cfg.store_text,
        }
        self.checkpoints = {
            name: Checkpoint.load(self._checkpoint_path(name), self.fingerprint) for name in self.names
        }
        self.stage_seconds = {"read": 0.0, "encode": 0.0, "upsert": 0.0, "index": 0.0}
        self.resumed_batches = 0
        self.started = time.perf_counter()
        self.owns_store = True
        self.run_id = new_run_id()
        self.run_dir = cfg.data_dir / "runs" / self.dataset / self.run_id
        self.rejections_written = 0
        self._rejected_file: IO[str] | None = None
        if hasattr(source, "on_reject"):
            source.on_reject = self.record_rejection

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str, cfg: IngestConfig, *, store: VectorStore | None = None) -> IngestJob:
        """Resolve the source, load the encoder, open the store and create or check every collection.

        Args:
            target: What to ingest (see `run_ingest`).
            cfg: The run options.
            store: An open store to use instead of the one `cfg` names; the caller keeps and closes it.

        Raises:
            InputError: bad target or options.
            CollectionMismatchError: an existing collection differs from the request (or was
                built with another model) and `cfg.recreate` is False.
        """
        from ingest.encoder.static import load_encoder
        from ingest.sources import open_source
        from ingest.stores import open_store

        source = open_source(
            target,
            data_dir=cfg.data_dir,
            beir_dirs=cfg.beir_dirs,
            id_col=cfg.id_col,
            text_col=cfg.text_col,
            title_col=cfg.title_col,
            on_error=cfg.on_error,
            on_duplicate=cfg.on_duplicate,
            name=cfg.name,
        )
        encoder = load_encoder(cfg.model, data_dir=cfg.data_dir)
        specs = resolve_collections(cfg, encoder.dim)
        names = [s.name(source.name) for s in specs]
        if len(set(names)) != len(names):
            raise InputError(
                f"collection names collide: {names}; make name_template include dim and quantization"
            )
        owns_store = store is None
        if store is None:
            store = open_store(data_dir=cfg.data_dir, qdrant_url=cfg.qdrant_url, timeout_s=cfg.timeout_s)
        try:
            job = cls(cfg, source, encoder, store, specs)
            job.owns_store = owns_store
            job._prepare_collections()
        except BaseException:
            if owns_store:
                store.close()
            raise
        return job

    def _checkpoint_path(self, name: str) -> Path:
        where = "edge" if self.cfg.qdrant_url is None else _safe(self.cfg.qdrant_url)
        return self.cfg.data_dir / "state" / where / f"{name}.checkpoint.json"

    def _prepare_collections(self) -> None:
        model_id = self.model_info.get("model_id")
        # Check everything before touching anything.
        if not self.cfg.recreate:
            for name in self.names:
                if not self.store.collection_exists(name):
                    continue
                stored = self.store.get_metadata(name)
                stored_model = (stored.get("model") or {}).get("model_id")
                if stored_model and stored_model != model_id:
                    raise CollectionMismatchError(
                        f"collection {name!r} holds vectors from model {stored_model!r}, but this run uses "
                        f"{model_id!r}: pass --recreate to rebuild it, or use another --model / name_template"
                    )
                if stored_model:
                    self._check_chunking(name, stored)
        if getattr(self.source, "on_duplicate", None) == "fail" and hasattr(self.source, "duplicate_plan"):
            # A repeated id fails here, before any collection is created. (For BEIR this id pass also
            # computes the corpus checksum the manifests below need, so it costs no extra read.)
            self.source.duplicate_plan()
        # Existing collections first: a spec mismatch raises before any new collection is created.
        pairs = sorted(
            zip(self.specs, self.names, strict=True), key=lambda p: not self.store.collection_exists(p[1])
        )
        for spec, name in pairs:
            self.store.ensure_collection(name, spec, recreate=self.cfg.recreate, defer_index=True)
            if self.cfg.recreate:
                self.checkpoints[name].clear()
        for spec, name in zip(self.specs, self.names, strict=True):
            self.store.set_metadata(name, self._manifest(spec, status="loading"))

    def _check_chunking(self, name: str, stored: dict[str, Any]) -> None:
        """Refuse to add chunks cut another way to a collection (they would sit beside the old ones)."""
        want = {
            "chunk_tokens": self.cfg.chunk_tokens,
            "chunk_overlap": self.cfg.chunk_overlap,
            "chunking": CHUNKING_SCHEME,
        }
        have = {key: stored.get(key, "token-windows-v1" if key == "chunking" else None) for key in want}
        differ = [f"{key} {have[key]!r} (this run: {want[key]!r})" for key in want if have[key] != want[key]]
        if differ:
            raise CollectionMismatchError(
                f"collection {name!r} holds chunks cut with "
                + ", ".join(differ)
                + ": pass --recreate to rebuild it, the same chunk options, or another name_template"
            )

    def _manifest(self, spec: CollectionSpec, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "source": self.source.describe(),
            "model": self.model_info,
            "spec": spec.to_dict(),
            "chunk_tokens": self.cfg.chunk_tokens,
            "chunk_overlap": self.cfg.chunk_overlap,
            "chunking": CHUNKING_SCHEME,
            "status": status,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        }

    def record_rejection(self, rejection: Rejection) -> None:
        """Append one rejected record to `<run dir>/rejected.jsonl` as soon as the source rejects it."""
        if self._rejected_file is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._rejected_file = (self.run_dir / "rejected.jsonl").open("a", encoding="utf-8")
        self._rejected_file.write(json.dumps(rejection.to_dict(), ensure_ascii=False, default=str) + "\n")
        self._rejected_file.flush()
        self.rejections_written += 1

    # -- the steps ---------------------------------------------------------------------------------

    def pending_batches(self) -> Iterator[tuple[int, list[Document]]]:
        """Numbered document batches not yet stored in every collection (bounded, streamed)."""
        remaining = self.cfg.limit
        t0 = time.perf_counter()
        for batch_no, docs in enumerate(self.source.iter_batches(self.cfg.batch_docs)):
            if remaining is not None:
                docs = docs[:remaining]
                remaining -= len(docs)
            if docs:
                self.stage_seconds["read"] += time.perf_counter() - t0
                if all(batch_no in cp.done for cp in self.checkpoints.values()):
                    self.resumed_batches += 1
                else:
                    yield batch_no, docs
                t0 = time.perf_counter()
            if remaining is not None and remaining <= 0:
                break
        self.stage_seconds["read"] += time.perf_counter() - t0

    def encode_batch(self, batch_no: int, docs: list[Document]) -> EncodedBatch:
        """Chunk and encode one batch at the model's full dimension."""
        batch = encode_docs(self.chunker, self.encoder, batch_no, docs)
        self.stage_seconds["encode"] += batch.seconds
        return batch

    def store_batch(self, batch: EncodedBatch) -> BatchResult:
        """Upsert one encoded batch into every collection, flush, then checkpoint it."""
        t0 = time.perf_counter()
        ids = [point_id(self.dataset, c.doc_id, c.chunk_no) for c in batch.chunks]
        payloads = [self._payload(c) for c in batch.chunks]
        sliced = slice_vectors(batch.vectors, {s.dim for s in self.specs})
        for spec, name in zip(self.specs, self.names, strict=True):
            cp = self.checkpoints[name]
            if batch.batch_no in cp.done:
                continue
            if ids:
                self.store.upsert(name, ids, sliced[spec.dim], payloads)
            self.store.flush(name)
            cp.mark(batch.batch_no, batch.docs, len(batch.chunks))
        del ids, payloads, sliced
        release_freed_memory()
        seconds = time.perf_counter() - t0
        log.debug("stored batch %d (%d docs, %d chunks)", batch.batch_no, batch.docs, len(batch.chunks))
        self.stage_seconds["upsert"] += seconds
        return BatchResult(batch.batch_no, batch.docs, len(batch.chunks), seconds)

    def run_batches(self, *, progress: bool = False, workers: int | None = None) -> int:
        """Chunk, encode and store every pending batch, reading, encoding and upserting in parallel.

        Args:
            progress: Show a tqdm progress bar (docs, docs/s).
            workers: None chooses automatically (`workers_for(job)`: worker processes for big corpora
                loading many collections, or `cfg.workers` ≥ 1); 0 runs three threads in this process
                (read, encode, upsert); N ≥ 1 chunks and encodes in N worker processes, started with
                "spawn" (a script calling this must guard its entry point).

        Returns:
            The number of worker processes used (0: in-process threads).

        Raises:
            ValueError: `workers` is negative.
            IngestError: a bad record or a store failure; every batch stored before it stays
                stored and checkpointed, so a rerun resumes after them.
        """
        if workers is not None and workers < 0:
            raise ValueError(f"workers must be None, 0 or a positive number of processes, not {workers}")
        chosen = workers_for(self) if workers is None else workers
        if chosen:
            recipe = EncodeRecipe.of(
                self.encoder,
                data_dir=self.cfg.data_dir,
                chunk_tokens=self.cfg.chunk_tokens,
                chunk_overlap=self.cfg.chunk_overlap,
            )
            run_in_processes(self, recipe, chosen, progress=progress)
        else:
            run_threaded(self, progress=progress)
        return chosen

    def process_batch(self, batch_no: int, docs: list[Document]) -> BatchResult:
        """Chunk, encode and store one batch (the unit a flow task runs)."""
        return self.store_batch(self.encode_batch(batch_no, docs))

    def _payload(self, chunk: Chunk) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "doc_id": chunk.doc_id,
            "chunk_no": chunk.chunk_no,
            "source": self.dataset,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
        }
        if self.cfg.store_text:
            payload["text"] = chunk.text
        return payload

    def build_indexes(self) -> None:
        """Build HNSW (and quantized storage) in every collection once the bulk load is over."""
        t0 = time.perf_counter()
        for name in self.names:
            log.debug("indexing %s", name)
            self.store.build_index(name)
        self.stage_seconds["index"] += time.perf_counter() - t0

    def verify_counts(self) -> dict[str, int]:
        """Check every collection holds exactly one point per stored chunk.

        Returns:
            The point count per collection.

        Raises:
            IngestError: naming each collection whose count differs.
        """
        counts = {name: self.store.count(name) for name in self.names}
        wrong = {n: (c, self.expected_chunks(n)) for n, c in counts.items() if c != self.expected_chunks(n)}
        if wrong:
            detail = "; ".join(f"{n}: {c} points, expected {e}" for n, (c, e) in wrong.items())
            raise IngestError(
                f"point counts do not match the chunks ingested ({detail}). The collection may hold points "
                "from an earlier run over a different corpus or limit: rerun with --recreate."
            )
        return counts

    def expected_chunks(self, name: str) -> int:
        """Chunks recorded in the checkpoint of a collection."""
        return sum(v["chunks"] for v in self.checkpoints[name].done.values())

    def finalize(self, *, build_index: bool = True) -> IngestSummary:
        """Build indexes, verify counts, write the manifests and the run summary."""
        if build_index:
            self.build_indexes()
        log.debug("verifying point counts")
        verified = True
        try:
            counts = self.verify_counts()
        except IngestError as exc:
            log.warning("%s", exc)
            verified = False
            counts = {name: self.store.count(name) for name in self.names}
        first = self.checkpoints[self.names[0]].done
        summary = IngestSummary(
            dataset=self.dataset,
            source=self.source.describe(),
            model=self.model_info,
            backend=self.store.backend,
            docs=sum(v["docs"] for v in first.values()),
            chunks=sum(v["chunks"] for v in first.values()),
            skipped_empty=self.source.counters.skipped_empty,
            rejected=self.source.counters.rejected_count,
            resumed_batches=self.resumed_batches,
            points=counts,
            verified=verified,
            seconds=time.perf_counter() - self.started,
            stage_seconds={k: round(v, 2) for k, v in self.stage_seconds.items()},
            peak_rss_mb=peak_rss_mb(),
        )
        for spec, name in zip(self.specs, self.names, strict=True):
            self.store.set_metadata(
                name,
                self._manifest(
                    spec, status="complete", docs=summary.docs, chunks=summary.chunks, points=counts[name]
                ),
            )
        summary.run_dir = str(self._write_run_dir(summary))
        return summary

    def _write_run_dir(self, summary: IngestSummary) -> Path:
        run_dir = self.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        if not hasattr(self.source, "on_reject"):  # a source without the hook: what its counters kept
            for record in self.source.counters.rejected:
                self.record_rejection(record)
        (run_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2, default=str) + "\n")
        return run_dir

    def close(self) -> None:
        """Close rejected.jsonl and release the store (and its collection locks)."""
        if self._rejected_file is not None:
            self._rejected_file.close()
            self._rejected_file = None
        if self.owns_store:
            self.store.close()


def run_ingest(
    target: str, cfg: IngestConfig, *, progress: bool = True, store: VectorStore | None = None
) -> IngestSummary:
    """Ingest `target` into every configured collection, reading, encoding and upserting in parallel.

    Args:
        target: A BEIR dataset name, a path (BEIR folder/zip, Parquet file/dir/glob) or `hf:name`.
        cfg: The run options.
        progress: Show a tqdm progress bar (docs, docs/s).
        store: An open store to use instead of the one `cfg` names (the caller closes it).

    Big corpora are chunked and encoded in worker processes (`cfg.workers`, see `ingest.parallel`),
    started with "spawn": a script calling this must guard its entry point (`if __name__ == "__main__":`).

    Returns:
        The run summary.

    Raises:
        IngestError: on bad input, a collection mismatch or a store failure; collections keep every
            batch stored before the failure, and a rerun resumes after them.
    """
    job = IngestJob.open(target, cfg, store=store)
    try:
        job.run_batches(progress=progress)
        return job.finalize()
    finally:
        job.close()


def workers_for(job: IngestJob) -> int:
    """The encoder worker processes `IngestJob.run_batches` uses for this job by default.

    Args:
        job: The opened job (its `cfg.workers`, source size, limit and collections decide).

    Returns:
        The number of worker processes; 0 means threads in this process.
    """
    return choose_workers(
        job.cfg.workers, size_hint(job.source.describe()), job.cfg.limit, collections=len(job.names)
    )


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


def _stable_source(described: dict[str, Any]) -> dict[str, Any]:
    """The parts of a source description that identify its content (not counters)."""
    keys = {
        "kind",
        "name",
        "path",
        "checksum",
        "sha256",
        "md5",
        "corpus_sha256",
        "archive_md5",
        "fingerprint",
    }
    keys |= {"on_duplicate", "on_error"}
    return {k: v for k, v in described.items() if k in keys}
