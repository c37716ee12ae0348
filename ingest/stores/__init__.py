"""Vector stores: embedded qdrant-edge (default) or a Qdrant server, behind one `VectorStore` protocol."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.stores.base import Hit, SearchParams, StoredPoint, VectorStore

__all__ = ["Hit", "SearchParams", "StoredPoint", "VectorStore", "open_store"]

API_KEY_ENV = "QDRANT_API_KEY"


def open_store(
    *,
    data_dir: Path,
    qdrant_url: str | None,
    api_key: str | None = None,
    timeout_s: float = 60.0,
    read_only: bool = False,
    prefer_grpc: bool = True,
    retries: int | None = None,
) -> VectorStore:
    """Open the store an ingest or eval writes to / reads from.

    Args:
        data_dir: The data directory; embedded collections live in `<data_dir>/qdrant/<collection>/`.
        qdrant_url: A Qdrant server URL (e.g. `http://localhost:6333`); None for the embedded store.
        api_key: Server API key; None reads `QDRANT_API_KEY` from the environment. Never logged.
        timeout_s: Server request timeout in seconds.
        read_only: Embedded store only: take shared locks and refuse writes (for evals).
        prefer_grpc: Server only: talk gRPC (port 6334) instead of REST.
        retries: Server only: retries of a failed request (None: `ServerStore`'s default, 5).

    Returns:
        An `EdgeStore` or a `ServerStore`.
    """
    if qdrant_url is None:
        from ingest.stores.edge import EdgeStore

        return EdgeStore(Path(data_dir) / "qdrant", read_only=read_only)
    from ingest.stores.server import ServerStore

    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    if retries is None:
        return ServerStore(qdrant_url, key, prefer_grpc=prefer_grpc, timeout_s=timeout_s)
    return ServerStore(qdrant_url, key, prefer_grpc=prefer_grpc, timeout_s=timeout_s, max_retries=retries)
