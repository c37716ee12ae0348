"""The outcome of an ingest run: what the CLI prints, the flow publishes and `summary.json` holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SyncCounts:
    """What a run did to the documents (the run summary's sync line)."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    encoded_docs: int = 0
    encoded_chunks: int = 0
    deletions_skipped: str = ""

    def count(self, plan: Any, chunks: int) -> None:
        """Add a stored batch (`plan`: its `ingest.sync.BatchPlan`)."""
        self.added += plan.added
        self.changed += plan.changed
        self.unchanged += plan.unchanged
        self.encoded_docs += len(plan.docs)
        self.encoded_chunks += chunks


@dataclass(kw_only=True)
class IngestSummary(SyncCounts):
    """The outcome of an ingest run, printed by the CLI and published by the flow.

    `peak_rss_mb` is this (the main) process's peak, as `ingest.memory.peak_rss_mb` measures it;
    encoder worker processes are not included.

    `docs` counts the documents read from the source, `chunks` the chunks the (first) collection holds
    (its record's sum). The sync counts say what this run did: documents `added` / `changed` /
    `unchanged` (skipped, not encoded) / `deleted` (absent from the source, `--sync full`), and what it
    encoded; `docs_per_s` counts encoded documents only. `status` is each collection's manifest status:
    `complete`, or the reason it is not.
    """

    dataset: str
    source: dict[str, Any]
    model: dict[str, Any]
    backend: str
    docs: int = 0
    chunks: int = 0
    skipped_empty: int = 0
    rejected: int = 0
    resumed_batches: int = 0
    points: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    run_dir: str = ""
    sync: str = "full"
    status: dict[str, str] = field(default_factory=dict)

    @property
    def docs_per_s(self) -> float:
        """Encoded documents per second of wall time (skipped, unchanged ones do not count)."""
        return self.encoded_docs / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        out = asdict(self)
        out["docs_per_s"] = round(self.docs_per_s, 1)
        return out

    def format(self) -> str:
        """A human-readable summary."""
        lines = [
            f"dataset     {self.dataset}",
            f"model       {self.model.get('model_id')} ({self.model.get('kind')}, "
            f"dim {self.model.get('dim')})",
            f"backend     {self.backend}",
            f"docs        {self.docs}  (skipped empty: {self.skipped_empty}, rejected: {self.rejected}, "
            f"resumed batches: {self.resumed_batches})",
            f"chunks      {self.chunks}",
            f"sync        {self.sync}: {self.added} added, {self.changed} changed, "
            f"{self.unchanged} unchanged, {self.deleted} deleted"
            + (f" (deletions skipped: {self.deletions_skipped})" if self.deletions_skipped else ""),
            f"encoded     {self.encoded_docs} docs, {self.encoded_chunks} chunks",
            f"wall time   {self.seconds:.1f} s  "
            + (f"({self.docs_per_s:.0f} encoded docs/s)" if self.encoded_docs else "(nothing encoded)"),
            f"peak RSS    {self.peak_rss_mb:.0f} MB",
            "stages      " + ", ".join(f"{k} {v:.1f} s" for k, v in self.stage_seconds.items()),
            f"verified    {'yes' if self.verified else 'NO'} (point counts == chunks in every collection)",
            f"run dir     {self.run_dir}"
            + ("  (every rejected record is in rejected.jsonl there)" if self.rejected else ""),
            "collections:",
        ]
        width = max((len(n) for n in self.points), default=10)
        lines += [
            f"  {name:<{width}}  {count:>9} points  {self.status.get(name, '')}".rstrip()
            for name, count in self.points.items()
        ]
        return "\n".join(lines)
