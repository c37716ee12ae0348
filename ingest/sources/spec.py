"""How to open a source, as plain data: what a CLI run, an eval and a flow task each open it from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.sources.base import BaseSource


@dataclass(frozen=True)
class SourceSpec:
    """How to open the run's source in another process (the source options of an `IngestConfig`).

    Attributes:
        target: What to ingest, as given (BEIR name or path, Parquet, `hf:`).
        data_dir: The data directory (BEIR downloads, extracted archives).
        beir_dirs: Where BEIR datasets are looked up by name.
        id_col: Id column (Parquet, HF).
        text_col: Text column.
        title_col: Title column ('' or None: none).
        on_error: The bad-record policy.
        on_duplicate: The duplicate-id policy.
        name: The dataset name, if set.
    """

    target: str
    data_dir: str
    beir_dirs: tuple[str, ...]
    id_col: str
    text_col: str
    title_col: str | None
    on_error: str
    on_duplicate: str
    name: str | None

    @classmethod
    def of(cls, target: str, opts: Any) -> SourceSpec:
        """The spec of `target` opened with the source options of `opts` (an `IngestConfig`, or the
        eval's options, which have no bad-record policies: those read strictly)."""
        return cls(
            target=target,
            data_dir=str(opts.data_dir),
            beir_dirs=tuple(str(d) for d in opts.beir_dirs),
            id_col=opts.id_col,
            text_col=opts.text_col,
            title_col=opts.title_col,
            on_error=getattr(opts, "on_error", "fail"),
            on_duplicate=getattr(opts, "on_duplicate", "fail"),
            name=opts.name,
        )

    def open(self) -> BaseSource:
        """Open the source (nothing is read but its directory or metadata)."""
        from ingest.sources import open_source

        source: BaseSource = open_source(
            self.target,
            data_dir=Path(self.data_dir),
            beir_dirs=[Path(d) for d in self.beir_dirs],
            id_col=self.id_col,
            text_col=self.text_col,
            title_col=self.title_col,
            on_error=self.on_error,
            on_duplicate=self.on_duplicate,
            name=self.name,
        )
        return source
