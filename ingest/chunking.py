"""Token-window chunking with the model's own tokenizer; the title is prepended to every chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import InputError
from ingest.records import Chunk, Document

if TYPE_CHECKING:
    from tokenizers import Tokenizer

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
    BEIR's `title + " " + text`. A longer one yields windows over the text of
    `chunk_tokens - title_tokens` tokens, stepping by that minus `chunk_overlap`, cut at word
    boundaries; each chunk's text is `title + " " + window` and its char span points into `text`.

    Args:
        tokenizer: The model's tokenizer (truncation and padding disabled).
        chunk_tokens: Window size in tokens, title included.
        chunk_overlap: Tokens shared by consecutive windows.
        count_tokens: Optional fast exact token counter (the fast encoder's); defaults to the tokenizer.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        chunk_tokens: int = 512,
        chunk_overlap: int = 64,
        count_tokens: Callable[[Sequence[str]], list[int]] | None = None,
    ) -> None:
        validate_window(chunk_tokens, chunk_overlap)
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self._count_tokens = count_tokens or self._count_with_tokenizer

    def _count_with_tokenizer(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def chunk(self, docs: Sequence[Document]) -> list[Chunk]:
        """Chunk a batch of documents, in order; documents with no text at all yield no chunk."""
        out: list[Chunk] = []
        # A WordPiece token covers at least one character, so a text no longer than the window fits.
        unsure = [i for i, d in enumerate(docs) if len(d.full_text) > self.chunk_tokens]
        counts = dict(zip(unsure, self._count_tokens([docs[i].full_text for i in unsure]), strict=True))
        for i, doc in enumerate(docs):
            full = doc.full_text
            if not full:
                continue
            if counts.get(i, 0) <= self.chunk_tokens:
                out.append(Chunk(doc.id, 0, full, 0, len(doc.text)))
            else:
                out.extend(self._windows(doc))
        return out

    def _windows(self, doc: Document) -> list[Chunk]:
        title = doc.title.strip()
        title_tokens = len(self.tokenizer.encode(title, add_special_tokens=False).ids) if title else 0
        window = max(self.chunk_tokens - title_tokens, MIN_TEXT_WINDOW)
        offsets, words = self._tokens(doc.text)
        n = len(offsets)
        if n == 0:
            return [Chunk(doc.id, 0, doc.full_text, 0, len(doc.text))]
        chunks: list[Chunk] = []
        start = 0
        while True:
            end = _word_boundary(words, start, min(start + window, n))
            char_start, char_end = int(offsets[start, 0]), int(offsets[end - 1, 1])
            body = doc.text[char_start:char_end]
            text = f"{title} {body}" if title else body
            chunks.append(Chunk(doc.id, len(chunks), text, char_start, char_end))
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
