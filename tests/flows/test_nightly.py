"""The nightly pipeline: ingest then eval as subflows of one run; the eval skipped, with an artifact,
when the ingest changed nothing; every ingest artifact names the model (and warns about a random or
stand-in one)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from eval.options import EvalSettings
from ingest.options import CollectionSpec, IngestConfig

if TYPE_CHECKING:
    from conftest import TinyCorpus

MODEL = "random-64"


def _run_id(state: Any) -> UUID:
    return UUID(str(state.state_details.flow_run_id))


def _artifacts(run_ids: list[UUID], timeout_s: float = 30.0, expected: int = 1) -> dict[str, Any]:
    """Artifacts of these flow runs by key (they reach the server a little after the flow returns)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=run_ids))
            )
        if len(found) >= expected or time.monotonic() > deadline:
            return {a.key: a for a in found}
        time.sleep(0.5)


def _subflow_runs(parent: UUID) -> dict[str, UUID]:
    """The subflow runs of a flow run, by flow name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
        )
        return {client.read_flow(r.flow_id).name: r.id for r in runs}


def test_eval_follows_the_ingest_store_options_unless_set() -> None:
    from flows.nightly import eval_settings_for

    ingest = IngestConfig(
        data_dir=Path("/tmp/d"),
        qdrant_url="http://q:6333",
        dims=[64],
        name="mine",
        collections=[CollectionSpec(dim=64)],
        id_col="doc",
    )
    derived = eval_settings_for(ingest, None)
    assert (derived.data_dir, derived.qdrant_url, derived.dims, derived.name, derived.id_col) == (
        Path("/tmp/d"),
        "http://q:6333",
        [64],
        "mine",
        "doc",
    )
    assert derived.collections == [CollectionSpec(dim=64)]
    own = eval_settings_for(ingest, EvalSettings(data_dir=Path("/tmp/other"), within=0.05))
    assert (own.data_dir, own.qdrant_url, own.within) == (Path("/tmp/other"), "http://q:6333", 0.05)


def test_model_markdown_names_the_model_and_warns_for_stand_in_and_random_weights() -> None:
    from flows.ingest_flow import model_markdown

    hub = {"model_id": "sentence-transformers/static-retrieval-mrl-en-v1", "kind": "sentence-transformers"}
    hub |= {"dim": 1024, "revision": "0123456789abcdef", "origin": "hub", "random_weights": False}
    assert model_markdown(hub) == (
        "Model: `sentence-transformers/static-retrieval-mrl-en-v1` (sentence-transformers, 1024-d, "
        "revision 0123456789ab, from hub)."
    )
    standin = {"model_id": "static-ingest/standin-all-minilm-l6-v2-m2v256", "kind": "stand-in", "dim": 256}
    text = model_markdown(standin)
    assert text.startswith("**WARNING: the OFFLINE STAND-IN model ran, not ")
    assert text.endswith("Model: `static-ingest/standin-all-minilm-l6-v2-m2v256` (stand-in, 256-d).")
    random = model_markdown({"model_id": "static-ingest/random-64", "kind": "random", "random_weights": True})
    assert random.startswith("**WARNING: this model has RANDOM weights")


@pytest.mark.slow
def test_nightly_ingests_then_evaluates_and_skips_the_eval_when_nothing_changed(
    prefect_api_url: str, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    from flows.nightly import nightly_pipeline

    options = IngestConfig(model=MODEL, data_dir=tmp_path / "data", batch_docs=50)
    eval_options = EvalSettings(out=tmp_path / "reports")

    first = nightly_pipeline(
        target=str(tiny_corpus.path), options=options, eval_options=eval_options, return_state=True
    )
    assert first.is_completed(), first.message
    result = first.result()
    assert result["ingest"]["added"] == tiny_corpus.docs and result["ingest"]["verified"] is True
    assert result["eval_skipped"] is None
    assert Path(result["eval"]["report_md"]).is_relative_to(tmp_path / "reports")
    subflows = _subflow_runs(_run_id(first))
    assert set(subflows) == {"ingest-corpus", "evaluate-corpus"}
    found = _artifacts([_run_id(first), *subflows.values()], expected=6)
    assert {"nightly-tinybeir", "ingest-tinybeir", "ingest-tinybeir-collections"} <= set(found)
    assert any(key.startswith("eval-tinybeir") for key in found)
    nightly = found["nightly-tinybeir"].data
    assert f"{tiny_corpus.docs} added, 0 changed, 0 unchanged, 0 deleted" in nightly
    assert "RANDOM weights" in nightly and "Model: `static-ingest/" in nightly
    assert "recommended configuration" in nightly
    ingest_md = found["ingest-tinybeir"].data
    assert "RANDOM weights" in ingest_md.split("\n\n")[1]
    rows = _table_rows(found["ingest-tinybeir-collections"])
    assert rows and all("(RANDOM WEIGHTS)" in row["model"] for row in rows)

    second = nightly_pipeline(
        target=str(tiny_corpus.path), options=options, eval_options=eval_options, return_state=True
    )
    assert second.is_completed(), second.message
    again = second.result()
    assert again["eval"] is None
    assert again["ingest"]["unchanged"] == tiny_corpus.docs
    assert again["ingest"]["added"] + again["ingest"]["changed"] + again["ingest"]["deleted"] == 0
    assert "nothing changed in tinybeir" in again["eval_skipped"]
    assert set(_subflow_runs(_run_id(second))) == {"ingest-corpus"}
    skipped = _artifacts([_run_id(second)])["nightly-tinybeir"].data
    assert "**Eval skipped**: nothing changed in tinybeir" in skipped
    assert "`force_eval` (`--force-eval`)" in skipped


def _table_rows(artifact: Any) -> list[dict[str, Any]]:
    import json

    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return list(data)
