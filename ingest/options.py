"""The ingest's option models: `CollectionSpec` (one collection) and `IngestConfig` (one run).

Each field is declared once (type, constraints, help text); the command line (`python -m ingest`,
`python -m flows.ingest_flow`), the TOML file and the Prefect flow parameters are generated from or
validated by these models (see `ingest.optionmodel`). Adding an option is one field here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import field_validator, model_validator

from ingest.optionmodel import (
    NonNegativeInt,
    OptionsError,
    PositiveFloat,
    PositiveInt,
    StrictBool,
    StrictFloat,
    environment_validator,
    model_fields,
    option,
    options_model,
)

Quantization = Literal["none", "binary", "scalar"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
# Qdrant's names for binary quantization encodings.
BinaryEncoding = Literal["one_bit", "two_bits", "one_and_half_bits"]
BINARY_ENCODINGS: tuple[str, ...] = get_args(BinaryEncoding)
OnError = Literal["fail", "skip"]
OnDuplicate = Literal["fail", "first", "last"]
MATRYOSHKA_DIMS: tuple[int, ...] = (1024, 512, 256, 128, 64)
DEFAULT_NAME_TEMPLATE = "{dataset}-d{dim}-{quantization}"
# Environment variables the options read at run time (see `ingest.optionmodel.apply_environment`).
ENV_DATA_DIR = "STATIC_INGEST_DATA_DIR"
ENV_BEIR_DIR = "STATIC_INGEST_BEIR_DIR"
ENV_QDRANT_URL = "QDRANT_URL"


@options_model(frozen=True, cli=False)
class CollectionSpec:
    """One Qdrant collection configuration fed by an ingest (a `[[collections]]` table of the TOML file).

    `full_scan_threshold`: 10 KB by default, so that HNSW is what serves (and what the eval measures)
    even on BEIR-sized collections, as in the published runs that forced indexing.
    """

    dim: PositiveInt = option(
        description="Matryoshka dimension: the encoder output is prefix-sliced to it and re-normalised "
        "(at most the model's dimension)"
    )
    quantization: Quantization = option("none", "none, binary or scalar (int8)")
    name_template: str = option(
        DEFAULT_NAME_TEMPLATE, "collection name; {dataset}, {dim}, {quantization} are filled in"
    )
    hnsw_m: NonNegativeInt = option(
        16,
        "HNSW graph degree; 0 builds no graph: the collection answers by exact search (the default "
        "matrix's float collections, the eval's exact baseline, unless --float-hnsw)",
    )
    hnsw_ef_construct: PositiveInt = option(100, "HNSW build-time candidate list size")
    on_disk: StrictBool = option(False, "keep original vectors on disk (memmap) instead of RAM")
    binary_encoding: BinaryEncoding = option("one_bit", "Qdrant's binary encoding")
    always_ram: StrictBool = option(True, "keep quantized vectors in RAM (Qdrant's always_ram)")
    scalar_quantile: StrictFloat = option(0.99, "quantile for scalar quantization bounds, in [0.5, 1]")
    full_scan_threshold: NonNegativeInt | None = option(
        10,
        "Qdrant's HNSW full_scan_threshold in KB of float32 vectors: a segment smaller than that answers "
        "by full scan; null keeps the engine default (10,000 KB)",
    )
    # Qdrant cluster settings: applied by the server backend at creation and compared on reuse; the
    # embedded engine (one local shard) ignores them with a warning. None keeps the server's default.
    shard_number: PositiveInt | None = option(
        None,
        "Qdrant server: shards of the collection (default: 1 standalone, else one per node); fixed at "
        "creation",
    )
    replication_factor: PositiveInt | None = option(
        None, "Qdrant server: copies of each shard the cluster keeps (default 1)"
    )
    write_consistency_factor: PositiveInt | None = option(
        None,
        "Qdrant server: replicas that must acknowledge a write before it succeeds (default 1; at most "
        "replication_factor)",
    )

    @field_validator("scalar_quantile")
    @classmethod
    def _quantile_range(cls, value: float) -> float:
        if not 0.5 <= value <= 1.0:
            raise ValueError("must be in [0.5, 1], Qdrant's range")
        return value

    @field_validator("write_consistency_factor")
    @classmethod
    def _within_replicas(cls, value: int | None, info: Any) -> int | None:
        replicas = info.data.get("replication_factor") or 1
        if value is not None and value > replicas:
            raise ValueError(
                f"must be at most replication_factor = {replicas}: no write could be acknowledged by "
                "more replicas than exist"
            )
        return value

    def name(self, dataset: str) -> str:
        """Return the collection name for a dataset."""
        return self.name_template.format(dataset=dataset, dim=self.dim, quantization=self.quantization)

    @property
    def bytes_per_vector(self) -> float:
        """Bytes one vector takes in the structure searched first (quantized if any)."""
        if self.quantization == "binary":
            bits = {"one_bit": 1.0, "two_bits": 2.0, "one_and_half_bits": 1.5}[self.binary_encoding]
            return self.dim * bits / 8
        if self.quantization == "scalar":
            return float(self.dim)
        return self.dim * 4.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return {name: getattr(self, name) for name in model_fields(type(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> CollectionSpec:
        """Build a spec from a dict (a TOML table or a manifest), rejecting unknown keys.

        Raises:
            InputError: on an unknown key or a bad value, naming `where` and the key.
        """
        try:
            return cls(**data)
        except OptionsError as exc:
            raise exc.renamed(lambda loc: f"{where}: {'.'.join(str(p) for p in loc)}") from None


# The default matrix's quantizations: float, binary (1 bit) and scalar int8, so the eval compares them.
DEFAULT_QUANTIZATIONS: tuple[Quantization, ...] = ("none", "binary", "scalar")


def matrix_spec(dim: int, quantization: str, *, float_hnsw: bool = False) -> CollectionSpec:
    """One collection of the default matrix (or of `--dims` without `[[collections]]`).

    A float collection gets no HNSW graph (`hnsw_m = 0`) unless `float_hnsw`: it serves the eval's
    exact baseline, and its graph is the most expensive one to build (about 60 % of the default
    matrix's build CPU at 171K documents, against 2–6× less for a binary or scalar collection).
    """
    hnsw_m = 0 if quantization == "none" and not float_hnsw else 16
    return CollectionSpec(dim=dim, quantization=quantization, hnsw_m=hnsw_m)  # type: ignore[arg-type]


def default_matrix(
    model_dim: int, quantizations: tuple[str, ...] = DEFAULT_QUANTIZATIONS, *, float_hnsw: bool = False
) -> list[CollectionSpec]:
    """Return the default matrix: every Matryoshka dim up to the model's, × the given quantizations
    (default `none`, `binary`, `scalar`); float collections without an HNSW graph unless
    `float_hnsw` (`matrix_spec`).

    A model whose dimension is not in the Matryoshka list (e.g. a 256-d stand-in) gets its own
    dimension plus every smaller Matryoshka dimension.
    """
    dims = sorted({d for d in MATRYOSHKA_DIMS if d <= model_dim} | {model_dim}, reverse=True)
    return [matrix_spec(d, q, float_hnsw=float_hnsw) for d in dims for q in quantizations]


@options_model()
class StoreOptions:
    """The options the ingest and the eval share: where the data and the collections are, and which
    collections. `data_dir`, `beir_dirs` and `qdrant_url` also come from the environment when the
    options are validated (STATIC_INGEST_DATA_DIR, STATIC_INGEST_BEIR_DIR appended, QDRANT_URL)."""

    collections: list[CollectionSpec] = option(
        default_factory=list,
        description="collection configurations ([[collections]] tables of the TOML file); empty: the "
        "default matrix (the eval adds any other collection of the dataset in the store)",
        cli=False,
    )
    qdrant_url: str | None = option(
        None,
        "Qdrant server URL (gRPC preferred; default $QDRANT_URL, else the embedded engine "
        "(qdrant-edge) under <data dir>/qdrant/)",
        env=ENV_QDRANT_URL,
    )
    data_dir: Path = option(
        Path("data"),
        "where datasets, models, shards, checkpoints live (default $STATIC_INGEST_DATA_DIR, else data/)",
        env=ENV_DATA_DIR,
    )
    beir_dirs: list[Path] = option(
        default_factory=list,
        description="a directory holding BEIR zips or folders, searched before <data dir>/beir "
        "(repeatable; $STATIC_INGEST_BEIR_DIR's are added)",
        flag="--beir-dir",
        env=ENV_BEIR_DIR,
    )
    dims: list[PositiveInt] | None = option(
        None,
        "Matryoshka dims, comma-separated: only these of the [[collections]], else the default matrix "
        "of these (default: 1024,512,256,128,64 capped at the model's)",
    )
    quantizations: list[Quantization] | None = option(
        None,
        "quantizations, comma-separated from none,binary,scalar, narrowing as --dims does "
        "(default none,binary,scalar)",
        flag="--quantization",
    )
    timeout_s: PositiveFloat = option(
        60.0, "server request timeout in seconds (default 60)", flag="--timeout"
    )
    retries: NonNegativeInt = option(
        5,
        "server backend: retries of a failed request (each batch on its own), waiting 0.5 s, 1 s, 2 s, "
        "... up to 16 s between attempts (default 5; 0: no retry)",
    )

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, data: Any) -> Any:
        return environment_validator(cls, data)


@options_model(kw_only=True)
class IngestConfig(StoreOptions):
    """Options of one ingest run (the CLI, a TOML file and the flows all fill this)."""

    model: str = option(
        "auto",
        "model: 'auto' (default: the hub model if cached/reachable, else the offline stand-in), "
        "'standin', a hub id or a local path of a static sentence-transformers or model2vec model",
    )
    limit: NonNegativeInt | None = option(None, "ingest only the first N documents")
    recreate: StrictBool = option(False, "drop and recreate the collections (and checkpoints)")
    allow_empty: StrictBool = option(
        False,
        "accept a source without documents: create its collections empty and mark them complete "
        "(default: a warning and exit code 1)",
    )
    force: StrictBool = option(
        False, "skip the free-space check before loading (embedded engine; a full disk still stops the run)"
    )
    sync: Literal["full", "incremental", "none"] | None = option(
        None,
        "full: skip unchanged documents, rewrite changed ones, delete those gone from the source; "
        "incremental: the same without deleting; none: upsert everything (default: full, incremental "
        "with --limit)",
    )
    chunk_tokens: PositiveInt = option(512, "chunk window in tokens, title included (default 512)")
    chunk_overlap: NonNegativeInt = option(
        64, "tokens shared by consecutive windows, less than --chunk-tokens (default 64)"
    )
    batch_docs: PositiveInt = option(
        2048, "documents per batch: the unit of encoding, checkpoints and flow tasks (default 2048)"
    )
    store_text: StrictBool = option(
        True,
        "store the chunk text in the payload",
        flag="--no-text",
        flag_help="do not store the chunk text in the payload",
    )
    float_hnsw: StrictBool = option(
        False,
        "build HNSW graphs on the default matrix's float collections too (the eval then splits each "
        "quantized configuration's loss into its HNSW and quantization parts; about 2.5x the build "
        "time); default: float collections answer by exact search, the eval's baseline",
    )
    workers: NonNegativeInt = option(
        0,
        "processes that chunk and encode while this one reads and upserts; 0 (default) = automatic: "
        "one for corpora of 20,000 documents or more (or of unknown size) on 2+ cores, else none "
        "(threads)",
    )
    on_error: OnError = option(
        "fail", "bad records: stop (default) or skip them into rejected.jsonl in the run directory"
    )
    on_duplicate: OnDuplicate = option(
        "fail", "duplicate document ids: stop (default), keep the first or keep the last"
    )
    id_col: str = option("id", "id column for Parquet / HF datasets (default id)")
    text_col: str = option("text", "text column for Parquet / HF datasets (default text)")
    title_col: str = option("title", "title column for Parquet / HF datasets (default title; '' for none)")
    name: str | None = option(
        None,
        "dataset name used in collection names and point ids (default: the BEIR name, or the "
        "file/folder stem)",
    )

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_window(cls, value: int, info: Any) -> int:
        tokens = info.data.get("chunk_tokens")
        if isinstance(tokens, int) and value >= tokens:
            raise ValueError(f"must be less than the chunk window, chunk_tokens = {tokens}")
        return value

    def with_overrides(self, **overrides: Any) -> IngestConfig:
        """Return a validated copy with the non-None overrides applied."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
