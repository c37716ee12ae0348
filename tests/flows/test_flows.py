"""The ingest and eval flows end to end on a temporary Prefect server, the real engine and a tiny corpus."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from eval.options import EvalSettings
from ingest.errors import IngestError
from ingest.options import IngestConfig

if TYPE_CHECKING:
    from conftest import TinyCorpus

BATCH_DOCS = 50  # → batches of 50, 50, 20 of the 120 documents
MODEL = "random-64"  # random weights, 64-d: fast to build; default matrix d64 × {none, binary, scalar}


def flow_run_id(state: Any) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return UUID(str(run_id))


def task_runs(run_id: UUID, expected: int, timeout_s: float = 60.0) -> dict[str, list[Any]]:
    """Final task runs of a flow run by name, once at least `expected` of them are final.

    Task run states reach the server through events, a little after the flow returns.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(final) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    by_name: dict[str, list[Any]] = {}
    for r in final:
        # Prefect appends a 3-hex-digit suffix to task run names that are not set explicitly.
        by_name.setdefault(re.sub(r"-[0-9a-f]{3}$", "", r.name), []).append(r)
    return by_name


def artifacts(run_id: UUID) -> dict[str, Any]:
    """Artifacts of a flow run by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return {a.key: a for a in found}


@pytest.fixture(scope="module")
def ingested(
    prefect_api_url: str, tiny_corpus: TinyCorpus, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One ingest flow run into a fresh data dir; returns its state, result and data dir."""
    from flows.ingest_flow import ingest_corpus

    data_dir = tmp_path_factory.mktemp("data")
    state = ingest_corpus(
        target=str(tiny_corpus.path),
        options=IngestConfig(model=MODEL, data_dir=data_dir, batch_docs=BATCH_DOCS),
        return_state=True,
    )
    return {"state": state, "result": state.result() if state.is_completed() else None, "data_dir": data_dir}


def test_ingest_flow_encodes_and_stores_each_partition_and_verifies_counts(
    ingested: dict[str, Any], tiny_corpus: TinyCorpus
) -> None:
    state, result = ingested["state"], ingested["result"]
    assert state.is_completed(), state.message
    assert result["dataset"] == "tinybeir"
    assert result["docs"] == tiny_corpus.docs
    assert result["verified"] is True
    assert set(result["points"]) == {"tinybeir-d64-none", "tinybeir-d64-binary", "tinybeir-d64-scalar"}
    assert all(count == result["chunks"] for count in result["points"].values())
    assert result["chunks"] >= tiny_corpus.docs

    runs = task_runs(flow_run_id(state), expected=1 + 3 + 3 + 3)
    assert {name: len(r) for name, r in runs.items()} == {
        "open-ingest": 1,
        "encode-0": 1,
        "encode-1": 1,
        "encode-2": 1,
        "store-0": 1,
        "store-1": 1,
        "store-2": 1,
        "build-index": 1,
        "verify-counts": 1,
        "finalize": 1,
    }
    assert all(r.state.is_completed() for rs in runs.values() for r in rs)
    summary = json.loads((Path(result["run_dir"]) / "summary.json").read_text(encoding="utf-8"))
    assert summary["points"] == result["points"]


def test_ingest_flow_publishes_summary_and_collection_table(
    ingested: dict[str, Any], tiny_corpus: TinyCorpus
) -> None:
    found = artifacts(flow_run_id(ingested["state"]))
    assert set(found) == {"ingest-tinybeir", "ingest-tinybeir-collections"}
    markdown = found["ingest-tinybeir"]
    assert markdown.type == "markdown"
    assert "# Ingest tinybeir: verified" in markdown.data
    assert f"{tiny_corpus.docs} docs" in markdown.data
    table = found["ingest-tinybeir-collections"]
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [(r["collection"], r["points"] == r["expected_chunks"]) for r in rows] == [
        ("tinybeir-d64-none", True),
        ("tinybeir-d64-binary", True),
        ("tinybeir-d64-scalar", True),
    ]


def test_evaluate_flow_scores_every_collection_and_publishes_the_recommendation(
    ingested: dict[str, Any], tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    from flows.eval_flow import evaluate_corpus

    assert ingested["state"].is_completed()
    state = evaluate_corpus(
        target=str(tiny_corpus.path),
        options=EvalSettings(
            data_dir=ingested["data_dir"],
            out=tmp_path / "reports",
            oversampling=(2.0,),
            min_docs=20,
            permutations=200,
        ),
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    # d64-none: exact only (the default matrix's float collections have no HNSW graph); quantized
    # collections: no exact (the float collection's exact search is the same search), no-rescore,
    # rescore-x2 and each hnsw_ef (binary's engine default is rescore-x1, scalar's is no-rescore: no
    # duplicate rows).
    efs = ("hnsw-ef64", "hnsw-ef128", "hnsw-ef256")
    assert sorted((r["collection"], r["mode"]) for r in result["configurations"]) == sorted(
        [("tinybeir-d64-none", "exact")]
        + [(f"tinybeir-d64-{q}", m) for q in ("binary", "scalar") for m in ("no-rescore", "rescore-x2", *efs)]
    )
    assert [r["collection"] for r in result["configurations"] if r["baseline"]] == ["tinybeir-d64-none"]
    assert Path(result["report_md"]).is_file() and Path(result["results_json"]).is_file()

    runs = task_runs(flow_run_id(state), expected=7)
    assert {name: len(r) for name, r in runs.items()} == {
        "load-eval-data": 1,
        "plan-collections": 1,
        "encode-queries": 1,
        "evaluate-tinybeir-d64-none": 1,
        "evaluate-tinybeir-d64-binary": 1,
        "evaluate-tinybeir-d64-scalar": 1,
        "write-report": 1,
    }
    assert all(r.state.is_completed() for rs in runs.values() for r in rs)

    found = artifacts(flow_run_id(state))
    assert set(found) == {
        "eval-tinybeir-configurations",
        "eval-tinybeir-recommendation",
        "eval-tinybeir-plots",
        "eval-tinybeir-report",
    }
    report = found["eval-tinybeir-report"].data
    assert report.startswith("# Quantization eval: tinybeir (test)")
    recommendation = found["eval-tinybeir-recommendation"].data
    assert recommendation.startswith("# Recommendation for tinybeir (test)")
    # The random-weights model is flagged in every markdown artifact.
    for key in ("eval-tinybeir-report", "eval-tinybeir-recommendation", "eval-tinybeir-plots"):
        assert "RANDOM weights" in found[key].data, key
    # Plots are embedded (data URLs), never linked by a path the UI cannot reach.
    for key in ("eval-tinybeir-report", "eval-tinybeir-plots"):
        markdown = found[key].data
        assert markdown.count("](data:image/png;base64,") == 2, key
        assert "](ndcg_" not in markdown and ".png)" not in markdown
    table = found["eval-tinybeir-configurations"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == len(result["configurations"])
    assert {"ndcg_at_10", "delta_pct", "delta_ci_pct", "serving_ram_per_vector", "p50_ms"} <= set(rows[0])
    assert sum(r["recommended"] for r in rows) == (result["recommendation"] is not None)


def test_rerun_resumes_every_batch_from_checkpoints(
    ingested: dict[str, Any], tiny_corpus: TinyCorpus
) -> None:
    from flows.ingest_flow import ingest_corpus

    state = ingest_corpus(
        target=str(tiny_corpus.path),
        options=IngestConfig(model=MODEL, data_dir=ingested["data_dir"], batch_docs=BATCH_DOCS),
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    assert result["resumed_batches"] == 3
    assert result["points"] == ingested["result"]["points"]
    runs = task_runs(flow_run_id(state), expected=4)
    assert {name: len(r) for name, r in runs.items()} == {
        "open-ingest": 1,
        "build-index": 1,
        "verify-counts": 1,
        "finalize": 1,
    }


def test_count_mismatch_fails_the_flow_after_publishing(
    prefect_api_url: str, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    """Points lost behind the records' back: the rerun resumes every batch, counts differ, the flow fails."""
    from flows.ingest_flow import ingest_corpus
    from ingest.stores import open_store

    def run() -> Any:
        return ingest_corpus(
            target=str(tiny_corpus.path),
            options=IngestConfig(
                model=MODEL,
                data_dir=tmp_path,
                batch_docs=BATCH_DOCS,
                limit=60,
                dims=[64],
                quantizations=["none"],
            ),
            return_state=True,
        )

    assert run().is_completed()
    with open_store(data_dir=tmp_path, qdrant_url=None) as store:
        lost = store.scroll_ids("tinybeir-d64-none")[:5]
        store.delete_points("tinybeir-d64-none", lost)
        store.flush("tinybeir-d64-none")
    state = run()
    assert state.is_failed()
    with pytest.raises(IngestError, match="record expects"):
        state.result()
    runs = task_runs(flow_run_id(state), expected=5)
    assert [r.state.is_failed() for r in runs["verify-counts"]] == [True]
    assert runs["finalize"][0].state.is_completed()
    markdown = artifacts(flow_run_id(state))["ingest-tinybeir"].data
    assert "# Ingest tinybeir: COUNTS DO NOT MATCH" in markdown


def test_permanent_errors_are_not_retried() -> None:
    from prefect.states import Failed

    from flows.common import is_transient
    from ingest.errors import CollectionMismatchError, InputError, StoreError

    def failed(exc: BaseException) -> Any:
        return Failed(data=exc)

    checks: list[tuple[Callable[[], BaseException], bool]] = [
        (lambda: InputError("bad record"), False),
        (lambda: CollectionMismatchError("dim differs"), False),
        (lambda: StoreError("server unreachable"), True),
        (lambda: OSError("disk hiccup"), True),
    ]
    assert [is_transient(None, None, failed(make())) for make, _ in checks] == [want for _, want in checks]
