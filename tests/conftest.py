"""Shared fixtures. Expensive ones are session-scoped; the Hub is never contacted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ingest.encoder.static import Encoder

# Tests never download: the Hub is unreachable here and must stay untouched in CI.
os.environ["HF_HUB_OFFLINE"] = "1"

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BEIR_DIR = PROJECT_ROOT.parent / "shared" / "beir"


# -- models -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def models_data_dir() -> Path:
    """The project's data directory: the stand-in is built under `data/models/` once and reused."""
    return PROJECT_ROOT / "data"


@pytest.fixture(scope="session")
def standin_dir(models_data_dir: Path) -> Path:
    """The offline stand-in model (about a minute to distil the first time, then reused)."""
    from ingest.encoder.models import build_standin

    return build_standin(models_data_dir)


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 64-d static sentence-transformers model with the bert-base-uncased tokenizer."""
    from ingest.encoder.models import build_random_static_model

    return build_random_static_model(tmp_path_factory.mktemp("models") / "random-64", dim=64, seed=1)


@pytest.fixture(scope="session")
def small_encoder(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    """The fast encoder of `small_model_dir`."""
    from ingest.encoder.static import load_encoder

    return load_encoder(str(small_model_dir), data_dir=tmp_path_factory.mktemp("data"))
