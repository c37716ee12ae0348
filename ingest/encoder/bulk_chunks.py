"""Token ids of many new whitespace-free chunks at once: the cold (cache-miss) path of `WordPieceIds.bag`.

A corpus's first pass meets tens of thousands of chunks never seen before (94,069 of SciFact's
1.1 million); tokenising them one Python call at a time cost ~3 µs each, about as much as the rest
of a warm pass. Here the chunks that allow it are tokenised as one batch in polars (Rust):

1. a chunk is normalised with `str.replace_many`, one single-character pattern per character the
   tokenizer's normalizer + pre-tokenizer change (its own per-character table `_CharTable`:
   lowercase, removal, accent stripping, a punctuation mark spaced into its own pre-token). That
   is `str.translate` exactly: single characters never overlap, and UTF-8 matches fall on
   character boundaries;
2. the result is split on spaces into pre-tokens (words), which are looked up through a polars
   categorical whose codes persist from batch to batch (as the chunks are in `_ChunkRows`);
3. a word never seen before that is a whole vocabulary entry (within WordPiece's length limit) is
   that one token, since WordPiece's greedy longest match tries the whole word first; only the
   other new words go through the tokenizer's own WordPiece model, one call each;
4. a chunk's ids are the concatenation of its words' ids, gathered with numpy, so no Python
   object is made per chunk.

Chunks holding a character the per-chunk path treats specially (the first character of an added
token, a combining mark the normalizer could reorder, an unassigned code point: `needs_tokenizer`)
take the per-chunk path of `wordpiece.py`, which keeps its exactness rules.
`tests/ingest/encoder/test_bulk_chunks.py` checks this path against the tokenizer's ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# An id block: (positions of its chunks among the input chunks, tokens per chunk, their ids in order).
IdBlock = tuple[np.ndarray, np.ndarray, np.ndarray]


def ragged_gather(ptr: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions of the elements of `rows`, in order, in a ragged array given by row starts `ptr`.

    Args:
        ptr: Start of each row in the flat array.
        lengths: Length of each row.
        rows: The rows wanted (repeats allowed).

    Returns:
        An int64 array indexing the flat array: row `rows[0]`'s elements, then `rows[1]`'s, ...
    """
    sizes = lengths[rows]
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_starts = np.cumsum(sizes) - sizes
    return np.arange(total, dtype=np.int64) + np.repeat(ptr[rows] - out_starts, sizes)


class BulkChunkIds:
    """Exact WordPiece ids of a batch of new chunks, mostly computed in bulk (see the module doc).

    Args:
        tokenizer: A tokenizer `WordPieceIds` supports.
        char_table: Code point → its normalised, pre-token-spaced form (`_CharTable`).
        chunk_ids: A chunk's ids by the per-chunk path, for chunks this path does not take.
        needs_tokenizer: True for a character whose chunks must take the per-chunk path.
        added_starts: First characters (both cases) of the tokenizer's added tokens.
        max_entries: Words cached before the word cache is dropped (between batches).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        char_table: Mapping[int, str],
        chunk_ids: Callable[[str], tuple[int, ...]],
        needs_tokenizer: Callable[[str], object],
        added_starts: str,
        max_entries: int,
    ) -> None:
        spec = json.loads(tokenizer.to_str())["model"]
        self._max_chars = int(spec.get("max_input_chars_per_word", 100))
        self._vocab: dict[str, int] = spec.get("vocab") or {}
        self._char_table = char_table
        self._tokenize = tokenizer.model.tokenize
        self._chunk_ids = chunk_ids
        self._needs_tokenizer = needs_tokenizer
        self._added_starts = set(added_starts)
        self._max_entries = max_entries
        # Characters met so far: those the bulk path translates (→ normal form), those it keeps,
        # and those whose chunks take the per-chunk path.
        self._changed: dict[str, str] = {}
        self._unsafe: set[str] = set()
        self._seen: set[str] = set()
        self._learn(chr(cp) for cp in range(128))
        self._clear()

    def _learn(self, chars: Iterable[str]) -> None:
        """Classify characters not met before (see `_changed`, `_unsafe`)."""
        for ch in chars:
            if ch in self._seen:
                continue
            self._seen.add(ch)
            value = self._char_table[ord(ch)]
            # The per-chunk path's exactness rules (added tokens, reorderable marks) stay with it, as
            # does a normal form holding whitespace other than " " (`str.split()` would split there).
            if (
                ch in self._added_starts
                or self._needs_tokenizer(ch)
                or "".join(value.split()) != value.replace(" ", "")
            ):
                self._unsafe.add(ch)
            elif value != ch:
                self._changed[ch] = value

    def _clear(self) -> None:
        self._dtype: Any = None
        self._anchor: Any = None
        self._row_of_code = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=np.int32)
        self._ptr = np.zeros(0, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.int64)

    @property
    def word_count(self) -> int:
        """Words (pre-tokens) cached."""
        return int(self._lengths.size)

    def maybe_reset(self) -> None:
        """Drop the word cache once it is full (call between batches)."""
        if self.word_count >= self._max_entries:
            self._clear()

    def _bulk_mask(self, chunks: Any) -> np.ndarray:
        """Which chunks (a polars String Series) the bulk path takes: those without unsafe characters."""
        non_ascii = chunks.filter(chunks.str.len_bytes() != chunks.str.len_chars())
        if len(non_ascii):
            self._learn(non_ascii.str.extract_all(r"[^\x00-\x7F]").explode().drop_nulls().unique().to_list())
        if not self._unsafe:
            return np.ones(len(chunks), dtype=bool)
        pattern = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in sorted(self._unsafe)) + "]"
        return ~chunks.str.contains(pattern).fill_null(True).to_numpy()

    def ids(self, chunks: Any) -> list[IdBlock]:
        """Token ids of `chunks` (a polars String Series of whitespace-free raw chunks).

        Returns:
            Blocks of ids; together their positions cover every chunk once.
        """
        mask = self._bulk_mask(chunks)
        bulk_at = np.flatnonzero(mask)
        other_at = np.flatnonzero(~mask)
        blocks: list[IdBlock] = []
        if bulk_at.size:
            lengths, ids = self._bulk_ids(chunks.gather(bulk_at))
            blocks.append((bulk_at, lengths, ids))
        if other_at.size:
            rows = [self._chunk_ids(c) for c in chunks.gather(other_at).to_list()]
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(lengths.sum()))
            blocks.append((other_at, lengths, flat))
        return blocks

    def _bulk_ids(self, chunks: Any) -> tuple[np.ndarray, np.ndarray]:
        """(tokens per chunk, their ids in order) of chunks without unsafe characters."""
        import polars as pl

        changed = self._changed
        normalised = chunks.str.replace_many(list(changed), list(changed.values())) if changed else chunks
        words = (
            normalised.to_frame("w")
            .with_row_index("c")
            .with_columns(pl.col("w").str.split(" "))
            .explode("w")
            .filter(pl.col("w").str.len_bytes() > 0)
        )
        chunk_of = words["c"].to_numpy().astype(np.int64)
        rows = self._word_rows(words["w"])
        per_chunk = np.bincount(chunk_of, weights=self._lengths[rows], minlength=len(chunks))
        ids = self._ids[ragged_gather(self._ptr, self._lengths, rows)]
        return per_chunk.astype(np.int64), ids

    def _word_rows(self, words: Any) -> np.ndarray:
        """The word-cache row of every word (a polars String Series), adding rows for new words."""
        import polars as pl

        if self._dtype is None:
            self._dtype = pl.Categorical(pl.Categories.random())
            # Keeps the categories (and so the codes) alive between batches, as in `_ChunkRows`.
            self._anchor = pl.Series("anchor", [], self._dtype)
            self._seed_vocabulary()
        codes = words.cast(self._dtype).to_physical().to_numpy().astype(np.int64)
        self._grow(codes)
        rows = self._row_of_code[codes]
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            first = np.full(self._row_of_code.size, -1, dtype=np.int64)
            first[codes[missing]] = missing  # an occurrence of each new code (any: equal codes, equal words)
            new_codes = np.flatnonzero(first >= 0)
            # The tokenizer's own WordPiece, one call per new word (the only Python step per item).
            tokens = list(map(self._tokenize, words.gather(first[new_codes]).to_list()))
            lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
            flat = np.fromiter(
                map(attrgetter("id"), chain.from_iterable(tokens)), dtype=np.int32, count=int(lengths.sum())
            )
            self._row_of_code[new_codes] = self._append(lengths, flat)
            rows = self._row_of_code[codes]
        return rows

    def _seed_vocabulary(self) -> None:
        """Give every vocabulary entry WordPiece would return whole a one-token row, up front."""
        import polars as pl

        vocab = self._vocab
        entries = [w for w in vocab if 0 < len(w) <= self._max_chars]
        codes = (
            pl.Series(entries, dtype=pl.String).cast(self._dtype).to_physical().to_numpy().astype(np.int64)
        )
        self._grow(codes)
        ids = np.fromiter((vocab[w] for w in entries), dtype=np.int32, count=len(entries))
        self._row_of_code[codes] = self._append(np.ones(len(entries), dtype=np.int64), ids)

    def _grow(self, codes: np.ndarray) -> None:
        if codes.size and int(codes.max()) >= self._row_of_code.size:
            grown = np.full(max(int(codes.max()) + 1, 2 * self._row_of_code.size), -1, dtype=np.int64)
            grown[: self._row_of_code.size] = self._row_of_code
            self._row_of_code = grown

    def _append(self, lengths: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Add word rows; returns their row numbers."""
        first = self._lengths.size
        start = int(self._ptr[-1] + self._lengths[-1]) if first else 0
        self._ptr = np.concatenate([self._ptr, start + np.cumsum(lengths) - lengths])
        self._lengths = np.concatenate([self._lengths, lengths])
        self._ids = np.concatenate([self._ids, ids])
        return np.arange(first, first + lengths.size, dtype=np.int64)
