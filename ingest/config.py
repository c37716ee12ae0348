"""Building the options of a run: the TOML file, then explicit overrides, validated once; the
collection matrix a run fills. The models themselves are in `ingest.options`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from ingest.errors import InputError
from ingest.optionmodel import OptionsError, cli_name, model_fields
from ingest.options import (
    BINARY_ENCODINGS,
    DEFAULT_NAME_TEMPLATE,
    DEFAULT_QUANTIZATIONS,
    ENV_BEIR_DIR,
    MATRYOSHKA_DIMS,
    QUANTIZATIONS,
    CollectionSpec,
    IngestConfig,
    Quantization,
    default_matrix,
    matrix_spec,
)

__all__ = [
    "BINARY_ENCODINGS",
    "DEFAULT_NAME_TEMPLATE",
    "MATRYOSHKA_DIMS",
    "QUANTIZATIONS",
    "CollectionSpec",
    "IngestConfig",
    "Quantization",
    "build_config",
    "default_matrix",
    "env_beir_dirs",
    "load_config_file",
    "matrix_spec",
    "read_config_file",
    "resolve_collections",
    "validate_options",
]


def env_beir_dirs() -> list[Path]:
    """Directories named by `STATIC_INGEST_BEIR_DIR` (separated like PATH)."""
    return [Path(p) for p in os.environ.get(ENV_BEIR_DIR, "").split(os.pathsep) if p]


def read_config_file(path: Path, known: set[str]) -> dict[str, Any]:
    """Read a TOML configuration file as given, checking only its syntax and its keys.

    Args:
        path: The TOML file: top-level options and a `[[collections]]` array of tables.
        known: The option names the reader accepts.

    Returns:
        The file's values (not yet validated: `validate_options` does that with the overrides).

    Raises:
        InputError: when the file is missing, not valid TOML, or has an unknown key.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"config file {path} does not exist: check the --config path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(f"{path}: unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}")
    if "collections" in raw and not isinstance(raw["collections"], list):
        raise InputError(f"{path}: `collections` must be an array of tables ([[collections]])")
    return raw


def toml_name(path: Path, loc: tuple[str | int, ...]) -> str:
    """A TOML key as the user wrote it: `matrix.toml: batch_docs`, `matrix.toml [[collections]] #1: dim`."""
    if len(loc) >= 3 and isinstance(loc[1], int):
        return f"{path} [[{loc[0]}]] #{loc[1] + 1}: {'.'.join(str(p) for p in loc[2:])}"
    if len(loc) == 2 and isinstance(loc[1], int):
        return f"{path}: {loc[0]} item #{loc[1] + 1}"
    return f"{path}: {'.'.join(str(p) for p in loc)}"


def validate_options(
    model: type, from_file: dict[str, Any], overrides: dict[str, Any], config_file: Path | None, **fixed: Any
) -> Any:
    """Build an option model from the file's values and the overrides (which win), validated once.

    An error names each bad option where it came from: the TOML file and key, else the flag.

    Raises:
        InputError: one line naming the option(s), the value(s) given and what is accepted.
    """
    values = {**from_file, **overrides, **fixed}
    try:
        return model(**values)
    except OptionsError as exc:

        def name(loc: tuple[str | int, ...]) -> str:
            key = loc[0] if loc else None
            if config_file is not None and key in from_file and key not in overrides:
                return toml_name(config_file, loc)
            return cli_name(model, loc)

        raise exc.renamed(name) from None


def load_config_file(path: Path) -> dict[str, Any]:
    """Read and validate a TOML configuration file of the ingest.

    Returns:
        The file's options, validated and typed (`collections` as `CollectionSpec`s).

    Raises:
        InputError: naming the file and key on a missing file, bad TOML, unknown key or bad value.
    """
    raw = read_config_file(path, set(model_fields(IngestConfig)))
    cfg = validate_options(IngestConfig, raw, {}, path)
    return {key: getattr(cfg, key) for key in raw}


def build_config(config_file: Path | str | None = None, **overrides: Any) -> IngestConfig:
    """Build the run options the CLI and the flows share: TOML file first, then explicit overrides.

    Args:
        config_file: Optional TOML file (options + `[[collections]]`).
        overrides: Any `IngestConfig` field; None values are ignored.

    Returns:
        The validated configuration (environment defaults applied).

    Raises:
        InputError: on a bad file, unknown option or bad value, in one line naming it.
    """
    path = Path(config_file) if config_file else None
    from_file = read_config_file(path, set(model_fields(IngestConfig))) if path else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(model_fields(IngestConfig)))
    if unknown:
        raise InputError(f"unknown ingest option(s) {unknown}")
    cfg: IngestConfig = validate_options(IngestConfig, from_file, given, path)
    return cfg


def resolve_collections(cfg: IngestConfig, model_dim: int) -> list[CollectionSpec]:
    """The collection specs of a run: the config's `[[collections]]`, else the default matrix.

    `cfg.dims` / `cfg.quantizations` (from `--dims` / `--quantization`) narrow or replace the
    default matrix; with explicit collections they filter them.

    Raises:
        InputError: if a requested dim exceeds the model's dimension, or nothing is left.
    """
    quantizations = tuple(cfg.quantizations or DEFAULT_QUANTIZATIONS)
    if cfg.collections:
        specs = [
            s
            for s in cfg.collections
            if (not cfg.dims or s.dim in cfg.dims)
            and (not cfg.quantizations or s.quantization in quantizations)
        ]
    elif cfg.dims:
        specs = [matrix_spec(d, q, float_hnsw=cfg.float_hnsw) for d in cfg.dims for q in quantizations]
    else:
        specs = default_matrix(model_dim, quantizations, float_hnsw=cfg.float_hnsw)
    too_big = sorted({s.dim for s in specs if s.dim > model_dim})
    if too_big:
        raise InputError(
            f"collection dim(s) {too_big} exceed the model's dimension {model_dim}: "
            f"use dims ≤ {model_dim} (--dims or the config file)"
        )
    if not specs:
        raise InputError("no collection left to fill: check --dims / --quantization against the config file")
    return specs
