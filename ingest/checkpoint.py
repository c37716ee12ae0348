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
    """Completed batches of one collection for one ingest fingerprint.

    A batch is recorded only after the store acknowledged and flushed its points. The
    fingerprint ties the record to the source, model, batch size and chunking: a rerun with
    anything different starts over (re-upserting is idempotent thanks to deterministic ids).
    """

    path: Path
    fingerprint: dict[str, Any]
    done: dict[int, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, fingerprint: dict[str, Any]) -> Checkpoint:
        """Read the checkpoint at `path`; an absent, unreadable or foreign one counts as empty."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return cls(path, fingerprint)
        if raw.get("fingerprint") != fingerprint:
            return cls(path, fingerprint)
        done = {int(k): v for k, v in raw.get("done", {}).items()}
        return cls(path, fingerprint, done)

    def mark(self, batch_no: int, docs: int, chunks: int) -> None:
        """Record a flushed batch and write the file atomically."""
        self.done[batch_no] = {"docs": docs, "chunks": chunks}
        self.save()

    def save(self) -> None:
        """Write atomically: a temp file in the same directory, fsync, rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"fingerprint": self.fingerprint, "done": {str(k): v for k, v in sorted(self.done.items())}}
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

    def clear(self) -> None:
        """Forget every batch (used with --recreate)."""
        self.done.clear()
        self.path.unlink(missing_ok=True)
