"""What every corpus source offers: bounded document batches, counters, a description; shared plumbing."""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from ingest.errors import InputError
from ingest.queues import put_unless_stopped
from ingest.records import Document

logger = logging.getLogger("ingest.sources")
T = TypeVar("T")

ON_ERROR_POLICIES: tuple[str, ...] = ("fail", "skip")
ON_DUPLICATE_POLICIES: tuple[str, ...] = ("fail", "first", "last")
# The rejected list keeps this many entries; the count keeps going.
MAX_REJECTED_KEPT = 1000
# Duplicate ids named in one error message.
MAX_DUPLICATES_SHOWN = 5
SKIP_HINT = "or pass --on-error skip to record it as rejected and continue"
ALLOW_EMPTY_HINT = "pass --allow-empty to create empty collections anyway"


class EmptySourceError(InputError):
    """A complete pass over a source yielded no document (an empty file, every record skipped).

    Raised at the end of `BaseSource.iter_batches` unless the source allows it (`allow_empty`), so a
    run never marks an empty collection complete by accident. The CLI reports it as a warning with exit
    code 1 (see `ingest.__main__`).

    Attributes:
        counters: What the pass saw (all zero for an empty file).
    """

    def __init__(self, message: str, counters: SourceCounters) -> None:
        super().__init__(message)
        self.counters = counters


def prefetched(items: Iterator[T], *, name: str = "prefetch") -> Iterator[T]:
    """Yield what `items` yields, producing the next item in a daemon thread meanwhile (one ahead).

    Worth it when producing an item releases the GIL (Arrow decoding, file reads). An exception
    raised by `items` is raised here, at the item where it happened. Stopping early (closing this
    generator) stops the thread and closes `items` there.

    Args:
        items: An iterator; it is advanced only by the thread.
        name: The thread's name.
    """
    ahead: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not put_unless_stopped(ahead, (True, item), stop):
                    return
            put_unless_stopped(ahead, (True, _END), stop)
        except BaseException as exc:
            put_unless_stopped(ahead, (False, exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            ok, item = ahead.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


_END = object()


def one_line(exc: BaseException) -> str:
    """Return an exception as `Type: message` on one line (engines put newlines in their messages)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not turned into a document.

    Attributes:
        reason: A short code: `malformed_json`, `not_an_object`, `missing_id`, `bad_id`,
            `bad_field_type`, `invalid_utf8`.
        location: `file:line` (JSONL) or `file#row` (tables, row counted from 0).
        id: The record id when it could be read, else None.
        detail: The human-readable explanation.
    """

    reason: str
    location: str
    id: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the rejection as a JSON-serialisable dict."""
        return {"reason": self.reason, "location": self.location, "id": self.id, "detail": self.detail}


@dataclass
class BadRecord:
    """A record a reader could not turn into a document, with the message to show if it is fatal.

    Attributes:
        reason: The rejection code (see `Rejection`).
        location: Where the record is.
        detail: What is wrong.
        fix: What to do about it (without the `--on-error skip` hint, which is added).
        id: The record id if known.
    """

    reason: str
    location: str
    detail: str
    fix: str
    id: str | None = None

    def message(self) -> str:
        """Return the full error message: location, problem, fix."""
        return f"{self.location}: {self.detail}: {self.fix}, {SKIP_HINT}"


@dataclass
class SourceCounters:
    """What one pass over a source saw; reset at the start of every `iter_batches` call.

    Attributes:
        docs: Documents yielded.
        skipped_empty: Records with an empty title and an empty text, skipped.
        duplicates_dropped: Records dropped because their id repeats (`on_duplicate` first/last).
        rejected_count: Bad records skipped under `on_error="skip"`.
        rejected: The first `MAX_REJECTED_KEPT` rejections (`BaseSource.on_reject` sees every one).
        complete: True once a pass ran to the end.
    """

    docs: int = 0
    skipped_empty: int = 0
    duplicates_dropped: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    complete: bool = False

    def reset(self) -> None:
        """Zero every counter in place (callers may hold a reference to this object)."""
        self.docs = self.skipped_empty = self.duplicates_dropped = self.rejected_count = 0
        self.rejected = []
        self.complete = False

    def reject(self, rejection: Rejection) -> None:
        """Count a rejection and keep it if the list is not full."""
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTED_KEPT:
            self.rejected.append(rejection)

    def to_dict(self) -> dict[str, Any]:
        """Return the counters as a JSON-serialisable dict."""
        return dict(
            docs=self.docs,
            skipped_empty=self.skipped_empty,
            duplicates_dropped=self.duplicates_dropped,
            rejected_count=self.rejected_count,
            rejected=[r.to_dict() for r in self.rejected],
            complete=self.complete,
        )


@runtime_checkable
class Source(Protocol):
    """A corpus, streamed in bounded batches of documents.

    Attributes:
        name: The dataset name used in point ids and collection names.
        counters: What the latest pass saw (read it after iterating).
    """

    name: str
    counters: SourceCounters

    def iter_batches(self, batch_size: int) -> Iterator[list[Document]]:
        """Yield lists of at most `batch_size` documents, in corpus order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Return kind, path, checksum and counters as a JSON-serialisable dict."""
        ...


@dataclass
class DuplicatePlan:
    """Which record positions a pass drops because their id repeats.

    Attributes:
        drop: Positions to drop.
        groups: Each duplicated id with all its positions, in order.
    """

    drop: set[int] = field(default_factory=set)
    groups: list[tuple[str, list[int]]] = field(default_factory=list)


def plan_duplicates(ids: Callable[[], Iterator[tuple[int, str]]], policy: str) -> DuplicatePlan:
    """Find repeated ids with a pass over `(position, id)` pairs, in memory of 16 bytes per record.

    A first pass keeps only 64-bit hashes; a second pass (run only if hashes repeat) reads the real
    ids of the candidate positions, so hash collisions never drop a record.

    Args:
        ids: Called once or twice; each call yields `(position, id)` in corpus order.
        policy: `fail`, `first` (keep the first copy) or `last` (keep the last copy).

    Returns:
        The plan; `drop` is empty for `fail` (the caller raises on `groups`).
    """
    hashes = array("q")
    positions = array("q")
    for pos, doc_id in ids():
        hashes.append(hash(doc_id))
        positions.append(pos)
    if len(hashes) < 2:
        return DuplicatePlan()
    h = np.frombuffer(hashes, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    sorted_h = h[order]
    same = sorted_h[1:] == sorted_h[:-1]
    if not same.any():
        return DuplicatePlan()
    mask = np.zeros(len(sorted_h), dtype=bool)
    mask[1:] |= same
    mask[:-1] |= same
    candidates = set(np.frombuffer(positions, dtype=np.int64)[order[mask]].tolist())
    by_id: dict[str, list[int]] = {}
    for pos, doc_id in ids():
        if pos in candidates:
            by_id.setdefault(doc_id, []).append(pos)
    groups = [(doc_id, sorted(p)) for doc_id, p in by_id.items() if len(p) > 1]
    groups.sort(key=lambda g: g[1][0])
    plan = DuplicatePlan(groups=groups)
    if policy in ("first", "last"):
        for _, p in groups:
            keep = p[0] if policy == "first" else p[-1]
            plan.drop.update(x for x in p if x != keep)
    return plan


class BaseSource(ABC):
    """Shared pass logic: error policy, duplicate policy, empty-document skip, bounded batches.

    Subclasses implement `_records` (the documents or bad records, by position), `_ids` (a cheap
    pass over ids only), `_where` (a position as `file:line` / `file#row`) and `_describe`.
    """

    kind: str = "source"

    def __init__(
        self, name: str, *, on_error: str = "fail", on_duplicate: str = "fail", allow_empty: bool = False
    ) -> None:
        """Set the name and the policies; counters start at zero.

        Args:
            name: The dataset name.
            on_error: `fail` raises on the first bad record; `skip` rejects it and goes on.
            on_duplicate: `fail`, `first` or `last` (which copy of a repeated id is kept).
            allow_empty: Whether a complete pass without any document is accepted (with a warning)
                instead of raising `EmptySourceError`; may also be set on the object afterwards.

        Raises:
            InputError: on an unknown policy.
        """
        if on_error not in ON_ERROR_POLICIES:
            raise InputError(
                f"unknown on_error policy {on_error!r}: use one of {', '.join(ON_ERROR_POLICIES)}"
            )
        if on_duplicate not in ON_DUPLICATE_POLICIES:
            raise InputError(
                f"unknown on_duplicate policy {on_duplicate!r}: use one of {', '.join(ON_DUPLICATE_POLICIES)}"
            )
        self.name = name
        self.on_error = on_error
        self.on_duplicate = on_duplicate
        self.allow_empty = allow_empty
        self.counters = SourceCounters()
        self.warnings: list[str] = []
        # Called with every rejection as it is made (the pipeline appends each to rejected.jsonl).
        self.on_reject: Callable[[Rejection], None] | None = None
        self._plan: DuplicatePlan | None = None
        # `(first, last)` record position of every batch the current `iter_batches` pass yielded (the
        # partitions of a flow are read back by position, see `read_span`).
        self.batch_spans: list[tuple[int, int]] = []

    @abstractmethod
    def _records(self) -> Iterator[tuple[int, Document | BadRecord]]:
        """Yield `(position, document or bad record)` for every record, in order."""

    @abstractmethod
    def _ids(self) -> Iterator[tuple[int, str]]:
        """Yield `(position, id)` for every record whose id can be read, reading as little as possible."""

    @abstractmethod
    def _where(self, position: int) -> str:
        """Return a position as the location users see (`file:line`, `file#row`)."""

    @abstractmethod
    def _describe(self) -> dict[str, Any]:
        """Return the source-specific part of `describe()` (path, checksum, ...)."""

    @property
    def display(self) -> str:
        """A short label of the source for messages."""
        return self.name

    def _read_failure(self, exc: Exception) -> InputError | None:
        """Turn a failure of the underlying reader (corrupt archive, unreadable file) into a one-line
        InputError naming the file and what to do, or return None to let `exc` propagate."""
        return None

    def _guarded(self, items: Iterator[Any]) -> Iterator[Any]:
        """Yield from a reader, translating its failures with `_read_failure` (only the reader's own
        exceptions: those raised while it produces the next item)."""
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except InputError:
                raise
            except Exception as exc:
                translated = self._read_failure(exc)
                if translated is None:
                    raise
                raise translated from exc
            yield item

    def _guarded_ids(self) -> Iterator[tuple[int, str]]:
        return self._guarded(self._ids())

    def empty_message(self) -> str:
        """The message for a pass that yielded no document: what was seen and what to do."""
        c = self.counters
        seen = c.skipped_empty + c.rejected_count + c.duplicates_dropped
        if seen == 0:
            what = "it holds no records"
            fix = "check that this is the right file (a complete export, the right split)"
        else:
            what = (
                f"all {seen} record(s) were dropped ({c.skipped_empty} empty, {c.rejected_count} rejected, "
                f"{c.duplicates_dropped} duplicate)"
            )
            fix = "check the column options (--id-col, --text-col, --title-col) and the records"
        return f"{self.display}: no documents to ingest: {what}: {fix}, or {ALLOW_EMPTY_HINT}"

    def warn(self, message: str) -> None:
        """Log a warning and keep it for `describe()`."""
        logger.warning(message)
        self.warnings.append(message)

    def duplicate_plan(self) -> DuplicatePlan:
        """Run the id pass (once per source object; later calls reuse it) and apply the duplicate policy.

        Raises:
            InputError: with `on_duplicate="fail"` when an id repeats, naming the first few ids and
                their locations.
        """
        if self._plan is None:
            self._plan = plan_duplicates(self._guarded_ids, self.on_duplicate)
        plan = self._plan
        if plan.groups and self.on_duplicate == "fail":
            shown = "; ".join(
                f"{doc_id!r} at {', '.join(self._where(p) for p in pos)}"
                for doc_id, pos in plan.groups[:MAX_DUPLICATES_SHOWN]
            )
            more = len(plan.groups) - MAX_DUPLICATES_SHOWN
            raise InputError(
                f"{self.display}: {len(plan.groups)} duplicate id(s): {shown}"
                + (f" (and {more} more)" if more > 0 else "")
                + ": remove the duplicates, or pass --on-duplicate first (keep the first copy) "
                "or --on-duplicate last (keep the last copy)"
            )
        return plan

    def iter_batches(self, batch_size: int) -> Iterator[list[Document]]:
        """Yield lists of at most `batch_size` documents in corpus order; counters restart at zero.

        Before the first batch a pass over the ids applies the duplicate policy, so a duplicate
        fails the run before anything is ingested.

        Raises:
            ValueError: when `batch_size` < 1.
            InputError: on a bad record (with `on_error="fail"`) or a duplicate id (with
                `on_duplicate="fail"`), naming the location and what to do; on a corrupt or
                unreadable file (naming it).
            EmptySourceError: at the end of a complete pass that yielded no document, unless
                `allow_empty` (then a warning is kept instead).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.counters.reset()
        self.batch_spans = []
        plan = self.duplicate_plan()
        batch: list[Document] = []
        first = 0
        for pos, item in self._guarded(self._records()):
            if isinstance(item, BadRecord):
                if self.on_error == "fail":
                    raise InputError(item.message())
                rejection = Rejection(item.reason, item.location, item.id, item.detail)
                self.counters.reject(rejection)
                if self.on_reject is not None:
                    self.on_reject(rejection)
                continue
            if pos in plan.drop:
                self.counters.duplicates_dropped += 1
                continue
            if not item.title.strip() and not item.text.strip():
                self.counters.skipped_empty += 1
                continue
            if not batch:
                first = pos
            batch.append(item)
            if len(batch) >= batch_size:
                self.counters.docs += len(batch)
                self.batch_spans.append((first, pos))
                yield batch
                batch = []
        if batch:
            self.counters.docs += len(batch)
            self.batch_spans.append((first, pos))
            yield batch
        self.counters.complete = True
        if self.counters.rejected_count:
            logger.warning("%s: %d record(s) rejected", self.display, self.counters.rejected_count)
        if self.counters.docs == 0:
            if not self.allow_empty:
                raise EmptySourceError(self.empty_message(), self.counters)
            self.warn(self.empty_message().replace(f", or {ALLOW_EMPTY_HINT}", " (allowed: --allow-empty)"))

    def seek_hint(self, position: int) -> dict[str, Any]:
        """Where a reader may start to reach record `position` fast (plain data, see `_records_from`).

        Args:
            position: A record position this source object has already read past.

        Returns:
            Source-specific hints (empty: read from the start and skip).
        """
        return {}

    def _records_from(
        self, start: int, stop: int, hint: dict[str, Any]
    ) -> Iterator[tuple[int, Document | BadRecord]]:
        """Yield `_records` from position `start` through `stop` (sources override it to seek)."""
        for pos, item in self._records():
            if pos > stop:
                return
            if pos >= start:
                yield pos, item

    def read_span(
        self,
        start: int,
        stop: int,
        ids: list[str],
        *,
        hint: dict[str, Any] | None = None,
        drop: frozenset[int] = frozenset(),
    ) -> list[Document]:
        """Read back the documents `ids` from the records at positions `start` through `stop`.

        A flow's partition task calls this on its own source object: `iter_batches` of the planning
        pass recorded the span of every batch (`batch_spans`) and the ids it kept; bad records, empty
        documents and other ids are passed over without counting (the planning pass counted them).

        Args:
            start: First record position of the span.
            stop: Last record position of the span (inclusive).
            ids: The ids to return, in corpus order.
            hint: `seek_hint(start)` of the planning source (where to start reading).
            drop: Positions the duplicate policy dropped.

        Returns:
            The documents, in corpus order.

        Raises:
            InputError: a document is missing from the span (the source changed since it was planned),
                or the source cannot be read.
        """
        wanted = set(ids)
        found: list[Document] = []
        for pos, item in self._guarded(self._records_from(start, stop, hint or {})):
            if isinstance(item, BadRecord) or pos in drop or item.id not in wanted:
                continue
            found.append(item)
            wanted.discard(item.id)
            if not wanted:
                break
        if wanted:
            raise InputError(
                f"{self.display}: {len(wanted)} document(s) planned at positions {start}-{stop} are no "
                f"longer there (e.g. {sorted(wanted)[0]!r}): the source changed during the run; run again"
            )
        return found

    def iter_documents(self, batch_size: int = 1024) -> Iterator[Document]:
        """Yield documents one by one (same policies and counters as `iter_batches`)."""
        for batch in self.iter_batches(batch_size):
            yield from batch

    def describe(self) -> dict[str, Any]:
        """Return kind, name, policies, source details (path, checksum), counters and warnings.

        The checksum is computed by streaming the corpus once if no complete pass has computed it
        yet (BEIR: sha256 of corpus.jsonl, known after any `iter_batches` pass; Parquet: of the files).
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "on_error": self.on_error,
            "on_duplicate": self.on_duplicate,
            **self._describe(),
            "counters": self.counters.to_dict(),
            "warnings": list(self.warnings),
        }


_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def dataset_name(raw: str) -> str:
    """Turn a file stem or hub id into a dataset name safe for collection names and point ids.

    Raises:
        InputError: when nothing usable is left.
    """
    name = _NAME_BAD_CHARS.sub("-", raw).strip("-.")
    if not name:
        raise InputError(f"cannot derive a dataset name from {raw!r}: pass a name explicitly (--name)")
    return name


def file_digest(path: Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Return the hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
