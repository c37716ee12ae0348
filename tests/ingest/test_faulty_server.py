"""The server backend against a loopback fake Qdrant (REST) that drops connections mid-upload, answers
past the timeout and returns 5xx bursts: each batch is retried on its own with backoff, nothing is lost
or duplicated, and a fault that outlasts the retries ends in one StoreError naming URL, batch and cause."""

from __future__ import annotations

import itertools
import time
import uuid

import numpy as np
import pytest

from ingest.errors import StoreError
from ingest.stores.server import ServerStore
from tests.support.faulty_qdrant import FaultyQdrant

DIM = 8


def points(n: int) -> tuple[list[str], np.ndarray, list[dict[str, object]]]:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_OID, f"p{i}")) for i in range(n)]
    vectors = np.random.default_rng(0).standard_normal((n, DIM)).astype("float32")
    return ids, vectors, [{"doc_id": f"d{i}", "chunk_no": 0} for i in range(n)]


def store_for(fake: FaultyQdrant, **options: object) -> ServerStore:
    defaults: dict[str, object] = {"timeout_s": 1, "max_retries": 3, "backoff_s": 0.05, "batch_size": 10}
    defaults.update(options)
    return ServerStore(fake.url, prefer_grpc=False, parallel=1, **defaults)  # type: ignore[arg-type]


def batches_of(fake: FaultyQdrant) -> list[tuple[object, int]]:
    """(fault, first id's index) per upsert attempt, to see which batch each attempt carried."""
    ids, _, _ = points(30)
    return [(a.fault, ids.index(a.ids[0]) if a.ids else -1) for a in fake.attempts]


@pytest.mark.parametrize(
    ("plan", "what"),
    [
        ([503, 500, 502], "5xx burst"),
        (["drop", "drop"], "dropped mid-upload"),
        (["slow"], "slow past timeout"),
    ],
)
def test_transient_faults_are_retried_and_nothing_is_lost(plan: list[object], what: str) -> None:
    ids, vectors, payloads = points(30)
    with FaultyQdrant(plan=list(plan), slow_s=1.6) as fake:  # type: ignore[arg-type]
        store = store_for(fake)
        store.upsert("c", ids, vectors, payloads)
        assert sorted(fake.points["c"]) == sorted(ids), what
        assert store.count("c") == 30
        # The faults hit the first batch only; the two others went through once each.
        retried = len(plan) + 1
        assert len(fake.attempts) == retried + 2
        assert all(a.wait == "true" for a in fake.attempts)  # every upsert waits for the acknowledgement
        if what != "dropped mid-upload":  # a dropped upload's body was never read whole
            assert [first for _, first in batches_of(fake)] == [0] * retried + [10, 20]


def test_backoff_doubles_between_attempts() -> None:
    ids, vectors, payloads = points(10)
    with FaultyQdrant(plan=[503, 503, 503]) as fake:
        store_for(fake, backoff_s=0.2, max_retries=3).upsert("c", ids, vectors, payloads)
        times = [a.at for a in fake.attempts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8
    assert gaps[2] < 2.0


def test_each_batch_is_retried_on_its_own() -> None:
    ids, vectors, payloads = points(30)
    with FaultyQdrant(plan=["ok", 503, 503, "ok"]) as fake:
        store_for(fake).upsert("c", ids, vectors, payloads)
        assert batches_of(fake) == [("ok", 0), (503, 10), (503, 10), ("ok", 10), ("ok", 20)]
        assert sorted(fake.points["c"]) == sorted(ids)


@pytest.mark.parametrize(
    ("fault", "state", "cause", "advice"),
    [
        (
            503,
            "kept failing",
            "last error: UnexpectedResponse: Unexpected Response: 503 (Service Unavailable)",
            "Check the server's logs, load and disk; --retries allows more attempts (now 2).",
        ),
        (
            "drop",
            "kept dropping the connection",
            "last error: ResponseHandlingException: Server disconnected without sending a response.",
            "Check the server's logs (a crash or restart) and any proxy in between; --retries allows more "
            "attempts (now 2).",
        ),
        (
            "slow",
            "kept timing out",
            "last error: ResponseHandlingException: timed out",
            "The server is overloaded or the request too big: raise --timeout, or check the server's load; "
            "--retries allows more attempts (now 2).",
        ),
    ],
)
def test_a_fault_that_outlasts_the_retries_is_one_clear_error(
    fault: object, state: str, cause: str, advice: str
) -> None:
    ids, vectors, payloads = points(20)
    with FaultyQdrant(plan=[fault] * 3, slow_s=1.5) as fake:  # type: ignore[list-item]
        store = store_for(fake, max_retries=2)
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.upsert("c", ids, vectors, payloads)
        elapsed = time.monotonic() - started
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(
            f"Qdrant server {fake.url} {state}: upserting points 0..9 into 'c' failed after 3 attempts over "
        )
        assert f"(timeout 1s per request; {cause}" in message
        assert message.endswith(advice)
        assert len(fake.attempts) == 3  # the second batch was never sent
        assert fake.points["c"] == {}
        if fault == "slow":
            assert elapsed >= 3.0  # three attempts, each cut by the 1 s timeout


def test_a_permanent_error_is_not_retried() -> None:
    ids, vectors, payloads = points(10)
    with FaultyQdrant(plan=[400]) as fake:
        with pytest.raises(StoreError, match=r"upserting points 0\.\.9 into 'c' failed: UnexpectedResponse"):
            store_for(fake).upsert("c", ids, vectors, payloads)
        assert len(fake.attempts) == 1


def test_a_refused_connection_says_unreachable() -> None:
    with FaultyQdrant() as fake:
        url = fake.url  # the port is free again once the fake stopped
    store = ServerStore(url, prefer_grpc=False, timeout_s=1, max_retries=1, backoff_s=0.01)
    with pytest.raises(StoreError) as info:
        store.collection_exists("c")
    assert str(info.value).startswith(
        f"Qdrant server {url} is unreachable: checking collection 'c' failed after 2 attempts over "
    )
    assert str(info.value).endswith("Is the server running? Check --qdrant-url.")


def test_a_sub_second_timeout_is_kept() -> None:
    """qdrant-client rounds its timeout up to whole seconds; the store gives its connections 0.3 s."""
    ids, vectors, payloads = points(10)
    with FaultyQdrant(plan=["slow", "slow"], slow_s=1.2) as fake:
        store = store_for(fake, timeout_s=0.3, max_retries=1, backoff_s=0.01)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"kept timing out: .*\(timeout 0\.3s per request"):
            store.upsert("c", ids, vectors, payloads)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"two attempts took {elapsed:.2f} s: the 0.3 s timeout was rounded up"
    assert len(fake.attempts) == 2


def test_api_key_over_http_is_one_warning_of_ours(caplog: pytest.LogCaptureFixture) -> None:
    import warnings

    secret = "k3y-never-shown"
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING", "ingest.stores"):
        warnings.simplefilter("always")
        store = ServerStore("http://127.0.0.1:6333", secret, prefer_grpc=False)
    store.close()
    assert [str(w.message) for w in caught] == []
    [record] = caplog.records
    assert record.getMessage() == (
        "QDRANT_API_KEY is sent unencrypted to http://127.0.0.1:6333 (an http:// URL): anyone on the "
        "network path can read it; use https:// (or no key for a server without authentication)"
    )
    assert secret not in caplog.text
