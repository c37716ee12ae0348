"""Smoke test of the README's Prefect section: the same commands, on loopback, in order.

    python -m benchmarks.prefect_smoke                     # after the main job: scifact, limit 1000
    python -m benchmarks.prefect_smoke --target path/to/beir-folder \
        --options '{"model": "random-64", "data_dir": "/tmp/d"}' --eval-options '{"out": "/tmp/r"}'

Steps, each a subprocess of this venv's `prefect` CLI, with PREFECT_HOME in a temporary directory:

1. `prefect server start` on 127.0.0.1 and a free port; wait for `/api/health`;
2. `prefect work-pool create static-ingest --type process`;
3. `prefect --no-prompt deploy --all` from the project root (`prefect.yaml`);
4. `prefect worker start --pool static-ingest`;
5. `prefect deployment run nightly-pipeline/nightly --param options=... --watch`;
6. through the Prefect client: the run completed, its ingest subflow completed, and the artifacts
   exist (`nightly-<dataset>` on the run, `ingest-<dataset>` and its table on the ingest subflow, the
   eval's when the eval ran).

Every process it started (server, worker, and their children, flow runs included) is stopped on the
way out, also on failure or Ctrl-C. Prints the seconds of each step; exit code 0 on success.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
WORK_POOL = "static-ingest"
DEPLOYMENT = "nightly-pipeline/nightly"


class SmokeError(Exception):
    """A step failed; the message says which and shows the end of its output."""


@dataclass
class Smoke:
    """One smoke run: its temporary PREFECT_HOME, the processes it started and the step timings."""

    home: Path
    port: int
    timeout_s: float
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self) -> dict[str, str]:
        """The environment of every step: the temporary PREFECT_HOME and this server's API URL."""
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_KEY", "PREFECT_PROFILES_PATH")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            # A busy 2-core machine: generous client timeouts, and a worker that polls often.
            PREFECT_API_REQUEST_TIMEOUT="120",
            PREFECT_WORKER_QUERY_SECONDS="3",
            PYTHONUNBUFFERED="1",
        )
        return env

    def prefect(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "prefect", *args]

    def run(self, step: str, *args: str, timeout_s: float | None = None) -> str:
        """Run one CLI step to completion; returns its output. Raises SmokeError on failure."""
        started = time.monotonic()
        try:
            done = subprocess.run(
                self.prefect(*args),
                cwd=ROOT,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout_s or self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise SmokeError(f"{step}: no answer after {exc.timeout:.0f} s") from None
        self.timings[step] = time.monotonic() - started
        output = (done.stdout or "") + (done.stderr or "")
        if done.returncode != 0:
            raise SmokeError(f"{step} exited with {done.returncode}:\n{output[-3000:]}")
        return output

    def start(self, step: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a long-running CLI process in its own session; its output goes to a log file."""
        log = self.home / f"{step}.log"
        handle: TextIO = log.open("w", encoding="utf-8")
        proc = subprocess.Popen(
            self.prefect(*args),
            cwd=ROOT,
            env=self.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        self.processes.append((step, proc, log))
        return proc

    def log_tail(self, step: str) -> str:
        for name, _, log in self.processes:
            if name == step and log.exists():
                return log.read_text(encoding="utf-8", errors="replace")[-3000:]
        return ""

    def wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait until the server answers `/api/health` (or died, or the timeout passed)."""
        started = time.monotonic()
        while time.monotonic() - started < self.timeout_s:
            if proc.poll() is not None:
                raise SmokeError(f"prefect server exited with {proc.returncode}:\n{self.log_tail('server')}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as r,
            ):
                if r.status == 200:
                    self.timings["server start"] = time.monotonic() - started
                    return
            time.sleep(1)
        raise SmokeError(
            f"prefect server not healthy after {self.timeout_s:.0f} s:\n{self.log_tail('server')}"
        )

    def stop_all(self) -> None:
        """Stop every process started here and their descendants: SIGTERM, then SIGKILL after 20 s."""
        import psutil

        for _, proc, _ in reversed(self.processes):
            try:
                family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                family = []
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(family, timeout=20)
            for member in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            psutil.wait_procs(alive, timeout=10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def smoke_session(timeout_s: float, keep_home: Path | None = None) -> Iterator[Smoke]:
    """A Smoke with a temporary PREFECT_HOME; stops every process it started on the way out."""
    with tempfile.TemporaryDirectory(prefix="static-ingest-smoke-") as tmp:
        smoke = Smoke(home=keep_home or Path(tmp), port=free_port(), timeout_s=timeout_s)
        smoke.home.mkdir(parents=True, exist_ok=True)
        try:
            yield smoke
        finally:
            smoke.stop_all()


def check_run(smoke: Smoke, output: str) -> dict[str, Any]:
    """Find the flow run the `deployment run` step created and check its state, subflows and artifacts.

    Returns:
        `{"flow_run_id", "state", "subflows": {flow name: state}, "artifacts": {key: flow name}}`.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: smoke.api_url}), get_client(sync_client=True) as client:
        # The run this step created (the deployment's schedule adds future ones).
        created = re.search(r"UUID: ([0-9a-f-]{36})", output)
        if created is None:
            raise SmokeError(f"no flow run id in the output of `deployment run`:\n{output[-2000:]}")
        run = client.read_flow_run(UUID(created.group(1)))
        state = run.state
        if state is None or not state.is_completed():
            raise SmokeError(
                f"flow run {run.name} ended {state.type if state else 'without a state'}: "
                f"{state.message if state else ''}\n--- worker log ---\n{smoke.log_tail('worker')}"
            )
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id]))
        )
        names = {child.id: client.read_flow(child.flow_id).name for child in children}
        subflows = {names[c.id]: c.state.type.value if c.state else None for c in children}
        if subflows.get("ingest-corpus") != "COMPLETED":
            raise SmokeError(f"the ingest subflow did not complete: {subflows}")
        # Artifacts reach the server through events, shortly after the run ends.
        deadline = time.monotonic() + 60
        while True:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id, *names]))
            )
            owner_of = {run.id: "nightly-pipeline", **names}
            owners = {a.key: owner_of[a.flow_run_id] for a in found if a.flow_run_id is not None}
            wanted = {"nightly-pipeline": "nightly-", "ingest-corpus": "ingest-"}
            if "evaluate-corpus" in subflows:
                wanted["evaluate-corpus"] = "eval-"
            missing = [
                owner
                for owner, prefix in wanted.items()
                if not any(k and k.startswith(prefix) and o == owner for k, o in owners.items())
            ]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
    if missing:
        raise SmokeError(f"artifacts missing for {missing}; found {sorted(k for k in owners if k)}")
    return {
        "flow_run_id": str(run.id),
        "state": state.type.value,
        "subflows": subflows,
        "artifacts": {k: v for k, v in sorted(owners.items()) if k},
    }


def run_smoke(
    target: str, options: dict[str, Any], eval_options: dict[str, Any] | None, timeout_s: float
) -> dict[str, Any]:
    """Run the README's Prefect steps once; returns what `check_run` found plus the step timings.

    Raises:
        SmokeError: naming the step that failed, with the end of its output.
    """
    started = time.monotonic()
    with smoke_session(timeout_s) as smoke:
        server = smoke.start("server", "server", "start", "--host", "127.0.0.1", "--port", str(smoke.port))
        smoke.wait_healthy(server)
        smoke.run("work-pool create", "work-pool", "create", WORK_POOL, "--type", "process")
        smoke.run("deploy", "--no-prompt", "deploy", "--all")
        worker = smoke.start("worker", "worker", "start", "--pool", WORK_POOL)
        params = ["--param", f"target={json.dumps(target)}", "--param", f"options={json.dumps(options)}"]
        if eval_options:
            params += ["--param", f"eval_options={json.dumps(eval_options)}"]
        try:
            output = smoke.run(
                "deployment run",
                "deployment",
                "run",
                DEPLOYMENT,
                *params,
                "--watch",
                "--watch-timeout",
                str(int(timeout_s)),
                timeout_s=timeout_s + 60,
            )
        except SmokeError as exc:
            raise SmokeError(f"{exc}\n--- worker log ---\n{smoke.log_tail('worker')}") from None
        if worker.poll() is not None:
            raise SmokeError(f"the worker exited with {worker.returncode}:\n{smoke.log_tail('worker')}")
        result = check_run(smoke, output)
        result["timings"] = {k: round(v, 1) for k, v in smoke.timings.items()}
        result["api_url"] = smoke.api_url
        result["pids"] = [proc.pid for _, proc, _ in smoke.processes]
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the smoke test, print the outcome; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.prefect_smoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--target", default="scifact", help="the deployment's target (default scifact)")
    parser.add_argument(
        "--options", default='{"limit": 1000}', help='ingest options as JSON (default {"limit": 1000})'
    )
    parser.add_argument("--eval-options", default=None, help="eval options as JSON (default: none)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per step (default 600)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        options = json.loads(args.options)
        eval_options = json.loads(args.eval_options) if args.eval_options else None
    except json.JSONDecodeError as exc:
        print(f"error: --options / --eval-options must be JSON objects: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_smoke(args.target, options, eval_options, args.timeout)
    except SmokeError as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    print(f"smoke test passed in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
