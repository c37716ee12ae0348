"""The per-batch records the pipeline passes between its stages (and worker processes send back)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.records import Chunk


@dataclass
class EncodedBatch:
    """One batch of documents, chunked and encoded at the model's full dimension.

    Attributes:
        batch_no: The batch's position in the source, from 0 (the checkpoint key).
        docs: Documents in the batch.
        chunks: Its chunks, in document order.
        vectors: One full-dimension vector per chunk (rows in the order of `chunks`).
        seconds: Time chunking and encoding took.
    """

    batch_no: int
    docs: int
    chunks: list[Chunk]
    vectors: np.ndarray
    seconds: float


@dataclass
class BatchResult:
    """What storing one batch did.

    Attributes:
        batch_no: The batch's position in the source.
        docs: Documents stored.
        chunks: Chunks stored (points per collection).
        seconds: Time upserting, flushing and checkpointing took.
    """

    batch_no: int
    docs: int
    chunks: int
    seconds: float
