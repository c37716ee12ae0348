"""Chunk hits → document scores: a document scores as its best chunk (max-pooling)."""

from __future__ import annotations

from collections.abc import Sequence

from eval.errors import EvalInputError
from ingest.stores.base import Hit

DOC_ID_KEY = "doc_id"


def doc_id_of(hit: Hit, key: str = DOC_ID_KEY) -> str:
    """Return the document id a chunk hit belongs to, read from its payload.

    Raises:
        EvalInputError: the payload has no `key`: the collection was not written by this pipeline
            (or without payloads); re-ingest it.
    """
    try:
        return str(hit.payload[key])
    except KeyError as exc:
        raise EvalInputError(
            f"search hit {hit.id} has no {key!r} in its payload (keys: {sorted(hit.payload)}): "
            "the collection was not written by `python -m ingest`; re-ingest it"
        ) from exc


def max_by_doc(hits: Sequence[Hit], key: str = DOC_ID_KEY) -> dict[str, float]:
    """Aggregate one query's chunk hits into document scores by the maximum chunk score.

    Args:
        hits: The hits of one query (any order).
        key: Payload key holding the document id.

    Returns:
        Doc id → best chunk score, ordered best first.
    """
    best: dict[str, float] = {}
    for hit in hits:
        doc = doc_id_of(hit, key)
        score = float(hit.score)
        if doc not in best or score > best[doc]:
            best[doc] = score
    return dict(sorted(best.items(), key=lambda item: (item[1], item[0]), reverse=True))


def distinct_docs(hits: Sequence[Hit], key: str = DOC_ID_KEY) -> int:
    """Return how many distinct documents a hit list covers."""
    return len({doc_id_of(hit, key) for hit in hits})
