"""Collection configurations (Matryoshka dim × quantization × index params) and ingest options."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from ingest.errors import InputError

Quantization = Literal["none", "binary", "scalar"]
QUANTIZATIONS: tuple[str, ...] = ("none", "binary", "scalar")
# Qdrant's names for binary quantization encodings.
BINARY_ENCODINGS: tuple[str, ...] = ("one_bit", "two_bits", "one_and_half_bits")
MATRYOSHKA_DIMS: tuple[int, ...] = (1024, 512, 256, 128, 64)
DEFAULT_NAME_TEMPLATE = "{dataset}-d{dim}-{quantization}"


@dataclass(frozen=True)
class CollectionSpec:
    """One Qdrant collection configuration fed by an ingest.

    Attributes:
        dim: Matryoshka dimension: the encoder output is prefix-sliced to it and re-normalised.
        quantization: `none`, `binary` or `scalar` (int8).
        name_template: Collection name; `{dataset}`, `{dim}`, `{quantization}` are filled in.
        hnsw_m: HNSW graph degree.
        hnsw_ef_construct: HNSW build-time candidate list size.
        on_disk: Keep original vectors on disk (memmap) instead of RAM.
        binary_encoding: Qdrant's binary encoding: `one_bit`, `two_bits` or `one_and_half_bits`.
        always_ram: Keep quantized vectors in RAM (Qdrant's `always_ram`).
        scalar_quantile: Quantile for scalar quantization bounds.
        full_scan_threshold: Qdrant's HNSW `full_scan_threshold` in KB of float32 vectors; a segment
            smaller than that answers by full scan. Default 10 KB: HNSW is what serves (and what the eval
            measures) even on BEIR-sized collections, as in the published runs that forced indexing.
            None keeps the engine default (10,000 KB: full scan below ~2,500 vectors at 1024-d).
    """

    dim: int
    quantization: str = "none"
    name_template: str = DEFAULT_NAME_TEMPLATE
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    on_disk: bool = False
    binary_encoding: str = "one_bit"
    always_ram: bool = True
    scalar_quantile: float = 0.99
    full_scan_threshold: int | None = 10

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise InputError(f"collection dim must be positive, got {self.dim}")
        if self.quantization not in QUANTIZATIONS:
            raise InputError(
                f"unknown quantization {self.quantization!r}: use one of {', '.join(QUANTIZATIONS)}"
            )
        if self.binary_encoding not in BINARY_ENCODINGS:
            raise InputError(
                f"unknown binary encoding {self.binary_encoding!r}: use one of {', '.join(BINARY_ENCODINGS)}"
            )

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
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> CollectionSpec:
        """Build a spec from a dict (a TOML table), rejecting unknown keys.

        Raises:
            InputError: on an unknown key or a bad value, naming `where`.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{where}: unknown collection key(s) {unknown}; known keys: {sorted(known)}")
        if "dim" not in data:
            raise InputError(f"{where}: every collection needs a `dim`")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"{where}: {exc}") from exc


def default_matrix(
    model_dim: int, quantizations: tuple[str, ...] = ("none", "binary")
) -> list[CollectionSpec]:
    """Return the default matrix: every Matryoshka dim up to the model's, × the given quantizations.

    A model whose dimension is not in the Matryoshka list (e.g. a 256-d stand-in) gets its own
    dimension plus every smaller Matryoshka dimension.
    """
    dims = sorted({d for d in MATRYOSHKA_DIMS if d <= model_dim} | {model_dim}, reverse=True)
    return [CollectionSpec(dim=d, quantization=q) for d in dims for q in quantizations]


def env_beir_dirs() -> list[Path]:
    """Directories named by `STATIC_INGEST_BEIR_DIR` (separated like PATH)."""
    return [Path(p) for p in os.environ.get("STATIC_INGEST_BEIR_DIR", "").split(os.pathsep) if p]


@dataclass
class IngestConfig:
    """Options of one ingest run (the CLI, a TOML file and the flows all fill this)."""

    collections: list[CollectionSpec] = field(default_factory=list)
    model: str = "auto"
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("STATIC_INGEST_DATA_DIR", "data")))
    beir_dirs: list[Path] = field(default_factory=env_beir_dirs)
    qdrant_url: str | None = field(default_factory=lambda: os.environ.get("QDRANT_URL") or None)
    chunk_tokens: int = 512
    chunk_overlap: int = 64
    batch_docs: int = 2048
    limit: int | None = None
    recreate: bool = False
    store_text: bool = True
    on_error: str = "fail"
    on_duplicate: str = "fail"
    id_col: str = "id"
    text_col: str = "text"
    title_col: str = "title"
    workers: int = 0
    timeout_s: float = 60.0
    dims: list[int] | None = None
    quantizations: list[str] | None = None
    name: str | None = None

    def with_overrides(self, **overrides: Any) -> IngestConfig:
        """Return a copy with the non-None overrides applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML configuration file.

    The file may hold top-level ingest options (`model`, `chunk_tokens`, ...) and a
    `[[collections]]` array of tables, each a `CollectionSpec`.

    Returns:
        A dict with `collections` as a list of `CollectionSpec` and the other options as given.

    Raises:
        InputError: when the file is missing, not valid TOML, or has an unknown key.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"config file {path} does not exist: check the --config path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from exc
    out: dict[str, Any] = {}
    option_names = {f.name for f in fields(IngestConfig)} - {"collections"}
    for key, value in raw.items():
        if key == "collections":
            if not isinstance(value, list):
                raise InputError(f"{path}: `collections` must be an array of tables ([[collections]])")
            out["collections"] = [
                CollectionSpec.from_dict(dict(table), where=f"{path} [[collections]] #{i + 1}")
                for i, table in enumerate(value)
            ]
        elif key in option_names:
            out[key] = Path(value) if key == "data_dir" else value
        else:
            raise InputError(f"{path}: unknown option {key!r}; known options: {sorted(option_names)}")
    return out


def parse_csv(value: str | None, *, cast: type = str, what: str = "value") -> list[Any] | None:
    """Split a comma-separated option (`1024,256`), casting each part; None stays None.

    Raises:
        InputError: naming the option when a part does not cast.
    """
    if value is None or value == "":
        return None
    try:
        return [cast(part.strip()) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise InputError(f"{what}: cannot read {value!r} as a comma-separated list ({exc})") from exc


def build_config(config_file: Path | str | None = None, **overrides: Any) -> IngestConfig:
    """Build the run options the CLI and the flows share: TOML file first, then explicit overrides.

    Args:
        config_file: Optional TOML file (options + `[[collections]]`).
        overrides: Any `IngestConfig` field; None values are ignored.

    Returns:
        The merged configuration.

    Raises:
        InputError: on a bad file, unknown option or bad value.
    """
    from_file: dict[str, Any] = load_config_file(Path(config_file)) if config_file else {}
    cfg = IngestConfig().with_overrides(**from_file).with_overrides(**overrides)
    cfg.data_dir = Path(cfg.data_dir)
    cfg.beir_dirs = [Path(p) for p in cfg.beir_dirs]
    for option, allowed in (("on_error", ("fail", "skip")), ("on_duplicate", ("fail", "first", "last"))):
        if getattr(cfg, option) not in allowed:
            raise InputError(f"--{option.replace('_', '-')} must be one of {', '.join(allowed)}")
    for q in cfg.quantizations or []:
        if q not in QUANTIZATIONS:
            raise InputError(f"unknown quantization {q!r} in --quantization: use {', '.join(QUANTIZATIONS)}")
    return cfg


def resolve_collections(cfg: IngestConfig, model_dim: int) -> list[CollectionSpec]:
    """The collection specs of a run: the config's `[[collections]]`, else the default matrix.

    `cfg.dims` / `cfg.quantizations` (from `--dims` / `--quantization`) narrow or replace the
    default matrix; with explicit collections they filter them.

    Raises:
        InputError: if a requested dim exceeds the model's dimension, or nothing is left.
    """
    quantizations = tuple(cfg.quantizations or ("none", "binary"))
    if cfg.collections:
        specs = [
            s
            for s in cfg.collections
            if (not cfg.dims or s.dim in cfg.dims)
            and (not cfg.quantizations or s.quantization in quantizations)
        ]
    elif cfg.dims:
        specs = [CollectionSpec(dim=d, quantization=q) for d in cfg.dims for q in quantizations]
    else:
        specs = default_matrix(model_dim, quantizations)
    too_big = sorted({s.dim for s in specs if s.dim > model_dim})
    if too_big:
        raise InputError(
            f"collection dim(s) {too_big} exceed the model's dimension {model_dim}: "
            f"use dims ≤ {model_dim} (--dims or the config file)"
        )
    if not specs:
        raise InputError("no collection left to fill: check --dims / --quantization against the config file")
    return specs
