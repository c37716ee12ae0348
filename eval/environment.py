"""Where and with what an eval ran: the search engine's description and the package versions that shape
the numbers (both go into results.json)."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from eval.options import EvalOptions
from ingest.stores.base import VectorStore

PACKAGES: tuple[str, ...] = (
    "static-ingest",
    "numpy",
    "beir",
    "pytrec-eval-terrier",
    "qdrant-edge-py",
    "qdrant-client",
    "sentence-transformers",
    "model2vec",
    "tokenizers",
    "torch",
    "matplotlib",
)


def package_version(package: str) -> str | None:
    """The installed version of `package`, None when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """Versions of Python and of every package that shapes the numbers (`PACKAGES`)."""
    return {"python": platform.python_version(), **{p: package_version(p) for p in PACKAGES}}


def engine_description(store: VectorStore, opts: EvalOptions) -> dict[str, Any]:
    """How searches run: backend, package version and where (shard directory or server URL).

    Args:
        store: The open store.
        opts: The eval options (`qdrant_url`, `data_dir`).

    Returns:
        `backend`, `mode` (`server` / `in-process`), `location`, `version` (+ `client` for a server).
    """
    backend = str(getattr(store, "backend", type(store).__name__))
    if opts.qdrant_url:
        return {
            "backend": backend,
            "mode": "server",
            "location": opts.qdrant_url,
            "client": "qdrant-client",
            "version": package_version("qdrant-client"),
        }
    return {
        "backend": backend,
        "mode": "in-process",
        "location": str(opts.data_dir / "qdrant"),
        "version": package_version("qdrant-edge-py"),
    }
