"""Exact token ids of BERT-style WordPiece tokenizers, computed with caches instead of per text.

A static model only needs the token ids of a text, and a `BertNormalizer` + `BertPreTokenizer` +
`WordPiece` tokenizer (bert-base-uncased and its kin) gives every whitespace-separated chunk of a
text the same ids wherever it occurs: normalisation works character by character, the
pre-tokenizer never joins across whitespace, and WordPiece sees one pre-token at a time. So the ids
of a text are the concatenation of the ids of its chunks, and a corpus repeats its chunks a lot.

`WordPieceIds.batch` splits a text on whitespace in C (`str.split`) and looks every chunk up in a
dict. `WordPieceIds.bag`, the encoder's path, does the same for a whole batch in polars (Rust):
the texts are lowercased when that is exact, split with `str.split()`'s whitespace set, and every
chunk is cast to a categorical whose codes persist from batch to batch and index a numpy array of
cached rows, so no Python object is made per chunk. Either way a miss normalises the chunk with a
per-character table built from the tokenizer's own normalizer and pre-tokenizer (so Unicode
tables are the tokenizer's, not Python's), then runs the tokenizer's own WordPiece model on each
word (cached too); `bag` does this for all of a batch's new chunks at once, in polars
(`bulk_chunks.py`). The few inputs where the chunk argument does not hold are handed to the
tokenizer itself:

- text with a character Python treats as whitespace but the normalizer does not turn into a space
  (`\\x1c`-`\\x1f`, `\\x85`, ...): removed first when the normalizer removes it, else the whole text
  goes to the tokenizer;
- a chunk holding an added token (`[MASK]`, ...) or a character whose canonical decomposition
  the normalizer could reorder (combining marks that are not non-spacing: accent stripping keeps
  them, and Unicode ordering may move them);
- a text where removing such characters would bring an added token together (`[MA\\x1cSK]`).

Tokenizers with an added token containing whitespace, or matched after normalisation, are not
supported (`unsupported_reason`): the encoder then uses the tokenizer itself.

`tests/ingest/encoder/test_fast.py` checks ids against `Tokenizer.encode` on adversarial text.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.encoder import unicode_tables
from ingest.encoder.bulk_chunks import BulkChunkIds

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from tokenizers import Tokenizer

SUPPORTED_NORMALIZERS = ("BertNormalizer", "Lowercase")
# Caches are dropped (not evicted one by one) when they outgrow this many entries.
MAX_CACHE_ENTRIES = 500_000


def unsupported_reason(tokenizer: Tokenizer) -> str | None:
    """Say why `WordPieceIds` cannot reproduce a tokenizer exactly, or None when it can.

    Args:
        tokenizer: The tokenizer to check.

    Returns:
        None if the tokenizer is a WordPiece model behind a BERT pre-tokenizer and a
        character-wise normalizer (BertNormalizer, Lowercase, a Sequence of them, or none), with
        no added token that is matched after normalisation; else a short reason.
    """
    spec = json.loads(tokenizer.to_str())
    model = (spec.get("model") or {}).get("type")
    if model != "WordPiece":
        return f"tokenizer model is {model}, not WordPiece"
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") != "BertPreTokenizer":
        return f"pre-tokenizer is {pre.get('type')}, not BertPreTokenizer"
    norm = spec.get("normalizer")
    parts = [] if norm is None else norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    for part in parts:
        if part.get("type") not in SUPPORTED_NORMALIZERS:
            return f"normalizer {part.get('type')} is not character-wise (supported: {SUPPORTED_NORMALIZERS})"
    for added in spec.get("added_tokens") or []:
        if added.get("normalized"):
            return f"added token {added.get('content')!r} is matched after normalisation"
        if any(ch.isspace() for ch in added.get("content", "")):
            return f"added token {added.get('content')!r} contains whitespace"
    return None


@cache
def _python_spaces() -> tuple[int, ...]:
    """Code points `str.split()` splits on (see `unicode_tables`)."""
    return unicode_tables.python_spaces()


@cache
def _reorderable_class() -> str:
    """A regex class of the code points whose NFD holds a kept combining mark (or unknown to Python).

    Accent stripping drops non-spacing marks (Mn) after canonical reordering; other combining
    marks (Mc with a non-zero class) survive and may be reordered, which breaks the
    character-by-character table. Code points unassigned in Python's Unicode tables are included
    because the tokenizer's newer tables may assign them.
    """
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in unicode_tables.reorderable_ranges()
    )


def _char_lengths(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def _rust_char(cp: int) -> str:
    ch = chr(cp)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{cp:X}}}"


def _rust_class(cps: Iterable[int]) -> str:
    """A Rust-regex character class of these code points."""
    return "[" + "".join(_rust_char(cp) for cp in sorted(cps)) + "]"


def _rust_literal(text: str) -> str:
    """A Rust-regex pattern matching `text` literally."""
    return "".join(_rust_char(ord(ch)) for ch in text)


class _CharTable(dict[int, str]):
    """Code point → its normalised form, spaced so that `str.split` gives the pre-tokens.

    Filled lazily from the tokenizer's own normalizer and pre-tokenizer, one character at a time.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__()
        self._normalizer = tokenizer.normalizer
        self._pre = tokenizer.pre_tokenizer

    def normalise(self, ch: str) -> str:
        """The tokenizer's normalisation of one character."""
        return self._normalizer.normalize_str(ch) if self._normalizer is not None else ch

    def char_class(self, ch: str) -> str:
        """How the pre-tokenizer treats a normalised character: `space`, `punct` or `word`."""
        pieces = [p for p, _ in self._pre.pre_tokenize_str(f"a{ch}a")]
        if pieces == ["a", "a"]:
            return "space"
        if pieces == ["a", ch, "a"]:
            return "punct"
        return "word"

    def __missing__(self, cp: int) -> str:
        out = []
        for ch in self.normalise(chr(cp)):
            kind = self.char_class(ch)
            out.append(" " if kind == "space" else f" {ch} " if kind == "punct" else ch)
        value = "".join(out)
        self[cp] = value
        return value


class _WordIds(dict[str, tuple[int, ...]]):
    """Pre-token → WordPiece ids, from the tokenizer's own model."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__()
        self._model = tokenizer.model

    def __missing__(self, word: str) -> tuple[int, ...]:
        if len(self) >= MAX_CACHE_ENTRIES:
            self.clear()
        ids = tuple(t.id for t in self._model.tokenize(word))
        self[word] = ids
        return ids


class _ChunkIds(dict[str, tuple[int, ...]]):
    """Whitespace-free chunk of raw text → token ids (the cache behind `WordPieceIds.batch`)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        table: _CharTable,
        words: _WordIds,
        exact_re: re.Pattern[str],
        added_starts: str,
    ):
        super().__init__()
        self._tokenizer = tokenizer
        self._table = table
        self._words = words
        self._exact_re = exact_re
        starts = re.compile("[" + re.escape(added_starts) + "]") if added_starts else None
        self._has_added_start: Callable[[str], object] = (
            starts.search if starts is not None else (lambda chunk: False)
        )

    def compute(self, chunk: str) -> tuple[int, ...]:
        """A chunk's ids, without caching them."""
        # The exactness regex has a class of thousands of ranges: skip it when it cannot match
        # (ASCII chunk without the first character of an added token).
        if (not chunk.isascii() or self._has_added_start(chunk)) and self._exact_re.search(chunk):
            return tuple(self._tokenizer.encode(chunk, add_special_tokens=False).ids)
        return tuple(chain.from_iterable(map(self._words.__getitem__, chunk.translate(self._table).split())))

    def __missing__(self, chunk: str) -> tuple[int, ...]:
        if len(self) >= MAX_CACHE_ENTRIES:
            self.clear()
        ids = self.compute(chunk)
        self[chunk] = ids
        return ids


class _ChunkRows:
    """Whitespace-free chunk of raw text → a row number; row r holds that chunk's token ids.

    Chunks are looked up in bulk: a batch's chunks are cast to a polars categorical whose
    categories persist between batches (a hash lookup per chunk in Rust, no Python object), and
    the categorical's physical id indexes a numpy array of rows. Chunks never seen before are
    tokenised together by `BulkChunkIds` (mostly in polars; see `bulk_chunks.py`). Rows only grow
    (appended as numpy blocks); everything is dropped past `MAX_CACHE_ENTRIES` rows
    (`maybe_reset`, between batches).
    """

    def __init__(self, chunks: BulkChunkIds) -> None:
        self._chunks = chunks
        self._token_rows: dict[int, int] = {}
        self._dtype: Any = None
        self._anchor: Any = None
        self._clear()

    def _clear(self) -> None:
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._ids = np.zeros(0, dtype=np.int32)
        self._ptr = np.zeros(1, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.int64)
        self._row_of_code = np.zeros(0, dtype=np.int64)
        self._token_rows = {}
        self._dtype = self._anchor = None  # the old categories are freed with their last reference
        self.count = 0

    def lookup(self, words: Any) -> np.ndarray:
        """The row of every chunk in `words` (a polars String Series), adding rows for new chunks.

        Returns:
            An int64 array, one row number per element of `words`, in order.
        """
        import polars as pl

        if self._dtype is None:
            self._dtype = pl.Categorical(pl.Categories.random())
            # The categories live as long as some data of their type does (not the dtype object):
            # this empty series keeps the codes stable from batch to batch.
            self._anchor = pl.Series("anchor", [], self._dtype)
        codes = words.cast(self._dtype).to_physical().to_numpy().astype(np.int64)
        if codes.size and int(codes.max()) >= self._row_of_code.size:
            grown = np.full(max(int(codes.max()) + 1, 2 * self._row_of_code.size), -1, dtype=np.int64)
            grown[: self._row_of_code.size] = self._row_of_code
            self._row_of_code = grown
        rows = self._row_of_code[codes]
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            # One occurrence of each new code (any will do: equal codes are equal chunks); no sort.
            where = np.full(self._row_of_code.size, -1, dtype=np.int64)
            where[codes[missing]] = missing
            new_codes = np.flatnonzero(where >= 0)
            for at, lengths, ids in self._chunks.ids(words.gather(where[new_codes])):
                self._row_of_code[new_codes[at]] = self._append(lengths, ids)
            rows[missing] = self._row_of_code[codes[missing]]
        return rows

    def token_row(self, token_id: int) -> int:
        """The row holding just one token id (for texts the tokenizer took whole)."""
        row = self._token_rows.get(token_id)
        if row is None:
            one = np.ones(1, dtype=np.int64)
            row = self._token_rows[token_id] = int(self._append(one, np.full(1, token_id, np.int32))[0])
        return row

    def _append(self, lengths: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Add rows (tokens per row, their ids in order); returns their row numbers."""
        self._pending.append((lengths, ids))
        self.count += lengths.size
        return np.arange(self.count - lengths.size, self.count, dtype=np.int64)

    def _flush(self) -> None:
        if self._pending:
            lengths = np.concatenate([self._lengths, *(p[0] for p in self._pending)])
            self._ids = np.concatenate(
                [self._ids, *(p[1].astype(np.int32, copy=False) for p in self._pending)]
            )
            self._ptr = np.concatenate([self._ptr, self._ptr[-1] + np.cumsum(lengths[self._lengths.size :])])
            self._lengths = lengths
            self._pending = []

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        """The number of token ids in each of `rows`."""
        self._flush()
        return self._lengths[rows]

    def matrix(self, vocab: int) -> csr_matrix:
        """Rows × vocabulary token counts (float32 CSR)."""
        from scipy.sparse import csr_matrix

        self._flush()
        data = np.ones(self._ids.size, dtype=np.float32)
        return csr_matrix((data, self._ids, self._ptr), shape=(self.count, vocab))

    def maybe_reset(self) -> None:
        """Drop every row once the cache is full (call between batches, never within one)."""
        if self.count >= MAX_CACHE_ENTRIES:
            self._clear()
        self._chunks.maybe_reset()


class WordPieceIds:
    """Token ids identical to `tokenizer.encode(text, add_special_tokens=False).ids`, fast.

    Args:
        tokenizer: A supported tokenizer (see `unsupported_reason`); truncation and padding are
            ignored: ids always cover the whole text.

    Raises:
        ValueError: if the tokenizer is not supported.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        # polars does the batch work (`bag`); imported with the model (0.1-0.5 s), not in its first batch.
        import polars  # noqa: F401
        from tokenizers import Tokenizer as _Tokenizer

        reason = unsupported_reason(tokenizer)
        if reason is not None:
            raise ValueError(f"WordPieceIds cannot reproduce this tokenizer: {reason}")
        self._tokenizer = _Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._table = _CharTable(self._tokenizer)
        for cp in range(128):
            self._table.__missing__(cp)  # fill the ASCII entries up front
        self._words = _WordIds(self._tokenizer)
        added = [t["content"] for t in json.loads(self._tokenizer.to_str()).get("added_tokens") or []]
        added_alts = [re.escape(a) for a in sorted(added, key=len, reverse=True) if a]
        # Case-insensitive: lowercasing must not create an added token the raw text did not hold.
        self._added_re = re.compile("|".join(added_alts), re.IGNORECASE) if added_alts else None
        exact = re.compile("|".join([*added_alts, f"[{_reorderable_class()}]"]))
        self._added_starts = sorted({c for a in added if a for c in (a[0].lower(), a[0].upper())})
        self._chunks = _ChunkIds(
            self._tokenizer, self._table, self._words, exact, "".join(self._added_starts)
        )
        self._rows = _ChunkRows(
            BulkChunkIds(
                self._tokenizer,
                self._table,
                self._chunks.compute,
                exact.search,
                "".join(self._added_starts),
                MAX_CACHE_ENTRIES,
            )
        )
        self._vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)  # costs ~10 ms a call
        # ASCII text is lowercased before lookup (more cache hits) when the normalizer lowercases
        # anyway, unless it may hold an added token (matched case-sensitively on the raw text).
        self._lower_ascii = all(self._table[ord(c)] == c.lower() for c in string.ascii_uppercase)
        self._odd_delete, self._odd_whole = self._odd_whitespace()
        odd = "".join(re.escape(chr(c)) for c in sorted(self._odd_delete | self._odd_whole))
        self._odd_re = re.compile(f"[{odd}]") if odd else None
        whole = "".join(re.escape(chr(c)) for c in sorted(self._odd_whole))
        self._whole_re = re.compile(f"[{whole}]") if whole else None
        delete = "".join(re.escape(chr(c)) for c in sorted(self._odd_delete))
        self._delete_re = re.compile(f"[{delete}]") if delete else None
        # The same tests in Rust (polars) for whole batches: `str.split()` semantics (every other
        # whitespace character becomes a space first), odd characters, added tokens.
        self._other_spaces = _rust_class(c for c in _python_spaces() if c != 0x20)
        self._odd_class = _rust_class(self._odd_delete | self._odd_whole) if odd else None
        self._added_pattern = "(?i)" + "|".join(map(_rust_literal, added)) if added_alts else None

    def _odd_whitespace(self) -> tuple[set[int], set[int]]:
        """Characters `str.split` splits on but the normaliser does not turn into whitespace.

        Returns:
            (removed by the normalizer: delete them before splitting,
             kept as non-space: such a text goes to the tokenizer whole).
        """
        delete: set[int] = set()
        whole: set[int] = set()
        for cp in _python_spaces():
            value = self._table[cp]
            if value == "":
                delete.add(cp)
            elif value.strip(" "):
                whole.add(cp)
        return delete, whole

    def ids(self, text: str) -> list[int]:
        """The token ids of one text."""
        flat, _ = self.batch([text])
        return flat

    def _prepare(self, text: str) -> str | list[int]:
        """The text to split on whitespace and look up chunk by chunk, or its ids when it must go whole."""
        if (
            self._lower_ascii
            and text.isascii()
            and (
                self._added_re is None
                or not any(s in text for s in self._added_starts)
                or not self._added_re.search(text)
            )
        ):
            text = text.lower()
        if self._odd_re is not None and not text.isprintable() and self._odd_re.search(text):
            cleaned = self._delete_re.sub("", text) if self._delete_re is not None else text
            # The tokenizer matches added tokens before removing characters: "[MA\x1cSK]" is no [MASK].
            if (self._whole_re is not None and self._whole_re.search(text)) or (
                self._added_re is not None and self._added_re.search(cleaned)
            ):
                return list(self._tokenizer.encode(text, add_special_tokens=False).ids)
            return cleaned
        return text

    def batch(self, texts: Iterable[str]) -> tuple[list[int], list[int]]:
        """Token ids of many texts, concatenated.

        Args:
            texts: The texts.

        Returns:
            (all ids in order, the end offset of each text's ids in that list).
        """
        flat: list[int] = []
        ends: list[int] = []
        extend = flat.extend
        get = self._chunks.__getitem__
        prepare = self._prepare
        for text in texts:
            prepared = prepare(text)
            if isinstance(prepared, str):
                extend(chain.from_iterable(map(get, prepared.split())))
            else:
                extend(prepared)
            ends.append(len(flat))
        return flat, ends

    def _prepare_batch(self, texts: Sequence[str]) -> tuple[Any, list[tuple[int, list[int]]]]:
        """`_prepare` for a whole batch, in polars: a String series to split, and the texts taken whole.

        Returns:
            (the prepared texts as a polars Series, empty for texts taken whole;
             (position, token ids) of each text taken whole).
        """
        import polars as pl

        series = pl.Series("w", list(texts), pl.String)
        odd = (
            np.flatnonzero(series.str.contains(self._odd_class).to_numpy())
            if self._odd_class is not None
            else np.zeros(0, dtype=np.int64)
        )
        if self._lower_ascii:
            ascii_only = series.str.len_bytes() == series.str.len_chars()
            if self._added_pattern is not None:
                ascii_only = ascii_only & ~series.str.contains(self._added_pattern)
            series = pl.select(
                pl.when(ascii_only).then(series.str.to_lowercase()).otherwise(series).alias("w")
            ).to_series()
        whole: list[tuple[int, list[int]]] = []
        if odd.size:
            fixed: list[str] = []
            for i in odd.tolist():
                prepared = self._prepare(texts[i])
                if isinstance(prepared, str):
                    fixed.append(prepared)
                else:
                    whole.append((i, prepared))
                    fixed.append("")
            series = series.scatter(odd, pl.Series(fixed, dtype=pl.String))
        return series, whole

    def _split(self, prepared: Any) -> Any:
        """Prepared texts (a polars String series) → a frame of (`t`: text number, `w`: chunk), in order."""
        import polars as pl

        return (
            prepared.str.replace_all(self._other_spaces, " ")
            .to_frame("w")
            .with_row_index("t")
            .with_columns(pl.col("w").str.split(" "))
            .explode("w")
            .filter(pl.col("w").str.len_bytes() > 0)
        )

    def chunk_token_counts(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Tokens in each whitespace-separated run of each text (the runs of `text.split()`), in order.

        Returns:
            One int64 array per text, or None for a text that is not tokenised run by run
            (characters removed before splitting, or the tokenizer takes it whole).
        """
        prepared, whole = self._prepare_batch(texts)
        split = self._split(prepared)
        lengths = self._rows.lengths(self._rows.lookup(split["w"]))
        bounds = np.searchsorted(split["t"].to_numpy(), np.arange(1, len(texts)))
        out: list[np.ndarray | None] = list(np.split(lengths, bounds))
        odd = [i for i, _ in whole]
        if self._odd_class is not None:
            odd += np.flatnonzero(prepared.str.len_chars().to_numpy() != _char_lengths(texts)).tolist()
        for i in odd:
            out[i] = None
        return out

    def bag(self, texts: Sequence[str]) -> csr_matrix:
        """Texts × vocabulary token counts, equal to counting `batch(texts)`.

        The texts are split on whitespace and their chunks looked up in polars (Rust, no Python
        object per chunk); Python only tokenises chunks not seen before. The counts are
        (texts × chunk rows) @ (chunk rows × vocabulary), plus the ids of texts taken whole.

        Returns:
            A CSR matrix of float32 counts, one row per text.
        """
        from scipy.sparse import csr_matrix

        rows = self._rows
        rows.maybe_reset()
        prepared, whole = self._prepare_batch(texts)
        split = self._split(prepared)
        text_of = split["t"].to_numpy()
        row_of = rows.lookup(split["w"])
        indptr = np.searchsorted(text_of, np.arange(len(texts) + 1, dtype=text_of.dtype))
        texts_by_rows = csr_matrix(
            (np.ones(row_of.size, dtype=np.float32), row_of.astype(np.int32), indptr.astype(np.int32)),
            shape=(len(texts), rows.count),
        )
        bag: csr_matrix = texts_by_rows @ rows.matrix(self._vocab_size)
        if whole:
            flat = [(i, t) for i, ids in whole for t in ids]
            if flat:
                at, ids = np.asarray(flat, dtype=np.int64).T
                extra = csr_matrix(
                    (np.ones(at.size, dtype=np.float32), (at, ids)), shape=(len(texts), self._vocab_size)
                )
                bag = (bag + extra).tocsr()
        return bag

    def cache_sizes(self) -> dict[str, int]:
        """Entries in each cache (chunks, words, characters), for diagnostics."""
        return {"chunks": len(self._chunks), "words": len(self._words), "chars": len(self._table)}


def token_ids_reference(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """The tokenizer's own ids (no special tokens, no truncation), to compare against."""
    from tokenizers import Tokenizer as _Tokenizer

    tok = _Tokenizer.from_str(tokenizer.to_str())
    tok.no_truncation()
    tok.no_padding()
    return [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=False)]


def describe_tokenizer(tokenizer: Tokenizer) -> dict[str, Any]:
    """Short description of a tokenizer's pipeline: model, normalizer, pre-tokenizer, vocab size."""
    spec = json.loads(tokenizer.to_str())
    norm = spec.get("normalizer")
    pre = spec.get("pre_tokenizer")
    return {
        "model": (spec.get("model") or {}).get("type"),
        "normalizer": None if norm is None else norm.get("type"),
        "pre_tokenizer": None if pre is None else pre.get("type"),
        "vocab_size": tokenizer.get_vocab_size(),
    }
