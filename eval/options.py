"""Options of one eval run: the CLI, a TOML file and the flow all fill `EvalOptions`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from eval.report import DEFAULT_ALPHA, DEFAULT_WITHIN
from eval.search import DEFAULT_MIN_DOCS, DEFAULT_OVERSAMPLING
from eval.stats import DEFAULT_PERMUTATIONS, DEFAULT_SEED
from ingest.config import CollectionSpec, load_config_file
from ingest.errors import InputError


@dataclass
class EvalOptions:
    """Options of one eval run (the CLI, a TOML file and the flow all fill this).

    Attributes:
        target: BEIR name or corpus path, exactly as given to the ingest (it names the collections).
        collections: Collection specs to evaluate; empty: the default matrix for the model's dim
            plus any other collection of the dataset in the store.
        dims: Keep only these dims (or build the matrix from them), as the ingest's `--dims`.
        quantizations: Keep only these quantizations, as the ingest's `--quantization`.
        split: qrels split.
        data_dir: Data directory of the ingest (embedded shards, models, BEIR cache).
        beir_dirs: Extra directories holding BEIR zips/folders.
        qdrant_url: Qdrant server URL; None: the embedded engine under `data_dir`.
        run_id: Report sub-directory name; default: UTC timestamp.
        out: Reports root; the report goes to `<out>/<dataset>/<run id>/`.
        within: Allowed relative NDCG@10 loss for the recommendation (0.02 = 2%).
        oversampling: Oversampling factors of the rescoring modes.
        min_docs: Distinct documents each query must return (chunk hits re-queried until then).
        ignore_identical_ids: Drop hits whose doc id equals the query id (BEIR's default).
        baseline_model: Optional sentence-transformers model for the transformer baseline.
        queries_path: queries.jsonl for corpora without queries (Parquet / HF).
        qrels_path: qrels .tsv for corpora without qrels.
        model: Query encoder override; None: the model recorded in the collection manifest.
        name: Dataset name override (as given to the ingest with --name).
        id_col, text_col, title_col: Parquet / HF column names (as for the ingest).
        permutations: Sign flips of the paired randomization test.
        seed: Seed of the randomization test.
        alpha: Significance level of the recommendation.
        timeout_s: Server request timeout.
        warmup: Untimed queries before each configuration's timed pass.
    """

    target: str
    collections: list[CollectionSpec] = field(default_factory=list)
    dims: list[int] | None = None
    quantizations: list[str] | None = None
    split: str = "test"
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("STATIC_INGEST_DATA_DIR", "data")))
    beir_dirs: list[Path] = field(default_factory=list)
    qdrant_url: str | None = None
    run_id: str | None = None
    out: Path = Path("reports")
    within: float = DEFAULT_WITHIN
    oversampling: tuple[float, ...] = DEFAULT_OVERSAMPLING
    min_docs: int = DEFAULT_MIN_DOCS
    ignore_identical_ids: bool = True
    baseline_model: str | None = None
    queries_path: Path | None = None
    qrels_path: Path | None = None
    model: str | None = None
    name: str | None = None
    id_col: str = "id"
    text_col: str = "text"
    title_col: str | None = "title"
    permutations: int = DEFAULT_PERMUTATIONS
    seed: int = DEFAULT_SEED
    alpha: float = DEFAULT_ALPHA
    timeout_s: float = 60.0
    warmup: int = 5

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.out = Path(self.out)
        self.beir_dirs = [Path(p) for p in self.beir_dirs]
        self.queries_path = Path(self.queries_path) if self.queries_path is not None else None
        self.qrels_path = Path(self.qrels_path) if self.qrels_path is not None else None
        self.oversampling = tuple(float(o) for o in self.oversampling)
        if self.title_col == "":
            self.title_col = None  # `--title-col ''`: the corpus has no title column
        if not 0 <= self.within < 1:
            raise InputError(f"--within must be a fraction in [0, 1) (0.02 = 2%), got {self.within}")
        if self.min_docs < 1:
            raise InputError(f"--min-docs must be >= 1, got {self.min_docs}")
        if any(o < 1 for o in self.oversampling):
            raise InputError(f"--oversampling factors must be >= 1, got {list(self.oversampling)}")
        if (self.queries_path is None) != (self.qrels_path is None):
            raise InputError("give --queries and --qrels together (a queries.jsonl and a qrels .tsv)")

    @classmethod
    def build(cls, target: str, config_file: Path | str | None = None, **overrides: Any) -> EvalOptions:
        """Build options from an optional ingest TOML file (its `[[collections]]`, `dims`,
        `quantizations`, `data_dir`, `qdrant_url`, `beir_dirs` and column names are used) and explicit
        overrides (None ignored).

        Raises:
            InputError: on a bad file or value.
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        if config_file:
            from_file = load_config_file(Path(config_file))
            values.update({k: v for k, v in from_file.items() if k in known and k not in ("model", "target")})
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown eval option(s) {unknown}")
        return cls(target=target, **values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable options (collections as dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "collections":
                value = [s.to_dict() for s in value]
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, list):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out
