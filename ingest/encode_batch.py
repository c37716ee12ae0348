"""Chunk and encode one batch: the work the pipeline does in a thread or in a worker process."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ingest.batches import EncodedBatch

if TYPE_CHECKING:
    from ingest.chunking import Chunker
    from ingest.encoder.static import Encoder
    from ingest.records import Document


def encode_docs(chunker: Chunker, encoder: Encoder, batch_no: int, docs: list[Document]) -> EncodedBatch:
    """Chunk and encode one batch at the model's full dimension.

    Args:
        chunker: Cuts each document into token windows.
        encoder: Encodes the windows' text.
        batch_no: The batch's position in the source.
        docs: The batch's documents.

    Returns:
        The batch, with `seconds` the time this call took.
    """
    from ingest.chunking import chunk_and_encode

    t0 = time.perf_counter()
    chunks, vectors = chunk_and_encode(chunker, encoder, docs)
    return EncodedBatch(batch_no, len(docs), chunks, vectors, time.perf_counter() - t0)
