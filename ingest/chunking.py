"""Token-window chunking with the model's own tokenizer; the title is prepended to every chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import InputError
from ingest.records import Chunk, Document

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from ingest.encoder.static import Encoder

# Recorded in every checkpoint: resuming a load whose windows were cut another way would mix them.
SCHEME = "token-windows-at-whitespace-v2"
# The smallest text window we accept when a long title eats into the token budget.
MIN_TEXT_WINDOW = 16
# Longer texts are tokenized in pieces of about this many characters, cut before a space: one
# Encoding of a whole 10 MB text, with its offsets and word ids as Python lists, takes over 1 GB.
SEGMENT_CHARS = 1 << 16


def validate_window(chunk_tokens: int, chunk_overlap: int) -> None:
    """Check chunking parameters.

    Raises:
        InputError: if the window is not positive or the overlap is not smaller than the window.
    """
    if chunk_tokens < MIN_TEXT_WINDOW:
        raise InputError(f"--chunk-tokens must be at least {MIN_TEXT_WINDOW}, got {chunk_tokens}")
    if not 0 <= chunk_overlap < chunk_tokens // 2:
        raise InputError(
            f"--chunk-overlap must be between 0 and half of --chunk-tokens ({chunk_tokens // 2 - 1}), "
            f"got {chunk_overlap}"
        )


class Chunker:
    """Split documents into windows of at most `chunk_tokens` tokens (title included).

    A document whose title and text fit in one window yields exactly one chunk whose text is
    BEIR's `title + " " + text`. A longer one yields windows over the text of up to
    `chunk_tokens - title_tokens` tokens, cut at whitespace, each starting at the whitespace
    before the token `chunk_overlap` tokens back from the previous window's end; each chunk's
    text is `title + " " + window` and its char span points into `text`. A text holding a single
    run without whitespace longer than a window is cut at the tokenizer's word boundaries instead
    (inside a word only when one word alone fills the window).

    Args:
        tokenizer: The model's tokenizer (truncation and padding disabled).
        chunk_tokens: Window size in tokens, title included.
        chunk_overlap: Tokens shared by consecutive windows (at least; whole runs are kept).
        count_tokens: Optional fast exact token counter (the fast encoder's); defaults to the tokenizer.
        chunk_counts: Optional fast exact token counts of each text's whitespace-separated runs, in
            order (None for a text it cannot tell); defaults to the tokenizer's offsets.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        chunk_tokens: int = 512,
        chunk_overlap: int = 64,
        count_tokens: Callable[[Sequence[str]], list[int]] | None = None,
        chunk_counts: Callable[[Sequence[str]], list[np.ndarray | None]] | None = None,
    ) -> None:
        validate_window(chunk_tokens, chunk_overlap)
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self._count_tokens = count_tokens or self._count_with_tokenizer
        self._chunk_counts = chunk_counts

    @classmethod
    def for_encoder(cls, encoder: Encoder, chunk_tokens: int = 512, chunk_overlap: int = 64) -> Chunker:
        """A chunker that counts tokens with the encoder's fast exact path (same chunks, sooner)."""
        return cls(
            encoder.tokenizer,
            chunk_tokens,
            chunk_overlap,
            count_tokens=encoder.count_tokens if encoder.fast else None,
            chunk_counts=encoder.chunk_token_counts if encoder.fast else None,
        )

    def _count_with_tokenizer(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def chunk(self, docs: Sequence[Document], counts: Sequence[int] | None = None) -> list[Chunk]:
        """Chunk a batch of documents, in order; documents with no text at all yield no chunk.

        Args:
            docs: The documents.
            counts: Each document's `full_text` token count, if already known (else counted here).
        """
        return self.chunk_with_sources(docs, counts)[0]

    def chunk_with_sources(
        self, docs: Sequence[Document], counts: Sequence[int] | None = None
    ) -> tuple[list[Chunk], list[int]]:
        """Chunk a batch of documents, and say which chunks are whole documents.

        Args:
            docs: The documents.
            counts: Each document's `full_text` token count, if already known (else counted here).

        Returns:
            (the chunks in order, for each chunk the index in `docs` of the document whose
            `full_text` it is, or -1 for a window of a longer document).

        Raises:
            ValueError: if `counts` does not have one entry per document.
        """
        if counts is None:
            # A WordPiece token covers at least one character, so a text no longer than the window fits.
            unsure = [i for i, d in enumerate(docs) if len(d.full_text) > self.chunk_tokens]
            found = self._count_tokens([docs[i].full_text for i in unsure])
            by_doc = dict(zip(unsure, found, strict=True))
            counts = [by_doc.get(i, 0) for i in range(len(docs))]
        elif len(counts) != len(docs):
            raise ValueError(f"{len(counts)} token counts for {len(docs)} documents")
        out: list[Chunk] = []
        sources: list[int] = []
        long_docs = [i for i, doc in enumerate(docs) if doc.full_text and counts[i] > self.chunk_tokens]
        runs: dict[int, np.ndarray | None] = {}
        if long_docs and self._chunk_counts is not None:
            runs = dict(zip(long_docs, self._chunk_counts([docs[i].text for i in long_docs]), strict=True))
        for i, doc in enumerate(docs):
            full = doc.full_text
            if not full:
                continue
            if counts[i] <= self.chunk_tokens:
                out.append(Chunk(doc.id, 0, full, 0, len(doc.text)))
                sources.append(i)
            else:
                windows = self._windows(doc, runs.get(i))
                out.extend(windows)
                sources.extend([-1] * len(windows))
        return out, sources

    def _windows(self, doc: Document, run_counts: np.ndarray | None = None) -> list[Chunk]:
        title = doc.title.strip()
        title_tokens = len(self.tokenizer.encode(title, add_special_tokens=False).ids) if title else 0
        window = max(self.chunk_tokens - title_tokens, MIN_TEXT_WINDOW)
        plan = self._run_counts(doc.text, run_counts)
        if plan is None:
            return self._token_windows(doc, title, window)
        starts, ends, counts = plan
        if not counts.size:
            return [Chunk(doc.id, 0, doc.full_text, 0, len(doc.text))]
        if int(counts.max()) > window:
            return self._token_windows(doc, title, window)
        cum = np.concatenate([[0], np.cumsum(counts)])
        n = counts.size
        chunks: list[Chunk] = []
        start = 0
        while True:
            # The runs fitting in the window from `start` (at least one: no run exceeds the window).
            end = int(np.searchsorted(cum, cum[start] + window, side="right")) - 1
            chunks.append(self._window(doc, title, len(chunks), int(starts[start]), int(ends[end - 1])))
            if end >= n:
                return chunks
            back = max(int(cum[end]) - self.chunk_overlap, int(cum[start]) + 1)
            next_start = int(np.searchsorted(cum, back, side="right")) - 1
            start = next_start if next_start > start else end

    @staticmethod
    def _window(doc: Document, title: str, number: int, char_start: int, char_end: int) -> Chunk:
        body = doc.text[char_start:char_end]
        return Chunk(doc.id, number, f"{title} {body}" if title else body, char_start, char_end)

    def _run_counts(
        self, text: str, counts: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The whitespace-separated runs of `text`: char starts, char ends and token counts.

        Args:
            text: The text.
            counts: The runs' token counts if known (from `chunk_counts`), else counted here.

        Returns:
            The three arrays, or None when some token spans whitespace (the runs then cannot be
            counted separately; the caller cuts by tokens).
        """
        starts, ends = whitespace_runs(text)
        if counts is not None and counts.size == starts.size:
            return starts, ends, counts
        offsets, _ = self._tokens(text)
        if not offsets.size:
            return starts, ends, np.zeros(starts.size, dtype=np.int64)
        run = np.searchsorted(starts, offsets[:, 0], side="right") - 1
        if (run < 0).any() or (offsets[:, 1] > ends[np.maximum(run, 0)]).any():
            return None
        return starts, ends, np.bincount(run, minlength=starts.size).astype(np.int64)

    def _token_windows(self, doc: Document, title: str, window: int) -> list[Chunk]:
        """Windows cut at the tokenizer's word boundaries (for texts with a run longer than a window)."""
        offsets, words = self._tokens(doc.text)
        n = len(offsets)
        if n == 0:
            return [Chunk(doc.id, 0, doc.full_text, 0, len(doc.text))]
        chunks: list[Chunk] = []
        start = 0
        while True:
            end = _word_boundary(words, start, min(start + window, n))
            char_start, char_end = int(offsets[start, 0]), int(offsets[end - 1, 1])
            chunks.append(self._window(doc, title, len(chunks), char_start, char_end))
            if end >= n:
                return chunks
            next_start = _word_start(words, max(end - self.chunk_overlap, start + 1))
            start = next_start if next_start > start else end

    def _tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The tokens of `text` as char offsets (n × 2) and word ids (n; -1 for none, unique in the text).

        Tokenized in `_segments`; a cut before a space changes no token (every supported
        pre-tokenizer splits there), so the result equals tokenizing the whole text at once.
        """
        offsets: list[np.ndarray] = []
        words: list[np.ndarray] = []
        base = 0
        for seg_start, segment in _segments(text, SEGMENT_CHARS):
            enc = self.tokenizer.encode(segment, add_special_tokens=False)
            # Each access to an Encoding's offsets/word_ids builds a new list: read each once.
            seg_offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2) + seg_start
            seg_words = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
            named = seg_words >= 0
            seg_words[named] += base
            if named.any():
                base = int(seg_words.max()) + 1
            offsets.append(seg_offsets)
            words.append(seg_words)
        return np.concatenate(offsets), np.concatenate(words)


def chunk_and_encode(
    chunker: Chunker, encoder: Encoder, docs: Sequence[Document]
) -> tuple[list[Chunk], np.ndarray]:
    """Chunk documents and encode the chunks at the model's full dimension.

    With the fast path, every document is tokenised once: the bag of tokens that counts its
    tokens for the chunker is also what encodes it when it fits in one window; only the windows
    of longer documents are tokenised again. Otherwise the chunker counts and the encoder encodes.

    Returns:
        (the chunks, a float32 matrix with one L2-normalised row per chunk).
    """
    bag = encoder.document_bag([d.full_text for d in docs]) if docs else None
    if bag is None:
        chunks = chunker.chunk(docs)
        vectors = encoder.encode([c.text for c in chunks]) if chunks else None
    else:
        chunks, sources = chunker.chunk_with_sources(docs, encoder.bag_token_counts(bag))
        vectors = np.empty((len(chunks), encoder.dim), dtype=np.float32)
        src = np.asarray(sources, dtype=np.int64)
        whole = np.flatnonzero(src >= 0)
        if whole.size:
            vectors[whole] = encoder.embed_bag(bag[src[whole]])
        parts = np.flatnonzero(src < 0)
        if parts.size:
            vectors[parts] = encoder.encode([chunks[k].text for k in parts])
    if vectors is None:
        vectors = np.zeros((0, encoder.dim), dtype=np.float32)
    return chunks, vectors


@cache
def _space_table() -> np.ndarray:
    """`str.isspace()` for every code point up to U+3000 (the last whitespace), False beyond."""
    table = np.zeros(0x3002, dtype=bool)
    table[[cp for cp in range(0x3001) if chr(cp).isspace()]] = True
    return table


def whitespace_runs(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Char offsets of the runs `text.split()` returns.

    Returns:
        (start offsets, end offsets), int64 arrays, one entry per run, in order.
    """
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    space = _space_table()[np.minimum(cps, 0x3001)]
    edges = np.diff(space.astype(np.int8), prepend=np.int8(1), append=np.int8(1))
    return np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)


def _segments(text: str, size: int) -> Iterator[tuple[int, str]]:
    """Split `text` into pieces of at least `size` characters, each cut just before a space."""
    start = 0
    while len(text) - start > size:
        cut = text.find(" ", start + size)
        if cut < 0:
            break
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


def _word_boundary(words: np.ndarray, start: int, end: int) -> int:
    """Move `end` back so the window does not split a word (unless the word alone fills it)."""
    if end >= len(words):
        return end
    cut = end
    while cut > start and words[cut] >= 0 and words[cut] == words[cut - 1]:
        cut -= 1
    return cut if cut > start else end


def _word_start(words: np.ndarray, pos: int) -> int:
    """Move `pos` back to the first token of its word."""
    while pos > 0 and words[pos] >= 0 and words[pos] == words[pos - 1]:
        pos -= 1
    return pos
