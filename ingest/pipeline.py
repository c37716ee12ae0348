"""The streaming ingest: source → chunks → encoder → every configured collection.

`IngestJob` holds the steps as separate functions so a Prefect flow can run them as coarse
tasks; `IngestJob.run_batches` (which `run_ingest` calls) runs the same steps as a three-stage
pipeline (read, encode, upsert) overlapping through bounded queues (`ingest.run_modes`).

Each collection has a per-document record (`ingest.record`) and a generation id, written into its
manifest when its shard is created and into its checkpoint: a checkpoint of another generation (a
shard lost or recreated since) is void. The record decides what a batch needs (`ingest.sync`):
unchanged documents are not encoded, changed ones are rewritten and their surplus chunks deleted,
and with `--sync full` documents absent from the source are deleted once every batch is stored.
A collection's manifest says `complete` only when its points are exactly the chunks its record
expects after a run that stored every batch; otherwise `incomplete`, with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ingest.batches import BatchResult, EncodedBatch
from ingest.checkpoint import Checkpoint
from ingest.chunking import SCHEME as CHUNKING_SCHEME
from ingest.chunking import Chunker
from ingest.config import CollectionSpec, IngestConfig, resolve_collections
from ingest.diskspace import allocated_bytes, check_free_space, need_for_run
from ingest.encode_batch import encode_docs
from ingest.errors import CollectionMismatchError, IngestError, InputError
from ingest.memory import peak_rss_mb, release_freed_memory
from ingest.parallel import EncodeRecipe, ProcessEncoder, choose_workers, size_hint, usable_cores
from ingest.record import DocRecord, Entry
from ingest.records import Document, point_id
from ingest.run_ids import new_run_id
from ingest.run_modes import run_in_processes, run_threaded
from ingest.shard_writer import ShardWriter, bulk_load, split_target, writer_dims
from ingest.stores.base import VectorStore
from ingest.stores.lock import check_writable_dir
from ingest.summary import IngestSummary, SyncCounts
from ingest.supervise import set_activity
from ingest.sync import BatchPlan, SeenIds, content_hash, recipe_key, resolve_sync
from ingest.write import WriteTarget, record_rows, write_encoded

if TYPE_CHECKING:
    from ingest.sources.base import Rejection

log = logging.getLogger(__name__)

# Documents deleted per store call (and record transaction) when a full sync removes absent ones.
DELETE_PAGE = 2_000
# Source batches one batch of documents to encode may gather at most (a sync of a few changes): bounds
# how long their checkpoints wait, and lets encoding overlap with reading.
GROUP_BATCHES = 16


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
        self.sync = resolve_sync(cfg.sync, cfg.limit)
        # A `none` run leaves documents of unknown content that a checkpointed rerun must not skip.
        self.fingerprint["sync"] = self.sync
        self.recipe = recipe_key(
            dataset=self.dataset,
            model=self.model_info,
            chunk_tokens=cfg.chunk_tokens,
            chunk_overlap=cfg.chunk_overlap,
            chunking=CHUNKING_SCHEME,
            text_collection=self.names[0] if cfg.store_text else None,
        )
        # Filled by `_prepare_collections` once each collection's generation is known.
        self.generations: dict[str, str] = {}
        self.checkpoints: dict[str, Checkpoint] = {}
        self._previous_manifests: dict[str, dict[str, Any]] = {}
        self.records: dict[str, DocRecord] = {}
        self._scratch_records: list[Path] = []
        self._payload_record = False
        self._seen: SeenIds | None = None
        self._plans: dict[int, BatchPlan] = {}
        self._yielded: set[int] = set()
        self._stored: set[int] = set()
        self._read_all = False
        self._synced = False
        self.counts = SyncCounts()
        self.docs_read = 0
        self.batch_docs = cfg.batch_docs
        # Encoder worker pools whose workers are exiting; `close` waits for them.
        self._stopping: list[Any] = []
        # Worker processes started by `_prewarm` for `run_batches`.
        self._pool: ProcessEncoder | None = None
        # A second writer process owning some collections during `run_batches` (`ingest.shard_writer`).
        self._writer: ShardWriter | None = None
        self._target_here: WriteTarget | None = None
        self._writer_names: list[str] = []
        self.stage_seconds = {"read": 0.0, "sync": 0.0, "encode": 0.0, "upsert": 0.0, "index": 0.0}
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
    def open(
        cls, target: str, cfg: IngestConfig, *, store: VectorStore | None = None, prewarm: bool = False
    ) -> IngestJob:
        """Resolve the source, load the encoder, open the store and create or check every collection.

        Args:
            target: What to ingest (see `run_ingest`).
            cfg: The run options.
            store: An open store to use instead of the one `cfg` names; the caller keeps and closes it.
            prewarm: Start the encoder worker processes `run_batches` will likely use before the
                collections are opened, so that their start (spawn, `import torch`, model load:
                2-3 s) overlaps loading the shards and the duplicate-id pass (see `_prewarm`).

        Raises:
            InputError: bad target or options.
            CollectionMismatchError: an existing collection differs from the request (or was
                built with another model) and `cfg.recreate` is False.
        """
        from ingest.encoder.static import load_encoder
        from ingest.sources.spec import SourceSpec
        from ingest.stores import open_store

        if resolve_sync(cfg.sync, cfg.limit) == "full" and cfg.limit is not None:
            raise InputError(
                "--sync full deletes every document the source does not hold, and with --limit the run "
                "reads only part of it: use --sync incremental (the default with --limit), or drop --limit"
            )
        check_writable_dir(cfg.data_dir, "write checkpoints, run records and collections")
        source = SourceSpec.of(target, cfg).open()
        source.allow_empty = cfg.allow_empty
        encoder = load_encoder(cfg.model, data_dir=cfg.data_dir)
        specs = resolve_collections(cfg, encoder.dim)
        names = [s.name(source.name) for s in specs]
        if len(set(names)) != len(names):
            raise InputError(
                f"collection names collide: {names}; make name_template include dim and quantization"
            )
        owns_store = store is None
        if store is None:
            store = open_store(
                data_dir=cfg.data_dir, qdrant_url=cfg.qdrant_url, timeout_s=cfg.timeout_s, retries=cfg.retries
            )
        job: IngestJob | None = None
        try:
            job = cls(cfg, source, encoder, store, specs)
            job.owns_store = owns_store
            if prewarm:
                job._prewarm()
            job._prepare_collections()
        except BaseException:
            if job is not None:
                job.close()
            elif owns_store:
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
        self._keep_float_graphs()
        # Existing collections first: a spec mismatch raises before any new collection is created.
        pairs = sorted(
            zip(self.specs, self.names, strict=True), key=lambda p: not self.store.collection_exists(p[1])
        )
        created = {
            name: self.store.ensure_collection(name, spec, recreate=self.cfg.recreate, defer_index=True)
            for spec, name in pairs
        }
        for spec, name in zip(self.specs, self.names, strict=True):
            previous = {} if created[name] else self.store.get_metadata(name)
            self._previous_manifests[name] = previous
            # A new shard, or one whose manifest never got a generation (created by a run killed before
            # writing it, or by a version without generations): a new generation voids old checkpoints.
            self.generations[name] = str(previous.get("generation") or "") or uuid.uuid4().hex
            self.store.set_metadata(name, self._manifest(spec, status="loading"))
            self.records[name] = self._open_record(name)
            self.checkpoints[name] = self._load_checkpoint(name)
        self.target = WriteTarget(
            dataset=self.dataset,
            collections=tuple((name, spec.dim) for spec, name in zip(self.specs, self.names, strict=True)),
            text_collection=self.names[0] if self.cfg.store_text else None,
            payload_record=self._payload_record,
            sync=self.sync,
            qdrant_url=self.cfg.qdrant_url,
            timeout_s=self.cfg.timeout_s,
            retries=self.cfg.retries,
        )
        if self.sync == "full":
            where = self._checkpoint_path(self.names[0]).parent
            self._seen = SeenIds.open(where, _safe(self.dataset))

    def _keep_float_graphs(self) -> None:
        """Let a default-matrix float collection that has an HNSW graph keep it.

        Float collections of the default matrix get no graph (`ingest.options.matrix_spec`); one built
        with a graph (by an earlier version, or with `--float-hnsw`) is kept as it is rather than
        refused as a mismatch: its stored `hnsw_m` is adopted (`--recreate` rebuilds it without).
        """
        if self.cfg.collections or self.cfg.recreate:
            return
        for i, (spec, name) in enumerate(zip(self.specs, self.names, strict=True)):
            if spec.quantization != "none" or spec.hnsw_m != 0 or not self.store.collection_exists(name):
                continue
            stored = (self.store.get_metadata(name).get("spec") or {}).get("hnsw_m")
            if isinstance(stored, int) and stored > 0:
                log.info(
                    "collection %s keeps its HNSW graph (m %d); --recreate rebuilds it without", name, stored
                )
                self.specs[i] = dataclasses.replace(spec, hnsw_m=stored)

    def _load_checkpoint(self, name: str) -> Checkpoint:
        """The collection's checkpoint if it is for this run's fingerprint and the shard's generation.

        A void one (another corpus, options or generation) is replaced by an empty one now, before
        anything is stored: left in place, it would outlive the batches this run stores.
        """
        cp = Checkpoint.load(self._checkpoint_path(name), self.fingerprint, self.generations[name])
        # Documents of unknown content in the record belong to batches no checkpoint holds (a write cut
        # short commits no checkpoint), or were left by `--sync none`, whose checkpoints carry another
        # fingerprint (`sync` is part of it): either way they are planned again.
        if cp.void:
            cp.save()
        return cp

    def _open_record(self, name: str) -> DocRecord:
        """The collection's record: its file inside the shard, or rebuilt from the points' payloads."""
        generation = self.generations[name]
        path = self.store.record_path(name)
        if path is not None:
            return DocRecord(path, generation=generation)
        self._payload_record = True
        scratch = self._checkpoint_path(name).with_name(f"{name}.record.sqlite")
        scratch.parent.mkdir(parents=True, exist_ok=True)
        self._scratch_records.append(scratch)
        keys = ["doc_id", "chunk_no", "doc_hash", "chunk_count"]
        return DocRecord.rebuild_from_payloads(
            scratch, self.store.scroll_payloads(name, keys), generation=generation
        )

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
            "generation": self.generations[spec.name(self.dataset)],
            "sync": self.sync,
            "dataset": self.dataset,
            "source": self.source.describe(),
            "model": self.model_info,
            "spec": spec.to_dict(),
            "chunk_tokens": self.cfg.chunk_tokens,
            "chunk_overlap": self.cfg.chunk_overlap,
            "chunking": CHUNKING_SCHEME,
            "text_collection": self.names[0] if self.cfg.store_text else None,
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
        """Numbered batches still to store, each reduced to the documents it must encode (streamed).

        Every document read is added to the run's seen set (`--sync full`). A source batch every
        checkpoint holds is skipped (resumed); the others are planned against the records
        (`plan_batch`), and their documents to encode are gathered until they fill a batch of
        `batch_docs` (a fresh ingest: every source batch on its own; a sync: the few changed documents
        of many source batches together). The last batch may hold no document: it is still stored,
        which checkpoints the source batches it covers.
        """
        remaining = self.cfg.limit
        group: BatchPlan | None = None
        t0 = time.perf_counter()
        for batch_no, docs in enumerate(self.source.iter_batches(self.cfg.batch_docs)):
            if remaining is not None:
                docs = docs[:remaining]
                remaining -= len(docs)
            if docs:
                self.stage_seconds["read"] += time.perf_counter() - t0
                self.docs_read += len(docs)
                if self._seen is not None:
                    self._seen.add([d.id for d in docs])
                if all(batch_no in cp.done for cp in self.checkpoints.values()):
                    self.resumed_batches += 1
                    self.counts.unchanged += len(docs)  # stored at this content by an earlier run
                else:
                    plan = self.plan_batch(batch_no, docs)
                    group = plan if group is None else group.merge(plan)
                    # The first documents to encode go at once (the encoder's first call is its slowest:
                    # it then overlaps with reading); later ones wait for a full batch or GROUP_BATCHES.
                    first = bool(group.docs) and not self._yielded
                    full = len(group.docs) >= self.cfg.batch_docs
                    if first or full or len(group.batches) >= GROUP_BATCHES:
                        yield self._release(group)
                        group = None
                t0 = time.perf_counter()
            if remaining is not None and remaining <= 0:
                break
        self.stage_seconds["read"] += time.perf_counter() - t0
        if group is not None:
            yield self._release(group)
        self._read_all = True

    def _release(self, plan: BatchPlan) -> tuple[int, list[Document]]:
        self._plans[plan.batch_no] = plan
        self._yielded.add(plan.batch_no)
        return plan.batch_no, plan.docs

    def plan_batch(self, batch_no: int, docs: list[Document]) -> BatchPlan:
        """Decide, from each collection's record, which documents of a batch to encode and write where.

        Args:
            batch_no: The batch's position in the source.
            docs: Its documents.

        Returns:
            The plan: with `--sync none` every document is written everywhere; otherwise a document
            goes to each collection whose record lacks it or holds it at another content hash.
        """
        t0 = time.perf_counter()
        hashes = {d.id: content_hash(d, self.recipe) for d in docs}
        old: dict[str, dict[str, int]] = {}
        # Per considered collection: the documents it does not hold at their content (None: not held).
        differs: list[dict[str, Entry | None]] = []
        for name in self.names:
            if batch_no in self.checkpoints[name].done:
                old[name] = {}
                continue
            if self.sync == "none":  # every document is written again: the old count of each is needed
                entries = self.records[name].lookup(list(hashes))
                differs.append({d: e for d in hashes if (e := entries.get(d)) is None or e.hash != hashes[d]})
                old[name] = {d: entries[d].chunks if d in entries else 0 for d in hashes}
                continue
            differ = self.records[name].changed(hashes)
            differs.append(differ)
            old[name] = {d: entry.chunks if entry is not None else 0 for d, entry in differ.items()}
        needed = set().union(*old.values())
        work = [d for d in docs if d.id in needed]
        plan = BatchPlan(
            batch_no,
            {batch_no: len(docs)},
            work,
            {d.id: hashes[d.id] for d in work},
            dict.fromkeys(needed, batch_no),
            old,
        )
        # Unchanged: held at this content by every collection considered; added: held by none of them.
        touched = set().union(*differs)
        plan.unchanged = len(hashes) - len(touched)
        if differs:
            plan.added = sum(1 for d in touched if all(d in diff and diff[d] is None for diff in differs))
        plan.changed = len(hashes) - plan.unchanged - plan.added
        self.stage_seconds["sync"] += time.perf_counter() - t0
        return plan

    def encode_batch(self, batch_no: int, docs: list[Document]) -> EncodedBatch:
        """Chunk and encode one batch at the model's full dimension.

        `docs` are the documents `pending_batches` yielded for it; a batch it did not yield is planned
        here first, and only the documents its plan needs are encoded.
        """
        if batch_no not in self._plans:
            docs = self._release(self.plan_batch(batch_no, docs))[1]
        batch = encode_docs(self.chunker, self.encoder, batch_no, docs)
        self.stage_seconds["encode"] += batch.seconds
        return batch

    def store_batch(self, batch: EncodedBatch) -> BatchResult:
        """Write one encoded batch into every collection as its plan says, flush, then record and checkpoint.

        Per collection: commit an intent in the record; then `ingest.write.write_encoded` (upsert
        the chunks of the documents the plan writes there, delete their chunks beyond the new count
        unless `--sync none`, flush); then the record rows and the checkpoint of the source batches
        the plan covers (`commit_written`).

        Raises:
            ValueError: the batch was not planned by this job (`pending_batches` / `encode_batch`).
        """
        plan = self._plans.get(batch.batch_no)
        if plan is None:
            raise ValueError(f"batch {batch.batch_no} was not planned by this job (use encode_batch)")
        if not self._stored and self.cfg.qdrant_url is None:
            self._check_free_space(batch)
        t0 = time.perf_counter()
        new = Counter(c.doc_id for c in batch.chunks)
        intents = {
            name: self.records[name].begin([(d, max(old, new[d])) for d, old in need.items()])
            for name, need in plan.old.items()
            if need
        }
        if self._writer is None:
            write_encoded(self.store, self.target, batch, plan.old, plan.hashes)
        else:
            there = self._writer.submit(batch, plan.old, plan.hashes)
            try:
                write_encoded(self.store, self._target_here or self.target, batch, plan.old, plan.hashes)
            finally:
                self._writer.wait(there)  # both parts flushed before the batch is recorded
        return self.commit_written(
            batch.batch_no, new, write_seconds=time.perf_counter() - t0, intents=intents
        )

    def write_plan(self, batch_no: int) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
        """What a planned batch must write, for a task that writes it itself (`ingest.partitions`).

        Returns:
            Per collection, each document to write there → its old chunk count; each document's
            content hash.

        Raises:
            ValueError: the batch was not planned by this job.
        """
        plan = self._plans.get(batch_no)
        if plan is None:
            raise ValueError(f"batch {batch_no} was not planned by this job (use pending_batches)")
        return plan.old, plan.hashes

    def commit_written(
        self,
        batch_no: int,
        new: Counter[str] | dict[str, int],
        *,
        write_seconds: float,
        intents: dict[str, int] | None = None,
    ) -> BatchResult:
        """Record and checkpoint a planned batch once its points are written and flushed.

        Args:
            batch_no: The batch.
            new: Chunks per document written (`write_encoded`'s result).
            write_seconds: Time spent writing it (the summary's upsert stage).
            intents: The record intents begun before writing (None: a task wrote it; the server's
                record is its points' payloads, rebuilt on every run, so nothing needs undoing).

        Returns:
            The batch's documents, chunks and write time.

        Raises:
            ValueError: the batch was not planned by this job.
        """
        plan = self._plans.get(batch_no)
        if plan is None:
            raise ValueError(f"batch {batch_no} was not planned by this job")
        t0 = time.perf_counter()
        new = Counter(new)
        for name in self.names:
            need = plan.old.get(name, {})
            if need:
                rows = record_rows(need, new, plan.hashes, self.sync)
                self.records[name].commit((intents or {}).get(name), rows)
            chunks: Counter[int] = Counter()
            for doc_id in need:
                chunks[plan.source_of[doc_id]] += new[doc_id]
            cp = self.checkpoints[name]
            cp.mark_many({b: (n, chunks[b]) for b, n in plan.batches.items() if b not in cp.done})
        self._plans.pop(batch_no, None)
        self._stored.add(batch_no)
        total = sum(new.values())
        self.counts.count(plan, total)
        release_freed_memory()
        for source_batch in plan.batches:  # one line per source batch (the kill/resume harness reads them)
            log.debug("stored batch %d (%d docs, %d chunks)", source_batch, len(plan.docs), total)
        seconds = write_seconds + time.perf_counter() - t0
        self.stage_seconds["upsert"] += seconds
        return BatchResult(batch_no, len(plan.docs), total, seconds)

    def _check_free_space(self, batch: EncodedBatch) -> None:
        """Refuse a run that will not fit on the data dir's disk, from its first batch (see
        `ingest.diskspace`), unless `--force`; record the estimate for a full-disk message.

        Raises:
            InputError: need vs free and where, when the estimate exceeds the free space.
        """
        total = size_hint(self.source.describe())
        if total is None:  # a source of unknown size: nothing to extrapolate from
            return
        if self.cfg.limit is not None:
            total = min(total, self.cfg.limit)
        need = need_for_run(
            self.specs,
            total_docs=total,
            sample_docs=batch.docs,
            sample_chunks=len(batch.chunks),
            sample_text_bytes=sum(len(c.text.encode()) for c in batch.chunks),
            store_text=self.cfg.store_text,
            existing_bytes=sum(allocated_bytes(self.cfg.data_dir / "qdrant" / n) for n in self.names),
        )
        check_free_space(self.cfg.data_dir, need, force=self.cfg.force)
        set_activity("", need_bytes=need)

    def run_batches(self, *, progress: bool = False, workers: int | None = None, writer: bool = True) -> int:
        """Chunk, encode and store every pending batch, reading, encoding and upserting in parallel.

        Args:
            progress: Show a tqdm progress bar (docs, docs/s).
            workers: None chooses automatically (`workers_for(job)`: worker processes for big corpora
                loading many collections, or `cfg.workers` ≥ 1); 0 runs three threads in this process
                (read, encode, upsert); N ≥ 1 chunks and encodes in N worker processes, started with
                "spawn" (a script calling this must guard its entry point).
            writer: With worker processes, hand some collections to a writer process when that pays
                (`_start_writer`); False writes every collection here (benchmarks compare both).

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
        self._writer_names = []
        pool, self._pool = self._pool, None
        if pool is not None and pool.workers != chosen:
            pool.close(wait=False)  # guessed wrong: its workers exit while the run goes on
            self._stopping.append(pool)
            pool = None
        if chosen:
            pool = pool or ProcessEncoder(self._recipe(), chosen)
            self._stopping.append(pool)
            if writer:
                self._start_writer()
            try:
                run_in_processes(self, pool, progress=progress)
            except BaseException:
                self._stop_writer(quiet=True)  # the run's own error is the one to report
                raise
            self._stop_writer()
        else:
            run_threaded(self, progress=progress)
        return chosen

    @property
    def writer_collections(self) -> list[str]:
        """The collections the writer process of the last `run_batches` wrote (none: this process alone)."""
        return list(self._writer_names)

    def _start_writer(self) -> None:
        """With encoder workers on an embedded store of 2+ dims and 2+ cores, hand the collections of
        `writer_dims` to a writer process for the load (`ingest.shard_writer`)."""
        from ingest.stores.edge import EdgeStore

        if not isinstance(self.store, EdgeStore) or self.store.read_only or usable_cores() < 2:
            return
        dims = writer_dims([dim for _, dim in self.target.collections])
        if not dims:
            return
        held = min(self.store.count(name) for name in self.names)
        if not bulk_load(held, size_hint(self.source.describe()), self.cfg.limit):
            return
        here, there = split_target(self.target, dims)
        writer = ShardWriter(self.store.root, there, wal=self.store.wal, upsert_chunk=self.store.upsert_chunk)
        try:
            writer.start(self.store)
        except BaseException:
            with contextlib.suppress(IngestError):  # the start's own error is the one to report
                writer.close()
            raise
        self._writer, self._target_here = writer, here
        self._writer_names = writer.names

    def _stop_writer(self, *, quiet: bool = False) -> None:
        """Close the writer process's collections there (this process reopens them on use).

        Args:
            quiet: Log a failure to close instead of raising it (the run already failed).
        """
        writer, self._writer, self._target_here = self._writer, None, None
        if writer is None:
            return
        try:
            writer.close()
        except IngestError as exc:
            if not quiet:
                raise
            log.warning("%s", exc)

    def _recipe(self) -> EncodeRecipe:
        return EncodeRecipe.of(
            self.encoder,
            data_dir=self.cfg.data_dir,
            chunk_tokens=self.cfg.chunk_tokens,
            chunk_overlap=self.cfg.chunk_overlap,
        )

    def _prewarm(self) -> None:
        """Start the worker processes `run_batches` will likely choose, before the collections open.

        The guess is `choose_workers` on the source's size (`run_batches` decides the same way; a pool
        it does not use is let go).
        """
        guess = choose_workers(self.cfg.workers, size_hint(self.source.describe()), self.cfg.limit)
        if guess:
            self._pool = ProcessEncoder(self._recipe(), guess)
            self._pool.start()

    def process_batch(self, batch_no: int, docs: list[Document]) -> BatchResult:
        """Chunk, encode and store one batch (the unit a flow task runs)."""
        return self.store_batch(self.encode_batch(batch_no, docs))

    def build_indexes(self) -> None:
        """Build HNSW (and quantized storage) in every collection once the bulk load (and `finish_sync`,
        run here first) is over."""
        self.finish_sync()
        t0 = time.perf_counter()
        for name in self.names:
            log.debug("indexing %s", name)
            set_activity(f"the index of collection {name!r}")
            self.store.build_index(name)
        self.stage_seconds["index"] += time.perf_counter() - t0

    @property
    def all_stored(self) -> bool:
        """Whether the source was read to the end and every batch yielded for storing was stored."""
        return self._read_all and self._yielded <= self._stored

    def finish_sync(self) -> None:
        """With `--sync full`, delete the documents the records hold but the source no longer has.

        Runs once, and only after every batch of the run is stored (else it does nothing: a run that
        stopped early has not seen the whole source). Skipped, with a warning, when records were
        rejected (`--on-error skip`): a rejected document is absent from the run, not from the source.
        Each page of documents is deleted from the store, flushed, then dropped from the record, so a
        run killed in between deletes them again.
        """
        if self._synced or not self.all_stored:
            return
        self._synced = True
        if self._seen is None:
            return
        rejected = self.source.counters.rejected_count
        if rejected:
            self.counts.deletions_skipped = f"{rejected} record(s) rejected"
            log.warning(
                "not deleting documents absent from the source: %d record(s) were rejected, so the run did "
                "not see the whole source (fix them and rerun to sync deletions)",
                rejected,
            )
            return
        log.debug("deleting documents absent from the source")
        t0 = time.perf_counter()
        for name in self.names:
            record = self.records[name]
            deleted = 0
            while page := record.absent(self._seen.path, DELETE_PAGE):
                ids = [point_id(self.dataset, doc_id, k) for doc_id, chunks in page for k in range(chunks)]
                if ids:
                    self.store.delete_points(name, ids)
                self.store.flush(name)
                record.forget([doc_id for doc_id, _ in page])
                deleted += len(page)
            self.counts.deleted = max(self.counts.deleted, deleted)
        self.stage_seconds["sync"] += time.perf_counter() - t0

    def problems(self, counts: dict[str, int]) -> dict[str, str]:
        """Why each collection is not exactly the chunks its record expects (collections without a problem
        are left out).

        Args:
            counts: The point count of every collection.

        Returns:
            Collection name → the reason, ending with what to run.
        """
        out: dict[str, str] = {}
        for name in self.names:
            record = self.records[name]
            expected = record.total_chunks()
            unknown = record.unknown_count()
            if not self.all_stored:
                out[name] = "not every batch of the source was stored: rerun the ingest to complete it"
            elif counts[name] != expected:
                out[name] = (
                    f"{counts[name]} points, but its record expects {expected} chunks (points written by "
                    "something else, or lost): rerun with --recreate to rebuild it"
                )
            elif unknown:
                out[name] = (
                    f"{unknown} document(s) may keep chunks of an older version (written with --sync none, "
                    "or cut short): rerun with --sync incremental or full"
                )
        return out

    def verify_counts(self) -> dict[str, int]:
        """Check every collection holds exactly the chunks its record expects (after `finish_sync`).

        Returns:
            The point count per collection.

        Raises:
            IngestError: naming each collection that does not, with the reason and what to run.
        """
        self.finish_sync()
        counts = {name: self.store.count(name) for name in self.names}
        problems = self.problems(counts)
        if problems:
            raise IngestError(_problem_text(problems))
        return counts

    def expected_chunks(self, name: str) -> int:
        """The chunks a collection should hold: the sum of its record's chunk counts."""
        return self.records[name].total_chunks()

    def finalize(self, *, build_index: bool = True) -> IngestSummary:
        """Finish the sync, build indexes, check the collections, write the manifests and the run summary.

        A collection's manifest says `complete` only when every batch was stored and its points are
        exactly the chunks of its record; otherwise `incomplete`, with `reason`.
        """
        self.finish_sync()
        if build_index:
            self.build_indexes()
        log.debug("verifying point counts")
        counts = {name: self.store.count(name) for name in self.names}
        problems = self.problems(counts)
        if problems:
            log.warning("%s", _problem_text(problems))
        first = self.records[self.names[0]]
        summary = IngestSummary(
            dataset=self.dataset,
            source=self.source.describe(),
            model=self.model_info,
            backend=self.store.backend,
            docs=self.docs_read,
            chunks=first.total_chunks(),
            skipped_empty=self.source.counters.skipped_empty,
            rejected=self.source.counters.rejected_count,
            resumed_batches=self.resumed_batches,
            points=counts,
            verified=not problems,
            seconds=time.perf_counter() - self.started,
            stage_seconds={k: round(v, 2) for k, v in self.stage_seconds.items()},
            peak_rss_mb=peak_rss_mb(),
            sync=self.sync,
            **asdict(self.counts),
            status={name: problems.get(name, "complete") for name in self.names},
        )
        for spec, name in zip(self.specs, self.names, strict=True):
            record = self.records[name]
            state: dict[str, Any] = {"status": "complete"}
            if name in problems:
                state = {"status": "incomplete", "reason": problems[name]}
            self.store.set_metadata(
                name,
                self._manifest(
                    spec,
                    docs=record.doc_count(),
                    chunks=record.total_chunks(),
                    points=counts[name],
                    last_run=self.run_id,
                    **state,
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

    def settle_empty_source(self) -> None:
        """After a source that held no documents (`EmptySourceError`), leave each manifest truthful.

        Nothing was written, so a collection that held points keeps the manifest it had before this
        run; one that holds none (created now, or empty before) is `incomplete`, with the reason and what
        to do, rather than `loading` (which would tell the eval an ingest may still be running).
        With `--sync full` nothing is deleted either: `finish_sync` runs only after a complete run.
        """
        for spec, name in zip(self.specs, self.names, strict=True):
            previous = self._previous_manifests.get(name) or {}
            if self.records[name].doc_count() > 0 and previous.get("status"):
                self.store.set_metadata(name, previous)
                continue
            why = (
                "the last ingest's source held no documents: rerun it with documents, or with --allow-empty "
                "to keep the collection empty"
            )
            self.store.set_metadata(name, self._manifest(spec, status="incomplete", reason=why, docs=0))

    def close(self) -> None:
        """Wait for encoder workers to exit, close rejected.jsonl and release the store (and its
        collection locks)."""
        if self._pool is not None:
            self._stopping.append(self._pool)
            self._pool = None
        while self._stopping:
            self._stopping.pop().close()
        if self._rejected_file is not None:
            self._rejected_file.close()
            self._rejected_file = None
        for record in self.records.values():
            record.close()
        self.records.clear()
        for scratch in self._scratch_records:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        if self._seen is not None:
            self._seen.close()
            self._seen = None
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
    from ingest.sources.base import EmptySourceError

    job = IngestJob.open(target, cfg, store=store, prewarm=True)
    try:
        job.run_batches(progress=progress)
        return job.finalize()
    except EmptySourceError:
        job.settle_empty_source()
        raise
    finally:
        job.close()


def workers_for(job: IngestJob) -> int:
    """The encoder worker processes `IngestJob.run_batches` uses for this job by default.

    Args:
        job: The opened job (its `cfg.workers`, source size and limit decide).

    Returns:
        The number of worker processes; 0 means threads in this process.
    """
    return choose_workers(job.cfg.workers, size_hint(job.source.describe()), job.cfg.limit)


def _problem_text(problems: dict[str, str]) -> str:
    return "collections not complete: " + "; ".join(f"{name}: {why}" for name, why in problems.items())


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
