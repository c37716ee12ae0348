"""The fast exact path of a static model: cached token ids → sparse bag of tokens × table.

A static model's embedding is the mean of its table rows over the text's tokens; after L2
normalisation only the sum's direction matters. So a batch of texts is a sparse matrix of token
counts (texts × vocabulary, duplicates summed) times the dense table (torch's `embedding_bag` with
the counts as weights, faster than scipy's product), then a row normalisation. Token ids come from
`WordPieceIds` (exact, cached) when the tokenizer allows it, else from the tokenizer's own
`encode_batch_fast` (exact by construction, parallel in Rust).

With `workers > 1`, large batches are split over that many processes (spawned, each with its own
caches; a float32 table stored in safetensors is memory-mapped so they share its pages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import struct
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.encoder.wordpiece import WordPieceIds, unsupported_reason

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# Texts per task sent to a worker process, and the smallest batch worth the round trip.
POOL_TASK_TEXTS = 512
POOL_MIN_TEXTS = 1024
# Texts per sparse product, to bound the memory of the intermediate bag.
PRODUCT_TEXTS = 8192
# Table columns per slice when summing rows (see `FastStaticEncoder._table_slices`), and the rows
# copied into the slices at a time.
SLICE_DIMS = 128
COPY_ROWS = 2048
# Texts bagged before the slices are made: fewer (a sync of a few changed documents) are summed from
# the table itself; copying 125 MB into slices would cost more than it saves.
SLICE_AFTER_TEXTS = 8192


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row in place; an all-zero row stays zero (no NaN).

    Args:
        vectors: A float32 matrix (n × dim), modified in place.

    Returns:
        The same array.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    norms[norms == 0] = 1.0
    vectors /= norms[:, None].astype(vectors.dtype)
    return vectors


def memmap_safetensor(path: Path, key: str) -> np.ndarray | None:
    """Memory-map one float32 tensor of a safetensors file, without copying it.

    Args:
        path: The `.safetensors` file.
        key: The tensor name.

    Returns:
        A read-only 2-D float32 view of the file, or None when the tensor is missing or not a
        2-D little-endian float32 array (then load and convert it instead).
    """
    with path.open("rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
    info = header.get(key)
    if not info or info.get("dtype") != "F32" or len(info.get("shape", [])) != 2:
        return None
    start, end = info["data_offsets"]
    rows, cols = info["shape"]
    if end - start != rows * cols * 4:
        return None
    mm = np.memmap(path, dtype="<f4", mode="r", offset=8 + header_len + start, shape=(rows, cols))
    return mm.view(np.ndarray)


def bag_token_counts(bag: Any) -> np.ndarray:
    """Tokens per text of a bag of token counts (what `FastStaticEncoder.bag` returns).

    Returns:
        An int64 array, one count per row.
    """
    return np.rint(np.asarray(bag.sum(axis=1, dtype=np.float64)).ravel()).astype(np.int64)


def _mapping(array: np.ndarray) -> tuple[Any, int] | None:
    """The `mmap` behind a view of a `numpy.memmap`, and the view's first byte's offset in it."""
    base: Any = array
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    handle = getattr(base, "_mmap", None)
    if handle is None or not hasattr(handle, "madvise"):
        return None
    start = np.frombuffer(handle, dtype=np.uint8).ctypes.data
    return handle, int(array.ctypes.data) - start


def release_mapped_pages(array: np.ndarray, first_byte: int = 0, end_byte: int | None = None) -> None:
    """Tell the OS this process no longer needs the resident pages of (part of) a memory-mapped array.

    The file stays mapped (pages are read again on access); only this process's resident set
    shrinks. Does nothing for an array that is not a view of a `numpy.memmap`.

    Args:
        array: The array.
        first_byte: Start of the range, in bytes from the array's first byte.
        end_byte: End of the range (default: the array's end).
    """
    import mmap

    found = _mapping(array)
    if found is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    handle, offset = found
    end = array.nbytes if end_byte is None else min(end_byte, array.nbytes)
    start = (offset + first_byte) // mmap.PAGESIZE * mmap.PAGESIZE
    stop = min(offset + end, len(handle))
    if stop > start:
        with contextlib.suppress(OSError, ValueError):
            handle.madvise(mmap.MADV_DONTNEED, start, stop - start)


class FastStaticEncoder:
    """Encode texts with a static model's table: exact mean pooling, normalised, fast.

    Args:
        tokenizer: The model's tokenizer (truncation and padding are ignored).
        table: The embedding table, float32, one row per token id.
        drop_ids: Token ids left out of the mean (model2vec drops its unknown token).
        workers: Processes for large batches; 1 encodes in this process. Workers are spawned, so
            a script using them must guard its entry point (`if __name__ == "__main__":`). On a
            busy 2-core machine they do not pay off (each has its own caches to warm).
        loader: A picklable callable returning `(tokenizer_json, table, drop_ids)`, used by
            worker processes to load the model themselves; required when `workers > 1`.

    Raises:
        ValueError: on a table that is not 2-D, or `workers > 1` without a loader.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        table: np.ndarray,
        *,
        drop_ids: Sequence[int] = (),
        workers: int = 1,
        loader: Callable[[], tuple[str, np.ndarray, list[int]]] | None = None,
    ) -> None:
        from tokenizers import Tokenizer as _Tokenizer

        if table.ndim != 2:
            raise ValueError(f"embedding table must be 2-D, got shape {table.shape}")
        if workers > 1 and loader is None:
            raise ValueError("workers > 1 needs a loader the worker processes can call")
        self.table = table if table.dtype == np.float32 else table.astype(np.float32)
        self.tokenizer = _Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.drop_ids = sorted(set(drop_ids))
        self._keep: np.ndarray | None = None
        if self.drop_ids:
            self._keep = np.ones(self.table.shape[0], dtype=np.float32)
            self._keep[[i for i in self.drop_ids if i < self.table.shape[0]]] = 0.0
        self.unsupported = unsupported_reason(self.tokenizer)
        self._ids = WordPieceIds(self.tokenizer) if self.unsupported is None else None
        self.workers = max(1, workers)
        self._loader = loader
        self._pool: Executor | None = None
        self._slices: list[tuple[int, int, Any]] | None = None
        self._slicing: Future[list[tuple[int, int, np.ndarray]]] | None = None
        self._whole: list[tuple[int, int, Any]] | None = None
        self._bagged = 0

    @property
    def strategy(self) -> str:
        """`wordpiece-cache` (cached exact re-implementation) or `tokenizer-batch` (Rust tokenizer)."""
        return "wordpiece-cache" if self._ids is not None else "tokenizer-batch"

    def flat_ids(self, texts: Sequence[str]) -> tuple[list[int], list[int]]:
        """All token ids of `texts` concatenated, and the end offset of each text's ids."""
        if self._ids is not None:
            return self._ids.batch(texts)
        flat: list[int] = []
        ends: list[int] = []
        for enc in self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False):
            flat.extend(enc.ids)
            ends.append(len(flat))
        return flat, ends

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, as `tokenizer.encode(text, add_special_tokens=False).ids`."""
        flat, ends = self.flat_ids(texts)
        return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def chunk_token_counts(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Tokens in each run of `text.split()` per text (None: no cached WordPiece path, or unsure)."""
        if self._ids is None:
            return [None] * len(texts)
        return self._ids.chunk_token_counts(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's number of tokens (no special tokens, no truncation, unknown tokens counted)."""
        texts = list(texts)
        counts: list[int] = []
        for i in range(0, len(texts), PRODUCT_TEXTS):
            counts.extend(bag_token_counts(self._bag(texts[i : i + PRODUCT_TEXTS])).tolist())
        return counts

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts: mean of table rows over tokens, L2-normalised.

        Args:
            texts: The texts; an empty text (or one with no kept token) gives a zero vector.

        Returns:
            A float32 array (len(texts) × dim).

        Raises:
            ValueError: if the tokenizer yields an id outside the table.
        """
        texts = list(texts)
        if self.workers > 1 and len(texts) >= POOL_MIN_TEXTS:
            return self._encode_in_pool(texts)
        parts = [
            self.embed(self.bag(texts[i : i + PRODUCT_TEXTS])) for i in range(0, len(texts), PRODUCT_TEXTS)
        ]
        if not parts:
            return np.zeros((0, self.table.shape[1]), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _table_slices(self) -> list[tuple[int, int, Any]]:
        """The table as contiguous column slices `(first column, last column + 1, tensor)`.

        Summing rows of a 1024-d table is memory-bound: each (text, token) pair reads a 4 KB row
        scattered over 125 MB. Slices of `SLICE_DIMS` columns (16 MB for bert-base-uncased's
        vocabulary) stay in the CPU cache far better; the sums are identical (same order per
        column) and measured 1.7× faster at 1024-d. The copy is made once (see `_start_slicing`); until
        it is started, the table itself is the one slice.
        """
        if self._slices is None and self._slicing is None:
            if self._whole is None:
                import torch

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # read-only memory map: only read
                    self._whole = [(0, self.table.shape[1], torch.from_numpy(self.table))]
            return self._whole
        if self._slices is None:
            import torch

            if self._slicing is not None:
                parts = self._slicing.result()
                self._slicing = None
            else:
                parts = self._copy_slices()
            with warnings.catch_warnings():
                # A memory-mapped table is read-only; embedding_bag only reads it.
                warnings.simplefilter("ignore", UserWarning)
                self._slices = [(first, end, torch.from_numpy(part)) for first, end, part in parts]
        return self._slices

    def _start_slicing(self) -> None:
        """Start copying the table into column slices in a background thread, if not done yet.

        Called when a bag is asked for, once `SLICE_AFTER_TEXTS` texts were bagged: the copy
        (memory-bound numpy copies, which release the GIL) then overlaps the batch's tokenisation
        instead of delaying an `embed`.
        """
        if self._bagged < SLICE_AFTER_TEXTS:
            return
        if self._slices is None and self._slicing is None and self.table.shape[1] > SLICE_DIMS:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="table-slices")
            self._slicing = pool.submit(self._copy_slices)
            pool.shutdown(wait=False)

    def _copy_slices(self) -> list[tuple[int, int, np.ndarray]]:
        """The table's column slices as numpy arrays (the table itself when it is narrow enough)."""
        rows, dim = self.table.shape
        if dim <= SLICE_DIMS:
            return [(0, dim, self.table)]
        parts = [
            (a, min(a + SLICE_DIMS, dim), np.empty((rows, min(SLICE_DIMS, dim - a)), np.float32))
            for a in range(0, dim, SLICE_DIMS)
        ]
        # Row blocks, each handed back once copied: never the whole table twice in memory.
        row_bytes = self.table.strides[0]
        for r in range(0, rows, COPY_ROWS):
            block = self.table[r : r + COPY_ROWS]
            for first, end, part in parts:
                part[r : r + COPY_ROWS] = block[:, first:end]
            release_mapped_pages(self.table, r * row_bytes, (r + COPY_ROWS) * row_bytes)
        return parts

    def embed(self, bag: Any) -> np.ndarray:
        """Encode texts given as a bag of token counts (`bag`): sum of table rows, L2-normalised.

        Args:
            bag: A texts × vocabulary CSR matrix of token counts, as `bag` returns (rows may be
                any selection of its rows).

        Returns:
            A float32 array (bag rows × dim).

        Raises:
            ValueError: if a token id is outside the table.
        """
        import torch

        vocab = self.table.shape[0]
        if bag.shape[1] > vocab and bag.nnz and int(bag.indices.max()) >= vocab:
            raise ValueError(
                f"token id {int(bag.indices.max())} is outside the embedding table ({vocab} rows): "
                "the tokenizer and the weights do not belong together"
            )
        if bag.shape[0] == 0:
            return np.zeros((0, self.table.shape[1]), dtype=np.float32)
        data = bag.data if self._keep is None else bag.data * self._keep[bag.indices]
        indices = torch.from_numpy(bag.indices.astype(np.int64))
        offsets = torch.from_numpy(bag.indptr[:-1].astype(np.int64))
        weights = torch.from_numpy(data.astype(np.float32))
        slices = self._table_slices()
        sums = np.empty((bag.shape[0], self.table.shape[1]), dtype=np.float32)
        with torch.inference_mode():
            for first, end, table in slices:
                part = torch.nn.functional.embedding_bag(
                    indices, table, offsets, mode="sum", per_sample_weights=weights
                )
                sums[:, first:end] = part.numpy()
        return normalise_rows(sums)

    def bag(self, texts: Sequence[str]) -> Any:
        """Texts × vocabulary token counts (CSR, one entry per distinct token of a text).

        Once `SLICE_AFTER_TEXTS` texts were bagged, a call also starts preparing the table for `embed`
        in the background.

        Args:
            texts: The texts (no prompt is added).

        Returns:
            A scipy CSR matrix of float32 counts; `embed` turns it into vectors.
        """
        texts = list(texts)
        self._bagged += len(texts)
        self._start_slicing()
        return self._bag(texts)

    def _bag(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix

        texts = list(texts)
        if self._ids is not None:
            return self._ids.bag(texts)
        flat, ends = self.flat_ids(texts)
        indices = np.array(flat, dtype=np.int64)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        indptr[1:] = ends
        width = max(self.table.shape[0], int(indices.max()) + 1 if indices.size else 0)
        bag = csr_matrix(
            (np.ones(indices.size, dtype=np.float32), indices, indptr), shape=(len(texts), width)
        )
        bag.sum_duplicates()
        return bag

    def _encode_in_pool(self, texts: list[str]) -> np.ndarray:
        pool = self._ensure_pool()
        size = min(POOL_TASK_TEXTS, math.ceil(len(texts) / self.workers))
        parts = list(pool.map(_worker_encode, [texts[i : i + size] for i in range(0, len(texts), size)]))
        return np.concatenate(parts)

    def _ensure_pool(self) -> Executor:
        if self._pool is None:
            if self._loader is None:
                raise ValueError("worker processes need a loader")
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=partial(_worker_init, self._loader),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started (and wait for a table copy under way)."""
        if self._slicing is not None:
            self._slicing.result()
            self._slicing = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict[str, Any]:
        """The fast path's settings, for the model description."""
        return dict(
            strategy=self.strategy,
            unsupported_reason=self.unsupported,
            workers=self.workers,
            dropped_token_ids=self.drop_ids,
        )


_WORKER: FastStaticEncoder | None = None


def _worker_init(loader: Callable[[], tuple[str, np.ndarray, list[int]]]) -> None:
    global _WORKER
    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(1)  # the workers already use every core between them
    tokenizer_json, table, drop_ids = loader()
    _WORKER = FastStaticEncoder(Tokenizer.from_str(tokenizer_json), table, drop_ids=drop_ids)


def _worker_encode(texts: list[str]) -> np.ndarray:
    if _WORKER is None:
        raise RuntimeError("worker process was not initialised")
    return _WORKER.encode(texts)
