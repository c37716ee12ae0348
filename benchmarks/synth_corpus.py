"""A TREC-COVID-sized synthetic corpus: real sentences resampled into documents of TREC-COVID's length.

TREC-COVID (BEIR) holds 171,332 CORD-19 records, title + abstract, about 160 words on average (BEIR
reports 160.77). Its text is not available offline, so documents are assembled from real scientific
sentences (SciFact and NFCorpus abstracts, read from the BEIR zips in `../shared/beir/`), or from a
synthetic vocabulary when the zips are missing. Lengths are drawn per document (the distribution is
`LENGTHS`, see `LengthModel`), so the token count, the chunk count and the payload sizes behave like
the real corpus; the words themselves only matter for the tokenizer's cache hit rate.

Usage:
    python -m benchmarks.synth_corpus OUT.parquet [--docs 171332] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BEIR_DIR = Path(__file__).resolve().parents[2] / "shared" / "beir"
SENTENCE_SOURCES = ("scifact", "nfcorpus")
TREC_COVID_DOCS = 171_332
# Rows per Parquet row group (and per generation step, which bounds the generator's memory).
ROW_GROUP = 8192
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


@dataclass(frozen=True)
class LengthModel:
    """Word counts per document: lognormal abstract and title lengths, some documents title-only.

    Attributes:
        abstract_mean: Mean words of a non-empty abstract.
        abstract_sigma: Sigma of log(words) of the abstract (0.6 puts ~3% of documents above 512
            tokens, so long documents are chunked into several windows).
        title_mean: Mean words of a title.
        title_sigma: Sigma of log(words) of the title.
        title_only: Share of documents with an empty abstract (CORD-19 has such records).
        max_words: Cap on abstract words.
    """

    abstract_mean: float = 162.0
    abstract_sigma: float = 0.6
    title_mean: float = 12.0
    title_sigma: float = 0.35
    title_only: float = 0.08
    max_words: int = 4000

    @property
    def mean_words(self) -> float:
        """Expected title + abstract words per document (ignoring the cap)."""
        return self.title_mean + (1 - self.title_only) * self.abstract_mean

    def describe(self) -> dict[str, Any]:
        """The distribution's parameters, for the benchmark output."""
        return {
            "title_words": f"lognormal, mean {self.title_mean}, sigma {self.title_sigma}, at least 1",
            "abstract_words": f"lognormal, mean {self.abstract_mean}, sigma {self.abstract_sigma}, "
            f"at most {self.max_words}; {self.title_only:.0%} of documents title-only",
            "expected_words_per_doc": round(self.mean_words, 1),
        }

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw `(title_words, abstract_words)` for `n` documents."""
        titles = _lognormal(rng, self.title_mean, self.title_sigma, n)
        abstracts = _lognormal(rng, self.abstract_mean, self.abstract_sigma, n)
        abstracts = np.minimum(abstracts, self.max_words)
        abstracts[rng.random(n) < self.title_only] = 0
        return np.maximum(titles, 1), abstracts


LENGTHS = LengthModel()


def _lognormal(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    mu = math.log(mean) - sigma * sigma / 2  # so that E[X] = mean
    return np.rint(rng.lognormal(mu, sigma, n)).astype(np.int64)


def load_sentences(beir_dir: Path = BEIR_DIR) -> tuple[list[str], list[str], str]:
    """Sentences and titles of the SciFact and NFCorpus corpora, read straight from their zips.

    Returns:
        `(sentences, titles, origin)`; origin names the zips read, or says the text is synthetic
        when none was found (then the lists come from `synthetic_sentences`).
    """
    sentences: list[str] = []
    titles: list[str] = []
    used = []
    for name in SENTENCE_SOURCES:
        path = beir_dir / f"{name}.zip"
        if not path.is_file():
            continue
        used.append(path.name)
        with zipfile.ZipFile(path) as zf, zf.open(f"{name}/corpus.jsonl") as fh:
            for line in fh:
                doc = json.loads(line)
                title = " ".join(str(doc.get("title") or "").split())
                if title:
                    titles.append(title)
                text = " ".join(str(doc.get("text") or "").split())
                sentences.extend(s for s in _SENTENCE_SPLIT.split(text) if len(s.split()) >= 3)
    if not sentences:
        sentences, titles = synthetic_sentences()
        return sentences, titles, "synthetic vocabulary (no BEIR zip found in " + str(beir_dir) + ")"
    return sentences, titles, "sentences of " + " + ".join(used)


def synthetic_sentences(count: int = 20_000, seed: int = 0) -> tuple[list[str], list[str]]:
    """Made-up sentences and titles over a Zipf-distributed vocabulary of pseudo-words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(2, 11)))) for _ in range(30_000)]
    ranks = np.minimum(rng.zipf(1.3, size=count * 20), len(vocab)) - 1
    words = iter(ranks.tolist())

    def sentence(n: int) -> str:
        return " ".join(vocab[next(words)] for _ in range(n)).capitalize() + "."

    sentences = [sentence(int(rng.integers(6, 30))) for _ in range(count)]
    titles = [sentence(int(rng.integers(4, 16)))[:-1] for _ in range(count // 4)]
    return sentences, titles


def _take_words(rng: np.random.Generator, pool: list[str], words: int) -> str:
    """Whole sentences drawn from `pool` until `words` words, the last one cut to fit."""
    out: list[str] = []
    have = 0
    while have < words:
        tokens = pool[int(rng.integers(len(pool)))].split()
        need = words - have
        out.extend(tokens[:need])
        have += min(len(tokens), need)
    return " ".join(out)


def generate_rows(
    docs: int,
    sentences: list[str],
    titles: list[str],
    *,
    seed: int = 0,
    lengths: LengthModel = LENGTHS,
) -> Iterator[dict[str, list[str]]]:
    """Yield the corpus in blocks of `ROW_GROUP` rows as columns `id`, `title`, `text`.

    Deterministic: the same `docs`, `seed` and sentences give the same rows (a block's rows depend
    only on the seed and the block number, so a shorter corpus is a prefix of a longer one).
    """
    for block, start in enumerate(range(0, docs, ROW_GROUP)):
        n = min(ROW_GROUP, docs - start)
        rng = np.random.default_rng([seed, block])
        # Draw a whole block even for a short one, so a shorter corpus is a prefix of a longer one.
        title_words, abstract_words = lengths.draw(rng, ROW_GROUP)
        out: dict[str, list[str]] = {"id": [], "title": [], "text": []}
        for i in range(n):
            out["id"].append(f"syn-{start + i:07d}")
            out["title"].append(_take_words(rng, titles, int(title_words[i])))
            out["text"].append(
                _take_words(rng, sentences, int(abstract_words[i])) if abstract_words[i] else ""
            )
        yield out


def write_corpus(
    path: Path, docs: int, *, seed: int = 0, beir_dir: Path = BEIR_DIR, lengths: LengthModel = LENGTHS
) -> dict[str, Any]:
    """Write a synthetic corpus of `docs` documents to one Parquet file (id, title, text: strings).

    Args:
        path: The Parquet file to write (its folder is created).
        docs: Number of documents.
        seed: Seed of every random draw.
        beir_dir: Where `scifact.zip` / `nfcorpus.zip` are looked for.
        lengths: The length distribution.

    Returns:
        What was written: path, docs, seed, sentence origin, length distribution, mean words.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sentences, titles, origin = load_sentences(beir_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    words = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for block in generate_rows(docs, sentences, titles, seed=seed, lengths=lengths):
            words += sum(len(t.split()) for t in block["title"]) + sum(len(t.split()) for t in block["text"])
            writer.write_table(pa.table(block, schema=schema))
    return {
        "path": str(path),
        "docs": docs,
        "seed": seed,
        "text": origin,
        "lengths": lengths.describe(),
        "mean_words_per_doc": round(words / max(docs, 1), 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Write a corpus (see the module doc)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.synth_corpus", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", type=Path, help="the Parquet file to write")
    parser.add_argument("--docs", type=int, default=TREC_COVID_DOCS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beir-dir", type=Path, default=BEIR_DIR)
    args = parser.parse_args(argv)
    print(json.dumps(write_corpus(args.out, args.docs, seed=args.seed, beir_dir=args.beir_dir), indent=2))


if __name__ == "__main__":
    main()
