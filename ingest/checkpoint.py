"""Per-collection checkpoints: which document batches are durably stored, so a rerun resumes."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Checkpoint:
    """Completed batches of one collection for one ingest fingerprint and one shard generation.

    A batch is recorded only after the store acknowledged and flushed its points (and the collection's
    record holds them). The fingerprint ties the checkpoint to the source, model, batch size and
    chunking; the generation to the shard it describes (the id its manifest got when it was created):
    a checkpoint of another fingerprint or generation is void, so a rerun with anything different, or
    after the shard was lost or recreated, does not skip batches that are not in the shard.

    Attributes:
        path: The JSON file.
        fingerprint: What the run ingests and how.
        generation: The shard's generation id.
        done: Batch number → `{"docs", "chunks"}` stored.
        void: A file was there but for another fingerprint or generation (or unreadable).
    """

    path: Path
    fingerprint: dict[str, Any]
    generation: str = ""
    done: dict[int, dict[str, int]] = field(default_factory=dict)
    void: bool = False

    @classmethod
    def load(cls, path: Path, fingerprint: dict[str, Any], generation: str = "") -> Checkpoint:
        """Read the checkpoint at `path`; an absent, unreadable or foreign one counts as empty.

        Args:
            path: The file.
            fingerprint: This run's fingerprint.
            generation: The generation id of the collection's shard.

        Returns:
            The checkpoint; `void` says whether a file was there that does not apply.
        """
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, fingerprint, generation)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return cls(path, fingerprint, generation, void=True)
        if (
            not isinstance(raw, dict)
            or raw.get("fingerprint") != fingerprint
            or raw.get("generation", "") != generation
        ):
            return cls(path, fingerprint, generation, void=True)
        done = {int(k): v for k, v in raw.get("done", {}).items()}
        return cls(path, fingerprint, generation, done)

    def mark(self, batch_no: int, docs: int, chunks: int) -> None:
        """Record a flushed batch and write the file atomically."""
        self.mark_many({batch_no: (docs, chunks)})

    def mark_many(self, batches: dict[int, tuple[int, int]]) -> None:
        """Record flushed batches (batch number → documents, chunks) and write the file once, atomically."""
        for batch_no, (docs, chunks) in batches.items():
            self.done[batch_no] = {"docs": docs, "chunks": chunks}
        self.save()

    def save(self) -> None:
        """Write atomically: a temp file in the same directory, fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "generation": self.generation,
            "fingerprint": self.fingerprint,
            "done": {str(k): v for k, v in sorted(self.done.items())},
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.void = False

    def clear(self) -> None:
        """Forget every batch."""
        self.done.clear()
        self.path.unlink(missing_ok=True)
