"""Encoder benchmark: the fast exact encoder against `SentenceTransformer.encode`, same texts, one run.

Usage:
    python -m benchmarks.encoder [--model random-1024 --model standin] [--docs N] [--repeats 3]
        [--workers 1,2] [--long 200] [--scale-docs 20000] [--data-dir data] [--json out.json]

Texts: SciFact and NFCorpus documents (`title + " " + text`, read from the BEIR zips in
`../shared/beir/`), `--scale-docs` documents of the scale benchmark's TREC-COVID-shaped corpus
(`benchmarks/synth_corpus.py`: real sentences resampled, ~160 words per document; the second block
of that many, the first block warming the "steady" pass), and a synthetic set of long texts
(several documents joined, thousands of tokens, with accents, CJK, emoji and control characters
mixed in). For each model and set it prints docs/s of `SentenceTransformer.encode` (the best of
batch sizes 32 and 1024) and of the fast encoder: warm (the same texts again, per worker count),
cold (the first pass of a freshly loaded encoder, whose caches fill as it goes) and, for the scale
corpus, steady (a fresh encoder that first encoded the preceding block of the corpus, as in the
middle of a long ingest); the speed ratios; the largest per-component difference between the
normalised outputs of the fast path and of the model's own library; and how many texts got token
ids identical to the model's tokenizer (for a Model2Vec model, the library is Model2Vec, which
leaves out [UNK]; `SentenceTransformer` keeps it, so the difference to ST is reported
separately). Timings are medians of `--repeats` runs, the two encoders alternating so they share
the machine's noise.

The cold row above sets a freshly loaded encoder's first pass against `SentenceTransformer.encode`
already warmed in the same process. For SciFact and NFCorpus the harness also starts fresh
interpreters (`--cold-processes` per encoder, alternating), each importing and loading one encoder
and encoding the set twice: import + load, first encode and second encode for both, so each side
pays its own first-call costs wherever its library puts them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info as shared_machine_info

BEIR_DIR = Path(__file__).resolve().parents[2] / "shared" / "beir"
DATASETS = ("scifact", "nfcorpus")
ST_BATCH_SIZES = (32, 1024)
NOISE = [
    " naïve café Ünïcödé",
    " 中文字符测试",
    " emoji 🎉🚀",
    " ctrl\x00\x1c\x7fchars",
    " ——…!!?? ",
    " [MASK] x",
]


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, load and library versions."""
    return shared_machine_info(
        ("sentence-transformers", "model2vec", "tokenizers", "torch", "scipy", "numpy")
    )


def load_beir_texts(name: str, limit: int | None = None, beir_dir: Path = BEIR_DIR) -> list[str]:
    """Read `title + " " + text` of a BEIR corpus straight out of its zip."""
    path = beir_dir / f"{name}.zip"
    out: list[str] = []
    with zipfile.ZipFile(path) as zf, zf.open(f"{name}/corpus.jsonl") as fh:
        for line in fh:
            if limit is not None and len(out) >= limit:
                break
            doc = json.loads(line)
            out.append((doc.get("title", "") + " " + doc.get("text", "")).strip())
    return out


def synthetic_long(docs: list[str], count: int, seed: int = 0) -> list[str]:
    """Long texts: 6-15 documents joined, with odd characters sprinkled in."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = rng.sample(docs, k=min(len(docs), rng.randint(6, 15)))
        parts = [p + (rng.choice(NOISE) if rng.random() < 0.3 else "") for p in parts]
        out.append("\n\n".join(parts))
    return out


def scale_texts(docs: int, beir_dir: Path = BEIR_DIR) -> list[str]:
    """`title + " " + text` of the first `docs` documents of the scale benchmark's corpus (seed 0)."""
    from benchmarks.synth_corpus import generate_rows, load_sentences

    sentences, titles, _ = load_sentences(beir_dir)
    out: list[str] = []
    for block in generate_rows(docs, sentences, titles, seed=0):
        out.extend(f"{t} {x}".strip() for t, x in zip(block["title"], block["text"], strict=True))
    return out


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Seconds one call `fn(*args, **kwargs)` took, and its result."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def cold_child(kind: str, model: str, texts_file: Path, batch_size: int, data_dir: Path) -> dict[str, float]:
    """In a fresh interpreter: import and load one encoder, then encode the texts twice.

    Args:
        kind: `fast` (this project's encoder, one process) or `st` (`SentenceTransformer`).
        model: The fast encoder's model spec, or the model directory for `st`.
        texts_file: A JSON list of the texts.
        batch_size: `SentenceTransformer.encode`'s batch size.
        data_dir: The fast encoder's data directory.

    Returns:
        Seconds to import and load the encoder, of the first encode and of the second.
    """
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    start = time.perf_counter()
    encode: Callable[[list[str]], Any]
    if kind == "fast":
        from ingest.encoder.static import load_encoder

        encode = load_encoder(model, data_dir=data_dir, workers=1).encode
    else:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(model, device="cpu", local_files_only=True)
        static: Any = st[0]
        static.tokenizer.no_truncation()  # same work as the encoder: whole texts
        encode = lambda t: st.encode(  # noqa: E731
            t, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
    loaded = time.perf_counter()
    encode(texts)
    first = time.perf_counter()
    encode(texts)
    second = time.perf_counter()
    return {"load_s": loaded - start, "first_s": first - loaded, "second_s": second - first}


def cold_processes(
    texts: list[str], fast_model: str, st_model: Path, batch_size: int, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Medians over `args.cold_processes` fresh interpreters per encoder (alternating) of `cold_child`."""
    runs: dict[str, list[dict[str, float]]] = {"fast": [], "st": []}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        for _ in range(args.cold_processes):
            for kind, model in (("fast", fast_model), ("st", str(st_model))):
                cmd = [sys.executable, "-m", "benchmarks.encoder", "--cold-child", kind, "--model", model]
                cmd += ["--cold-texts", str(texts_file), "--cold-batch", str(batch_size)]
                cmd += ["--data-dir", str(args.data_dir)]
                done = subprocess.run(
                    cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1]
                )
                runs[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        kind: {key: statistics.median(r[key] for r in rows) for key in rows[0]} for kind, rows in runs.items()
    }


def bench_model(
    model: str, sets: dict[str, list[str]], args: argparse.Namespace, warmups: dict[str, list[str]]
) -> dict[str, Any]:
    """Benchmark one model on every text set; print and return the figures.

    Args:
        model: The model to load.
        sets: Name → texts.
        args: The parsed command line.
        warmups: Name → other texts of the same corpus, for a "steady" pass on warmed caches.
    """
    from sentence_transformers import SentenceTransformer

    from ingest.encoder.static import load_encoder
    from ingest.encoder.wordpiece import token_ids_reference

    base = load_encoder(model, data_dir=args.data_dir)
    desc = base.describe()
    print(f"\n== model {desc['model_id']}  kind={desc['kind']}  dim={desc['dim']}", end="")
    print(f"  fast path={desc['fast_path']}")
    st = SentenceTransformer(str(base.location.path), device="cpu", local_files_only=True)
    static: Any = st[0]
    static.tokenizer.no_truncation()  # same work as the encoder: whole texts
    fast = {w: load_encoder(model, data_dir=args.data_dir, workers=w) for w in args.workers}
    results: dict[str, Any] = {"model": desc, "sets": {}}
    for set_name, texts in sets.items():
        n = len(texts)
        # Exactness first, on the cold first pass of a freshly loaded encoder (empty caches).
        fresh = load_encoder(model, data_dir=args.data_dir, workers=args.workers[0])
        cold_s, got = timed(fresh.encode, texts)
        fresh.close()
        steady_s: float | None = None
        if set_name in warmups:
            # The middle of a long ingest: caches filled by other documents of the same corpus.
            other = load_encoder(model, data_dir=args.data_dir, workers=args.workers[0])
            other.encode(warmups[set_name])
            steady_s, again = timed(other.encode, texts)
            other.close()
            np.testing.assert_array_equal(again, got)
        ref = base.plain_encode(texts)
        max_diff = float(np.abs(got - ref).max()) if n else 0.0
        ids_ok = sum(
            a == b
            for a, b in zip(base.token_ids(texts), token_ids_reference(base.tokenizer, texts), strict=True)
        )
        tokens = sum(base.count_tokens(texts)) / max(n, 1)
        st_vecs = np.asarray(
            st.encode(texts, normalize_embeddings=True, show_progress_bar=False), dtype=np.float32
        )
        st_diff = float(np.abs(got - st_vecs).max()) if n else 0.0
        for enc in fast.values():
            enc.encode(texts)  # warm caches (and start worker processes)
        st_times: dict[int, list[float]] = {b: [] for b in ST_BATCH_SIZES}
        fast_times: dict[int, list[float]] = {w: [] for w in args.workers}
        for _ in range(args.repeats):
            for b in ST_BATCH_SIZES:
                st_times[b].append(
                    timed(st.encode, texts, batch_size=b, normalize_embeddings=True, show_progress_bar=False)[
                        0
                    ]
                )
            for w, enc in fast.items():
                fast_times[w].append(timed(enc.encode, texts)[0])
        st_rate = {b: n / statistics.median(t) for b, t in st_times.items()}
        best_b = max(st_rate, key=lambda b: st_rate[b])
        fast_rate = {w: n / statistics.median(t) for w, t in fast_times.items()}
        row = {
            "texts": n,
            "avg_tokens": round(tokens, 1),
            "st_docs_per_s": {b: round(r) for b, r in st_rate.items()},
            "st_best_batch": best_b,
            "fast_docs_per_s": {w: round(r) for w, r in fast_rate.items()},
            "fast_cold_docs_per_s": round(n / cold_s),
            "cold_ratio_vs_best_st": round(n / cold_s / st_rate[best_b], 2),
            "fast_steady_docs_per_s": None if steady_s is None else round(n / steady_s),
            "steady_ratio_vs_best_st": None if steady_s is None else round(n / steady_s / st_rate[best_b], 2),
            "ratio_vs_best_st": {w: round(r / st_rate[best_b], 2) for w, r in fast_rate.items()},
            "max_abs_diff_vs_library": max_diff,
            "max_abs_diff_vs_st": st_diff,
            "token_ids_identical": f"{ids_ok}/{n}",
        }
        results["sets"][set_name] = row
        st_txt = ", ".join(f"batch {b}: {r:,.0f}" for b, r in st_rate.items())
        fast_txt = ", ".join(f"{w} proc: {r:,.0f} ({r / st_rate[best_b]:.1f}x)" for w, r in fast_rate.items())
        print(f"-- {set_name}: {n} texts, {tokens:.0f} tokens avg")
        print(f"   SentenceTransformer.encode docs/s   {st_txt}")
        print(f"   fast encoder docs/s (warm)          {fast_txt}")
        cold_ratio = n / cold_s / st_rate[best_b]
        print(
            f"   fast encoder docs/s (cold, 1st run) {args.workers[0]} proc: "
            f"{n / cold_s:,.0f} ({cold_ratio:.1f}x)"
        )
        if args.cold_processes and set_name in DATASETS:
            fresh_run = cold_processes(texts, model, base.location.path, best_b, args)
            row["fresh_process"] = fresh_run
            fa, sb = fresh_run["fast"], fresh_run["st"]
            print(
                f"   fresh process, median of {args.cold_processes} "
                "(import + load | 1st encode | 2nd encode): "
                f"fast {fa['load_s']:.2f} | {fa['first_s']:.3f} | {fa['second_s']:.3f} s, "
                f"ST (batch {best_b}) {sb['load_s']:.2f} | {sb['first_s']:.3f} | {sb['second_s']:.3f} s; "
                f"1st encode {sb['first_s'] / fa['first_s']:.1f}x, "
                f"load + 1st encode {(sb['load_s'] + sb['first_s']) / (fa['load_s'] + fa['first_s']):.1f}x"
            )
        if steady_s is not None:
            print(
                f"   fast encoder docs/s (steady: warmed on {len(warmups[set_name]):,} other documents) "
                f"{args.workers[0]} proc: {n / steady_s:,.0f} ({n / steady_s / st_rate[best_b]:.1f}x)"
            )
        print(
            f"   max |fast - {desc['format']} library| = {max_diff:.2e}   max |fast - ST| = {st_diff:.2e}",
            end="",
        )
        print(f"   token ids identical: {ids_ok}/{n}")
    for enc in fast.values():
        enc.close()
    return results


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encoder", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", action="append", help="model (repeatable); default: random-1024 and standin"
    )
    parser.add_argument("--docs", type=int, default=None, help="documents per dataset (default: all)")
    parser.add_argument("--long", type=int, default=200, help="synthetic long texts (default 200)")
    parser.add_argument(
        "--scale-docs",
        type=int,
        default=20_000,
        help="documents of the scale corpus (TREC-COVID-shaped, seed 0); 0 skips it (default 20000)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per encoder (median reported)")
    parser.add_argument("--workers", default="1,2", help="fast-encoder process counts to time (default 1,2)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("STATIC_INGEST_DATA_DIR", "data"))
    )
    parser.add_argument("--beir-dir", type=Path, default=BEIR_DIR)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--cold-processes",
        type=int,
        default=3,
        help="fresh interpreters per encoder and BEIR set for the first-call timings (0 skips; default 3)",
    )
    parser.add_argument("--cold-child", choices=("fast", "st"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cold-texts", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cold-batch", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_child is not None:
        model_arg = (args.model or ["random-1024"])[0]
        print(
            json.dumps(
                cold_child(args.cold_child, model_arg, args.cold_texts, args.cold_batch, args.data_dir)
            )
        )
        return
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    models = args.model or ["random-1024", "standin"]

    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    sets = {name: load_beir_texts(name, args.docs, args.beir_dir) for name in DATASETS}
    warmups: dict[str, list[str]] = {}
    if args.scale_docs:
        # The timed set is the second block of `scale_docs` documents; the first warms a "steady" pass.
        both = scale_texts(2 * args.scale_docs, args.beir_dir)
        name = f"scale-corpus-{args.scale_docs}"
        sets[name], warmups[name] = both[args.scale_docs :], both[: args.scale_docs]
    if args.long:
        sets["synthetic-long"] = synthetic_long(sets["scifact"] + sets["nfcorpus"], args.long)
    out = {"machine": info, "models": [bench_model(m, sets, args, warmups) for m in models]}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
