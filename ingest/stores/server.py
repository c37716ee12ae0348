"""Collections on a Qdrant server, through qdrant-client (gRPC by default).

Bulk loads follow Qdrant's guidance: a collection is created with `indexing_threshold=0` (no HNSW while
loading), points go in batches (each retried on its own with exponential backoff, a few batches in
parallel), and `build_index` sets the threshold back and waits for the collection to turn green.

The ingest manifest lives in the collection's own `metadata` (Qdrant >= 1.16), under one key holding a
JSON string, so the server's merge of metadata updates replaces it whole. The requested spec is recorded
beside it at creation.

`QdrantClient(":memory:")` can be passed in for tests of the API shape only: local mode drops
quantization and always brute-forces, so it must never be used to measure search quality.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ingest.config import CollectionSpec
from ingest.errors import InputError, StoreError
from ingest.stores import base
from ingest.stores.base import BaseStore, Hit, SearchParams, StoredPoint

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

T = TypeVar("T")

log = logging.getLogger("ingest.stores")

MANIFEST_KEY = "static_ingest_manifest"
SPEC_KEY = "static_ingest_spec"
DEFAULT_INDEXING_THRESHOLD_KB = 20_000
SEARCH_BATCH = 64
SCROLL_PAGE = 10_000
# Keys local mode does not keep (it drops quantization and cluster settings, ignores index params): read
# from the recorded spec.
_LOCAL_MODE_RECORDED = (
    "quantization",
    *base.QUANTIZATION_DETAIL_KEYS,
    *base.CLUSTER_KEYS,
    "hnsw_m",
    "hnsw_ef_construct",
    "full_scan_threshold",
)
_RETRY_HTTP = {408, 425, 429, 500, 502, 503, 504}
_AUTH_HTTP = {401, 403}


def redact_url(url: str) -> str:
    """The URL without any user:password part (safe to print)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class ServerStore(BaseStore):
    """Collections on a Qdrant server (see the module docstring).

    Every call to the server goes through `_call`: transient faults (connection refused or dropped,
    timeouts, 5xx, gRPC UNAVAILABLE) are retried with exponential backoff, then reported as one StoreError
    that names the URL (never the API key), the attempts, and what to check.
    """

    backend = "server"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        prefer_grpc: bool = True,
        grpc_port: int = 6334,
        timeout_s: float = 60.0,
        batch_size: int = 256,
        parallel: int = 2,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 16.0,
        indexing_threshold_kb: int = DEFAULT_INDEXING_THRESHOLD_KB,
        index_timeout_s: float = 3600.0,
        poll_s: float = 1.0,
        client: QdrantClient | None = None,
    ) -> None:
        """Connect lazily to a server (no request is sent until the first operation).

        Args:
            url: Server URL, e.g. `http://localhost:6333` (REST port; gRPC uses `grpc_port`).
            api_key: API key or None. Kept only inside the client; never printed.
            prefer_grpc: Use gRPC for data operations.
            grpc_port: The server's gRPC port.
            timeout_s: Per-request timeout in seconds.
            batch_size: Points per upsert request.
            parallel: Upsert requests in flight at once.
            max_retries: Retries of a failed request (so `max_retries + 1` attempts).
            backoff_s: First wait between attempts; doubled each time up to `max_backoff_s`.
            max_backoff_s: Longest wait between attempts.
            indexing_threshold_kb: Indexing threshold `build_index` restores (Qdrant's default 20,000 KB:
                smaller segments stay unindexed and are searched by full scan).
            index_timeout_s: Longest wait for the collection to turn green in `build_index`.
            poll_s: Interval between status polls in `build_index`.
            client: A ready client to use instead (e.g. `QdrantClient(":memory:")` in tests).
        """
        self.url = redact_url(url)
        self.prefer_grpc = prefer_grpc
        self.grpc_port = grpc_port
        self.timeout_s = timeout_s
        self.batch_size = max(1, batch_size)
        self.parallel = max(1, parallel)
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.indexing_threshold_kb = indexing_threshold_kb
        self.index_timeout_s = index_timeout_s
        self.poll_s = poll_s
        self._secret = api_key or None
        if client is None:
            from qdrant_client import QdrantClient

            with warnings.catch_warnings():
                # Said once, in our words, below (qdrant-client's is a raw UserWarning with a source line).
                warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
                client = QdrantClient(
                    url=url,
                    api_key=api_key,
                    prefer_grpc=prefer_grpc,
                    grpc_port=grpc_port,
                    timeout=max(1, math.ceil(timeout_s)),
                    check_compatibility=False,
                )
            _keep_sub_second_timeout(client, timeout_s)
            if api_key and urllib.parse.urlsplit(url).scheme == "http":
                log.warning(
                    "QDRANT_API_KEY is sent unencrypted to %s (an http:// URL): anyone on the network path "
                    "can read it; use https:// (or no key for a server without authentication)",
                    self.url,
                )
        self.client = client
        from qdrant_client.local.qdrant_local import QdrantLocal

        self._local = isinstance(getattr(client, "_client", None), QdrantLocal)
        if self._local:
            # qdrant-client's local mode is not thread-safe: concurrent upserts corrupt its arrays.
            self.parallel = 1

    def __repr__(self) -> str:
        key = "set" if self._secret else None
        return f"ServerStore(url={self.url!r}, prefer_grpc={self.prefer_grpc}, api_key={key})"

    # -- calling the server --------------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return " ".join(text.split())[:500]

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request with retries; every failure becomes a StoreError naming the URL."""
        attempts = self.max_retries + 1
        delay = self.backoff_s
        started = time.monotonic()
        last: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Exception as exc:
                kind = _classify(exc)
                if kind == "auth":
                    raise StoreError(
                        f"Qdrant server {self.url} refused {what}: not authorised ({self._clean(str(exc))}). "
                        "Check the API key (QDRANT_API_KEY)."
                    ) from None
                if kind == "permanent":
                    raise StoreError(
                        f"Qdrant server {self.url}: {what} failed: {self._clean(_describe(exc))}"
                    ) from exc
                last = exc
            if attempt < attempts:
                time.sleep(min(delay, self.max_backoff_s))
                delay *= 2
        raise StoreError(self._gave_up(what, attempts, time.monotonic() - started, last))

    def _gave_up(self, what: str, attempts: int, seconds: float, last: BaseException | None) -> str:
        """The one-line error once the retries of a transient fault are used up: the server is
        unreachable (connection refused), kept dropping connections, kept timing out, or kept failing
        (answered 5xx), each with what to check."""
        grpc_hint = (
            f" and that its gRPC port {self.grpc_port} is reachable (gRPC is on; REST uses the URL's port)"
            if self.prefer_grpc and not self._local
            else ""
        )
        more = f"--retries allows more attempts (now {self.max_retries})"
        state, advice = {
            "unreachable": ("is unreachable", f"Is the server running? Check --qdrant-url{grpc_hint}."),
            "dropped": (
                "kept dropping the connection",
                f"Check the server's logs (a crash or restart) and any proxy in between; {more}.",
            ),
            "timeout": (
                "kept timing out",
                f"The server is overloaded or the request too big: raise --timeout, or check the "
                f"server's load; {more}.",
            ),
            "failing": ("kept failing", f"Check the server's logs, load and disk; {more}."),
        }[_fault_kind(last)]
        return (
            f"Qdrant server {self.url} {state}: {what} failed after {attempts} attempts over {seconds:.1f}s "
            f"(timeout {self.timeout_s:g}s per request; last error: {self._clean(_describe(last))}). {advice}"
        )

    # -- collections ---------------------------------------------------------------------------------

    def collection_exists(self, name: str) -> bool:
        """Whether the collection exists on the server."""
        return bool(self._call(f"checking collection {name!r}", lambda: self.client.collection_exists(name)))

    def list_collections(self) -> list[str]:
        """Names of every collection on the server, sorted."""
        listed = self._call("listing collections", self.client.get_collections)
        return sorted(c.name for c in listed.collections)

    def _location(self, name: str) -> str:
        return f"on {self.url}"

    def _create_collection(self, name: str, spec: CollectionSpec, *, defer_index: bool) -> None:
        """Create the collection, recording `spec` in its metadata.

        `defer_index` creates it with `indexing_threshold=0` (no HNSW while loading); `build_index`
        restores the threshold. The cluster settings (`shard_number`, `replication_factor`,
        `write_consistency_factor`) are sent when the spec sets them; None leaves the server's default.

        Raises:
            StoreError: the server failed or is unreachable.
        """
        from qdrant_client import models

        quantization: Any = None
        if spec.quantization == "binary":
            quantization = models.BinaryQuantization(
                binary=models.BinaryQuantizationConfig(
                    always_ram=spec.always_ram,
                    encoding=models.BinaryQuantizationEncoding(spec.binary_encoding),
                )
            )
        elif spec.quantization == "scalar":
            quantization = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=spec.scalar_quantile, always_ram=spec.always_ram
                )
            )
        threshold = 0 if defer_index else self.indexing_threshold_kb
        self._call(
            f"creating collection {name!r}",
            lambda: self.client.create_collection(
                name,
                vectors_config=models.VectorParams(
                    size=spec.dim, distance=models.Distance.COSINE, on_disk=spec.on_disk
                ),
                hnsw_config=models.HnswConfigDiff(
                    m=spec.hnsw_m,
                    ef_construct=spec.hnsw_ef_construct,
                    full_scan_threshold=spec.full_scan_threshold,
                ),
                quantization_config=quantization,
                optimizers_config=models.OptimizersConfigDiff(indexing_threshold=threshold),
                shard_number=spec.shard_number,
                replication_factor=spec.replication_factor,
                write_consistency_factor=spec.write_consistency_factor,
                metadata={SPEC_KEY: json.dumps(spec.to_dict(), sort_keys=True)},
                timeout=max(1, math.ceil(self.timeout_s)),
            ),
        )

    def delete_collection(self, name: str) -> None:
        """Drop the collection and its data."""
        self._call(f"deleting collection {name!r}", lambda: self.client.delete_collection(name))

    def _info(self, name: str) -> Any:
        return self._call(f"reading collection {name!r}", lambda: self.client.get_collection(name))

    def collection_spec(self, name: str) -> dict[str, Any]:
        """The configuration as the server reports it, flat (the keys of `base.SPEC_KEYS` and
        `base.CLUSTER_KEYS`), plus `indexing_threshold_kb`, `status`, `points_count`,
        `indexed_vectors_count`, `segments_count`.

        In local mode the quantization keys, the cluster settings and the HNSW settings (`hnsw_m`,
        `hnsw_ef_construct`, `full_scan_threshold`) come from the spec recorded at creation
        (`config_source` says so), because local mode does not keep them.
        """
        info = self._info(name)
        cfg = info.config
        vec = cfg.params.vectors
        if isinstance(vec, dict):
            vec = vec.get("") or next(iter(vec.values()))
        distance = getattr(vec.distance, "value", vec.distance)
        out: dict[str, Any] = {
            "backend": self.backend,
            "dim": vec.size,
            "distance": str(distance).lower(),
            "quantization": "none",
            "binary_encoding": None,
            "scalar_quantile": None,
            "always_ram": None,
            "hnsw_m": cfg.hnsw_config.m,
            "hnsw_ef_construct": cfg.hnsw_config.ef_construct,
            "full_scan_threshold": cfg.hnsw_config.full_scan_threshold,
            "on_disk": bool(vec.on_disk),
            "shard_number": cfg.params.shard_number,
            "replication_factor": cfg.params.replication_factor,
            "write_consistency_factor": cfg.params.write_consistency_factor,
            "indexing_threshold_kb": cfg.optimizer_config.indexing_threshold,
            "status": getattr(info.status, "value", str(info.status)),
            "points_count": info.points_count,
            "indexed_vectors_count": info.indexed_vectors_count,
            "segments_count": info.segments_count,
            "config_source": "server",
        }
        quant = vec.quantization_config or cfg.quantization_config
        binary = getattr(quant, "binary", None)
        scalar = getattr(quant, "scalar", None)
        if binary is not None:
            encoding = getattr(binary.encoding, "value", binary.encoding) or "one_bit"
            out.update(quantization="binary", binary_encoding=encoding, always_ram=binary.always_ram)
        elif scalar is not None:
            out.update(quantization="scalar", scalar_quantile=scalar.quantile, always_ram=scalar.always_ram)
        elif quant is not None:
            out["quantization"] = type(quant).__name__.lower()
        if self._local:
            recorded = _recorded_spec(cfg.metadata)
            if recorded is not None:
                wanted = base.requested_config(recorded)
                out.update({k: wanted[k] for k in _LOCAL_MODE_RECORDED if k != "full_scan_threshold"})
                out["full_scan_threshold"] = wanted["full_scan_threshold"] or out["full_scan_threshold"]
                out["config_source"] = (
                    "local mode: quantization, cluster settings and the HNSW settings as recorded at creation"
                )
        return out

    def build_index(self, name: str) -> None:
        """Restore the indexing threshold and wait until the server has built every index (status green).

        Raises:
            StoreError: the server reports an optimizer error, or the collection is not green within
                `index_timeout_s`.
        """
        from qdrant_client import models

        self._call(
            f"enabling indexing of {name!r}",
            lambda: self.client.update_collection(
                name,
                optimizers_config=models.OptimizersConfigDiff(indexing_threshold=self.indexing_threshold_kb),
            ),
        )
        deadline = time.monotonic() + self.index_timeout_s
        greens = 0
        nudged = False
        while True:
            info = self._info(name)
            status = getattr(info.status, "value", str(info.status))
            error = getattr(info.optimizer_status, "error", None)
            if error:
                raise StoreError(f"Qdrant server {self.url}: building the index of {name!r} failed: {error}")
            if status == "green":
                greens += 1
                # Two green polls in a row: the optimizer may not have picked the change up at the first.
                if greens >= 2 or self._local:
                    return
            else:
                greens = 0
                if status == "grey" and not nudged:
                    # Grey: optimizations pending but not started; any collection update triggers them.
                    self._call(
                        f"triggering optimization of {name!r}",
                        lambda: self.client.update_collection(
                            name, optimizers_config=models.OptimizersConfigDiff()
                        ),
                    )
                    nudged = True
            if time.monotonic() > deadline:
                raise StoreError(
                    f"Qdrant server {self.url}: collection {name!r} is still {status} after "
                    f"{self.index_timeout_s:g}s of indexing; check the server's load and logs, "
                    "or raise index_timeout_s"
                )
            time.sleep(self.poll_s)

    # -- points --------------------------------------------------------------------------------------

    def upsert(self, name: str, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        """Upsert points in batches of `batch_size`, `parallel` requests at once; each batch is retried on
        its own and acknowledged (`wait=True`) before this returns.

        Raises:
            InputError: lengths differ or vectors are malformed.
            StoreError: a batch still fails after its retries (names the batch and the URL).
        """
        from qdrant_client import models

        base.check_batch(name, ids, vectors, payloads)
        if not ids:
            return
        rows = base.as_float_rows(vectors, None, f"upsert into {name!r}")
        starts = list(range(0, len(ids), self.batch_size))

        def send(start: int) -> None:
            stop = min(start + self.batch_size, len(ids))
            points = [
                models.PointStruct(id=ids[i], vector=rows[i].tolist(), payload=payloads[i])
                for i in range(start, stop)
            ]
            self._call(
                f"upserting points {start}..{stop - 1} into {name!r}",
                lambda: self.client.upsert(name, points=points, wait=True),
            )

        if self.parallel == 1 or len(starts) == 1:
            for start in starts:
                send(start)
            return
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="qdrant-upsert") as pool:
            futures = [pool.submit(send, s) for s in starts]
            try:
                for fut in futures:
                    fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise

    def delete_points(self, name: str, ids: list[str]) -> None:
        """Delete points by id in batches of `batch_size`, each acknowledged (`wait=True`) and retried.

        Raises:
            StoreError: a batch still fails after its retries.
        """
        from qdrant_client import models

        for start in range(0, len(ids), self.batch_size):
            part = list(ids[start : start + self.batch_size])
            selector = models.PointIdsList(points=part)  # type: ignore[arg-type]
            self._call(
                f"deleting {len(part)} points of {name!r}",
                partial(self.client.delete, name, points_selector=selector, wait=True),
            )

    def scroll_payloads(self, name: str, keys: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Every point's payload, reduced to `keys`, one page of `SCROLL_PAGE` points at a time.

        The ingest rebuilds a collection's per-document record from these (see `ingest.record`).
        """
        for records in self._scroll(name, list(keys), f"reading the payloads of {name!r}"):
            yield [dict(r.payload or {}) for r in records]

    def _scroll(self, name: str, with_payload: bool | list[str], what: str) -> Iterator[list[Any]]:
        """Every point of `name` without vectors, one page of `SCROLL_PAGE` records at a time."""
        offset: Any = None
        while True:
            page = partial(
                self.client.scroll,
                name,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=with_payload,
                with_vectors=False,
            )
            records, offset = self._call(what, page)
            yield records
            if offset is None:
                return

    def flush(self, name: str) -> None:
        """No-op: every upsert waited for the server's acknowledgement (the server persists via its WAL)."""

    def count(self, name: str) -> int:
        """Exact number of points."""
        return int(self._call(f"counting {name!r}", lambda: self.client.count(name, exact=True)).count)

    def search(self, name: str, queries: np.ndarray, limit: int, params: SearchParams) -> list[list[Hit]]:
        """Search a batch of queries with `query_batch_points`; one hit list per query, best first."""
        from qdrant_client import models

        rows = base.as_float_rows(queries, None, f"search in {name!r}")
        search_params = base.engine_search_params(
            params, models.SearchParams, models.QuantizationSearchParams
        )
        out: list[list[Hit]] = []
        for start in range(0, len(rows), SEARCH_BATCH):
            requests = [
                models.QueryRequest(query=row.tolist(), limit=limit, params=search_params, with_payload=True)
                for row in rows[start : start + SEARCH_BATCH]
            ]
            responses = self._call(
                f"searching {name!r}", partial(self.client.query_batch_points, name, requests)
            )
            out.extend(
                [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in r.points] for r in responses
            )
        return out

    def retrieve(self, name: str, ids: list[str], *, with_vectors: bool = True) -> list[StoredPoint]:
        """Read points back by id, in the order asked; missing ids are left out."""
        if not ids:
            return []
        records = self._call(
            f"retrieving points of {name!r}",
            lambda: self.client.retrieve(name, ids=list(ids), with_payload=True, with_vectors=with_vectors),
        )
        return base.ordered_points(records, ids, with_vectors=with_vectors)

    def scroll_ids(self, name: str) -> list[str]:
        """Every point id."""
        pages = self._scroll(name, False, f"listing point ids of {name!r}")
        return [str(r.id) for records in pages for r in records]

    # -- metadata ------------------------------------------------------------------------------------

    def get_metadata(self, name: str) -> dict[str, Any]:
        """The ingest manifest stored in the collection's metadata; {} if none."""
        metadata = self._info(name).config.metadata or {}
        raw = metadata.get(MANIFEST_KEY)
        if not raw:
            return {}
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"collection {name!r} on {self.url}: the stored manifest is not valid JSON: {exc}"
            ) from exc
        return data if isinstance(data, dict) else {}

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        """Replace the ingest manifest (one metadata key holding JSON text, replaced whole)."""
        text = json.dumps(metadata, sort_keys=True, default=str)
        self._call(
            f"writing the manifest of {name!r}",
            lambda: self.client.update_collection(name, metadata={MANIFEST_KEY: text}),
        )

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


def _recorded_spec(metadata: dict[str, Any] | None) -> CollectionSpec | None:
    raw = (metadata or {}).get(SPEC_KEY)
    if not isinstance(raw, str):
        return None
    try:
        return CollectionSpec.from_dict(json.loads(raw), where="recorded collection spec")
    except (json.JSONDecodeError, InputError):
        return None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "none"
    details = getattr(exc, "details", None)
    if callable(details):  # grpc.RpcError
        try:
            code = exc.code()  # type: ignore[attr-defined]
            return f"gRPC {getattr(code, 'name', code)}: {details()}"
        except Exception:
            pass
    return f"{type(exc).__name__}: {exc}"


def _keep_sub_second_timeout(client: QdrantClient, timeout_s: float) -> None:
    """Give the client's connections `timeout_s` exactly: qdrant-client 1.20 rounds its `timeout` up to
    whole seconds (`math.ceil` in `QdrantRemote.__init__`), so 0.2 s would wait 1 s. Its REST client
    (httpx) and its gRPC deadline both take fractions; where its internals differ, the rounded value
    stays (a debug note says so)."""
    if timeout_s == math.ceil(timeout_s) and timeout_s >= 1:
        return
    try:
        import httpx

        remote = client._client
        remote.openapi_client.client._client.timeout = httpx.Timeout(timeout_s)  # type: ignore[attr-defined]
        remote._timeout = timeout_s  # type: ignore[attr-defined]  # the gRPC calls' deadline
    except AttributeError:
        log.debug("qdrant-client keeps its whole-second timeout of %s s", max(1, math.ceil(timeout_s)))


def _fault_kind(exc: BaseException | None) -> str:
    """Which transient fault outlasted the retries: `unreachable` (connection refused, no route, gRPC
    UNAVAILABLE), `dropped` (the connection closed mid-request), `timeout`, or `failing` (the server
    answered, with a 5xx or a retryable gRPC status)."""
    source = getattr(exc, "source", exc)  # ResponseHandlingException wraps the transport error
    try:
        import httpx

        if isinstance(source, httpx.TimeoutException):
            return "timeout"
        if isinstance(source, httpx.ConnectError):
            return "unreachable"
        if isinstance(source, httpx.TransportError):
            return "dropped"
    except ImportError:  # pragma: no cover - httpx ships with qdrant-client
        pass
    if isinstance(source, TimeoutError):
        return "timeout"
    if isinstance(source, ConnectionRefusedError):
        return "unreachable"
    if isinstance(source, ConnectionError):
        return "dropped"
    code = getattr(source, "code", None)
    if callable(code) and hasattr(source, "details"):  # grpc.RpcError
        try:
            name = getattr(code(), "name", "")
        except Exception:
            name = ""
        if name == "DEADLINE_EXCEEDED":
            return "timeout"
        if name == "UNAVAILABLE":
            return "unreachable"
    return "failing"


def _classify(exc: BaseException) -> str:
    """`transient` (worth retrying), `auth`, or `permanent`."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        if exc.status_code in _AUTH_HTTP:
            return "auth"
        return "transient" if exc.status_code in _RETRY_HTTP else "permanent"
    if isinstance(exc, ResponseHandlingException | ConnectionError | TimeoutError):
        return "transient"
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            import grpc
        except ImportError:  # pragma: no cover - grpc ships with qdrant-client
            return "permanent"
        if isinstance(exc, grpc.RpcError):
            status = exc.code()
            if status in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return "auth"
            transient = (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.ABORTED,
            )
            return "transient" if status in transient else "permanent"
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return "permanent"
    if isinstance(exc, httpx.TransportError):
        return "transient"
    return "permanent"
