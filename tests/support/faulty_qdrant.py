"""A loopback fake of the part of Qdrant's REST API an ingest uses, with injectable faults.

It speaks enough for qdrant-client with `prefer_grpc=False`: collection exists/info-free calls an
upsert needs (`GET /collections/{name}/exists`, `PUT /collections/{name}/points`, `POST
/collections/{name}/points/count`, `GET /collections`), and keeps the upserted points in memory, so a
test can check that retries neither lose nor duplicate a batch.

Faults are planned per upsert request, in arrival order (`FaultyQdrant.plan`): `"ok"`, `"drop"` (read
half the body, then close the connection without answering: a connection dropped mid-upload), `"slow"`
(answer after `slow_s`, past the client's timeout, *without* storing the points: the request is lost),
or an HTTP status such as `503` (a 5xx burst is several in a row). Requests beyond the plan are `"ok"`.
`every` applies one fault to every request of any kind instead (a server that is down in that way from
the first request on, as the CLI meets it: its first call checks whether a collection exists).

Binds 127.0.0.1 on a free port; nothing leaves the machine.

Usage:

    with FaultyQdrant(plan=[503, 503, "ok"]) as fake:
        store = ServerStore(fake.url, prefer_grpc=False, timeout_s=1, max_retries=3, backoff_s=0.05)
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

Fault = str | int


@dataclass
class UpsertAttempt:
    """One upsert request as the fake saw it.

    Attributes:
        at: `time.monotonic()` when it arrived.
        fault: What the fake did with it.
        ids: The point ids in its body (empty when the body was not read whole).
        wait: The `wait` query parameter (`"true"` for an acknowledged upsert).
    """

    at: float
    fault: Fault
    ids: list[str] = field(default_factory=list)
    wait: str | None = None


class FaultyQdrant:
    """The fake server (a context manager that starts and stops it).

    Attributes:
        plan: Faults for the coming upsert requests, consumed in order.
        slow_s: How long a `"slow"` request is held before its (ignored) answer.
        points: Stored points per collection: `{collection: {id: payload}}`.
        attempts: Every upsert request, in arrival order.
    """

    def __init__(
        self,
        plan: list[Fault] | None = None,
        *,
        slow_s: float = 2.0,
        collections: tuple[str, ...] = ("c",),
        every: Fault | None = None,
    ):
        self.plan: list[Fault] = list(plan or [])
        self.every = every
        self.requests = 0
        self.slow_s = slow_s
        self.points: dict[str, dict[str, Any]] = {name: {} for name in collections}
        self.attempts: list[UpsertAttempt] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-qdrant", daemon=True)

    @property
    def url(self) -> str:
        """The base URL (`http://127.0.0.1:<port>`)."""
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else host
        return f"http://{host_text}:{port}"

    def next_fault(self) -> Fault:
        """Pop the next planned fault (`"ok"` once the plan is used up)."""
        with self._lock:
            return self.plan.pop(0) if self.plan else "ok"

    def __enter__(self) -> FaultyQdrant:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _ok(result: Any) -> dict[str, Any]:
    return {"result": result, "status": "ok", "time": 0.0001}


def _handler_for(fake: FaultyQdrant) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _every(self) -> bool:
            """Apply `fake.every` to this request; True when it was answered (or dropped) that way."""
            if fake.every is None or fake.every == "ok":
                return False
            with fake._lock:
                fake.requests += 1
            if fake.every == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return True
            self._body()
            if fake.every == "slow":
                time.sleep(fake.slow_s)
                with contextlib.suppress(OSError):  # the client gave up: the socket is gone
                    self._send(200, _ok(None))
                return True
            self._send(int(fake.every), {"status": {"error": f"injected HTTP {fake.every}"}, "time": 0.0})
            return True

        def _parts(self) -> tuple[list[str], dict[str, list[str]]]:
            split = urlsplit(self.path)
            return [p for p in split.path.split("/") if p], parse_qs(split.query)

        def do_GET(self) -> None:
            if self._every():
                return
            parts, _ = self._parts()
            if parts == ["collections"]:
                self._send(200, _ok({"collections": [{"name": n} for n in fake.points]}))
            elif len(parts) == 3 and parts[0] == "collections" and parts[2] == "exists":
                self._send(200, _ok({"exists": parts[1] in fake.points}))
            else:
                self._send(404, {"status": {"error": f"Not found: {self.path}"}, "time": 0.0})

        def do_POST(self) -> None:
            if self._every():
                return
            parts, _ = self._parts()
            self._body()
            if len(parts) == 4 and parts[0] == "collections" and parts[2:] == ["points", "count"]:
                self._send(200, _ok({"count": len(fake.points.get(parts[1], {}))}))
            else:
                self._send(404, {"status": {"error": f"Not found: {self.path}"}, "time": 0.0})

        def do_PUT(self) -> None:
            if self._every():
                return
            parts, query = self._parts()
            if not (len(parts) == 3 and parts[0] == "collections" and parts[2] == "points"):
                self._body()
                self._send(404, {"status": {"error": f"Not found: {self.path}"}, "time": 0.0})
                return
            fault = fake.next_fault()
            attempt = UpsertAttempt(time.monotonic(), fault, wait=(query.get("wait") or [None])[0])  # type: ignore[list-item]
            with fake._lock:
                fake.attempts.append(attempt)
            if fault == "drop":
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length // 2)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = json.loads(self._body() or b"{}")
            points = body.get("points", [])
            attempt.ids = [str(p["id"]) for p in points]
            if fault == "slow":
                time.sleep(fake.slow_s)
                self._send(200, _ok({"operation_id": 0, "status": "completed"}))
                return
            if isinstance(fault, int):
                self._send(fault, {"status": {"error": f"injected HTTP {fault}"}, "time": 0.0})
                return
            if parts[1] not in fake.points:
                self._send(404, {"status": {"error": f"Collection `{parts[1]}` doesn't exist!"}, "time": 0.0})
                return
            with fake._lock:
                for p in points:
                    fake.points[parts[1]][str(p["id"])] = p.get("payload")
            self._send(200, _ok({"operation_id": len(fake.attempts), "status": "completed"}))

    return Handler
