"""Scale benchmark: a TREC-COVID-sized corpus encoded, upserted and HNSW-indexed in the embedded engine.

Usage:
    python -m eval.bench.scale [--docs 171332] [--model random-1024] [--matrix published|default]
        [--workers 0] [--no-small] [--out bench-out/] [--data-dir data]

It writes a synthetic Parquet corpus of `--docs` documents shaped like TREC-COVID (see
`eval.bench.synth_corpus`: real SciFact/NFCorpus sentences, lognormal lengths, ~160 words per
document) and one of `--docs / 10` documents (its prefix), then ingests each into a fresh data
directory with the project's pipeline (`IngestJob` + the pipelined run + `build_indexes`), each in
its own fresh Python process so memory figures do not mix. `published` is 1024-d with binary
quantization (the published configuration); `default` is every Matryoshka dim × none/binary.

This process watches the ingest process from outside (every 0.2 s: `/proc/<pid>/status` of it and
of its encoder workers, and every second its `/proc/<pid>/smaps`, to tell the pages of the
engine's memory-mapped shard files apart); a sampler inside would stall while the engine holds the
GIL. Reported per scale: wall time from opening the job to indexed and verified, docs/s overall
and per stage, and RSS:

- main process peak (pipeline + engine; `VmHWM`, exact) and its peaks during the load and
  the index phases;
- pipeline RSS: the main process's peak during the load phase *minus its resident shard-file
  pages* (which are the engine's), and the encoder workers' peak; what remains of the engine in
  the main process (its heap: id tracker, quantized copies) is still counted there, so the
  figure is an upper bound of the pipeline's own memory;
- the engine's share: resident shard-file pages at the end of the load phase, and the index phase's
  peak above the load phase's (HNSW build).

The model is normally `random-1024`: static-retrieval-mrl-en-v1's exact architecture (bert-base-
uncased tokenizer, 30,522 × 1024 table) with random weights; speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from eval.bench.machine import machine_info as shared_machine_info
from eval.bench.synth_corpus import BEIR_DIR, TREC_COVID_DOCS, write_corpus

SAMPLE_S = 0.2
TIMELINE_EVERY = 10  # samples between two timeline entries (about every 2 s)
# Samples between two reads of /proc/<pid>/smaps (about once a second): parsing it is not free (a third
# of a core at every sample with ten collections open). The shard's pages only grow while loading, so
# subtracting the latest reading overstates the pipeline's share slightly, never understates it.
SMAPS_EVERY = 5
MATRICES = ("published", "default")
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, load average and library versions, without importing the libraries.

    This process stays small on purpose: a child started from it inherits its peak RSS as the start
    of its own `ru_maxrss` (Linux keeps the high-water mark across exec).
    """
    return shared_machine_info(("qdrant-edge-py", "tokenizers", "torch", "numpy", "pyarrow"))


# -- the ingest process --------------------------------------------------------------------------------


def _emit(event: dict[str, Any]) -> None:
    print("@@" + json.dumps(event, default=str), flush=True)


def child(args: argparse.Namespace) -> None:
    """Run one ingest (in the fresh process the parent started) and print its phases as JSON lines."""
    import resource

    from ingest.config import build_config
    from ingest.parallel import peak_rss_mb
    from ingest.pipeline import IngestJob, _run_pipelined, _run_threaded

    published = args.matrix == "published"
    cfg = build_config(
        None,
        model=args.model,
        data_dir=args.data_dir,
        dims=[1024] if published else None,
        quantizations=["binary"] if published else None,
        workers=args.workers,
        recreate=True,
    )
    t0 = time.perf_counter()
    job = IngestJob.open(str(args.corpus), cfg)
    t_open = time.perf_counter()
    opened_maxrss = peak_rss_mb()
    _emit({"phase": "load", "collections": job.names, "maxrss_mb": opened_maxrss})
    try:
        if args.in_process:
            _run_threaded(job, progress=False)
        else:
            _run_pipelined(job, progress=False)
        t_load = time.perf_counter()
        load_cpu = _cpu(resource.RUSAGE_SELF)
        _emit({"phase": "index"})
        job.build_indexes()
        t_index = time.perf_counter()
        _emit({"phase": "verify"})
        summary = job.finalize(build_index=False)
    finally:
        job.close()
    t_end = time.perf_counter()
    _emit(
        {
            "phase": "done",
            "summary": summary.to_dict(),
            "seconds": {
                "open": t_open - t0,
                "load": t_load - t_open,
                "index": t_index - t_load,
                "verify_and_manifests": t_end - t_index,
                "total": t_end - t0,
            },
            "cpu_seconds": {
                "main_load_phase": load_cpu,
                "main_total": _cpu(resource.RUSAGE_SELF),
                "encoder_workers": _cpu(resource.RUSAGE_CHILDREN),
            },
            "maxrss_mb": peak_rss_mb(),
        }
    )


def _cpu(who: int) -> float:
    import resource

    usage = resource.getrusage(who)
    return round(usage.ru_utime + usage.ru_stime, 1)


# -- watching it ---------------------------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak), RssAnon, RssFile of a process in MB ({} once it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) // 1024
    except OSError:
        return {}
    return out


def _children(pid: int) -> list[int]:
    """Direct children of a process (all its threads' children)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="utf-8") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ")
    except OSError:
        return False
    return b"multiprocessing" in cmd and b"resource_tracker" not in cmd


def _mapped_mb(pid: int, under: str) -> int:
    """Resident MB of the file mappings of `pid` whose path starts with `under`."""
    total = 0
    path = ""
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if _MAPPING.match(line):
                    parts = line.split(None, 5)
                    path = parts[5].strip() if len(parts) > 5 else ""
                elif line.startswith("Rss:") and path.startswith(under):
                    total += int(line.split()[1])
    except OSError:
        return 0
    return total // 1024


class Watcher:
    """Samples the ingest process and its encoder workers from outside, per phase."""

    def __init__(self, pid: int, shard_root: Path) -> None:
        self.pid = pid
        self.shard_root = str(shard_root)
        self.phase = "open"
        self.peaks: dict[str, dict[str, int]] = {}
        self.worker_peak_mb = 0
        self.workers_seen: set[int] = set()
        self.last_shard_mb = 0
        self.phase_end_shard_mb: dict[str, int] = {}
        self.timeline: list[dict[str, Any]] = []
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-watcher", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def set_phase(self, phase: str) -> None:
        """Attribute the following samples to `phase` (noting the shard pages at the previous one's end)."""
        self.phase_end_shard_mb[self.phase] = _mapped_mb(self.pid, self.shard_root)
        self.phase = phase

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _peak(self, key: str, value: int) -> None:
        phase = self.peaks.setdefault(self.phase, {})
        phase[key] = max(phase.get(key, 0), value)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            st = _status(self.pid)
            if st:
                if n % SMAPS_EVERY == 0:
                    self.last_shard_mb = _mapped_mb(self.pid, self.shard_root)
                    self._peak("shard_files", self.last_shard_mb)
                self._peak("rss", st.get("VmRSS", 0))
                self._peak("anon", st.get("RssAnon", 0))
                self._peak("rss_minus_shard_files", st.get("VmRSS", 0) - self.last_shard_mb)
                workers = 0
                for child_pid in _children(self.pid):
                    if child_pid in self.workers_seen or _is_worker(child_pid):
                        self.workers_seen.add(child_pid)
                        workers = max(workers, _status(child_pid).get("VmHWM", 0))
                self.worker_peak_mb = max(self.worker_peak_mb, workers)
                if n % TIMELINE_EVERY == 0:
                    self.timeline.append(
                        {
                            "t": round(time.perf_counter() - self._started, 1),
                            "phase": self.phase,
                            "rss": st.get("VmRSS", 0),
                            "anon": st.get("RssAnon", 0),
                            "shard_files": self.last_shard_mb,
                            "worker_hwm": workers,
                        }
                    )
            n += 1
            self._stop.wait(SAMPLE_S)


def run_scale(corpus: Path, mode: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Ingest `corpus` in a fresh process with a fresh data directory; return its figures.

    Args:
        corpus: The Parquet corpus.
        mode: `inprocess` (three threads, no worker), `auto` (the pipeline decides) or a worker count.
        args: The parsed options (model path, matrix).
        data_dir: A data directory to create anew.
    """
    data_dir = data_dir.resolve()  # /proc/<pid>/smaps names files by absolute path
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    workers = "0" if mode in ("auto", "inprocess") else mode
    cmd = [
        sys.executable,
        "-m",
        "eval.bench.scale",
        "--child",
        str(corpus),
        "--model",
        str(args.model_path),
        "--matrix",
        args.matrix,
        "--workers",
        workers,
        "--data-dir",
        str(data_dir),
        *(["--in-process"] if mode == "inprocess" else []),
    ]
    load_before = os.getloadavg()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    watcher = Watcher(proc.pid, data_dir / "qdrant")
    watcher.start()
    done: dict[str, Any] = {}
    open_maxrss = 0
    phases: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("@@"):
            print("   | " + line.rstrip())
            continue
        event = json.loads(line[2:])
        phases[event["phase"]] = time.perf_counter() - started
        if event["phase"] == "done":
            done = event
        elif event["phase"] == "load":
            open_maxrss = round(event["maxrss_mb"])
            watcher.set_phase("load")
        else:
            watcher.set_phase(event["phase"])
    code = proc.wait()
    watcher.stop()
    if not args.keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    if code != 0 or not done:
        raise SystemExit(f"the ingest of {corpus} failed (exit code {code}); see its output above")
    peaks = watcher.peaks
    load = peaks.get("load", {})
    index = peaks.get("index", {})
    summary = done["summary"]
    stage = summary["stage_seconds"]
    n_docs = summary["docs"]
    # The main process's own peak: opening (model load: exact, no shard yet) or loading (sampled, minus
    # the shard files' resident pages).
    pipeline_main = max(open_maxrss, load.get("rss_minus_shard_files", 0))
    # The workers' VmHWM read from outside (exact peaks; ru_maxrss would start at the parent's peak).
    workers_peak = watcher.worker_peak_mb
    return {
        "mode": mode,
        "docs": n_docs,
        "chunks": summary["chunks"],
        "collections": summary["points"],
        "verified": summary["verified"],
        "seconds": {k: round(v, 1) for k, v in done["seconds"].items()},
        "process_wall_s": round(time.perf_counter() - started, 1),
        "stage_seconds": stage,
        "cpu_seconds": done["cpu_seconds"],
        "docs_per_s": {
            "overall": round(n_docs / done["seconds"]["total"]),
            "load_phase": round(n_docs / done["seconds"]["load"]),
            "read": round(n_docs / stage["read"]) if stage.get("read") else None,
            "encode": round(n_docs / stage["encode"]) if stage.get("encode") else None,
            "upsert": round(n_docs / stage["upsert"]) if stage.get("upsert") else None,
        },
        "rss_mb": {
            "main_peak_vmhwm": round(done["maxrss_mb"]),
            "main_peak_open_phase": open_maxrss,
            "main_peak_load_phase": load.get("rss", 0),
            "main_peak_index_phase": index.get("rss", 0),
            "main_anon_peak_load_phase": load.get("anon", 0),
            "shard_files_resident_end_of_load": watcher.phase_end_shard_mb.get("load", 0),
            "main_load_phase_minus_shard_files": load.get("rss_minus_shard_files", 0),
            "pipeline_main": pipeline_main,
            "encoder_workers_peak": workers_peak,
            "engine_index_phase_above_load": max(index.get("rss", 0) - load.get("rss", 0), 0),
        },
        "pipeline_peak_rss_mb": pipeline_main + workers_peak,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "timeline": watcher.timeline,
    }


def format_run(label: str, r: dict[str, Any]) -> str:
    """A human-readable block of one run's figures."""
    s = r["seconds"]
    rss = r["rss_mb"]
    cpu = r["cpu_seconds"]
    rates = ", ".join(f"{k} {v:,}" for k, v in r["docs_per_s"].items() if v is not None)
    lines = [
        f"-- {label}: {r['docs']:,} docs -> {r['chunks']:,} chunks in {len(r['collections'])} collection(s)"
        + ("" if r["verified"] else "  NOT VERIFIED"),
        f"   wall {s['total']:.1f} s to encoded + upserted + indexed + verified: open {s['open']:.1f}, "
        f"load {s['load']:.1f}, index {s['index']:.1f}, verify {s['verify_and_manifests']:.1f} "
        f"(process incl. imports {r['process_wall_s']:.1f} s)",
        f"   busy seconds per stage {r['stage_seconds']} (encode: summed over workers)",
        f"   CPU seconds: main {cpu['main_total']} (load phase {cpu['main_load_phase']}), "
        f"encoder workers {cpu['encoder_workers']}",
        f"   docs/s: {rates}",
        f"   RSS MB main process: peak {rss['main_peak_vmhwm']:,} (open {rss['main_peak_open_phase']:,}, "
        f"load {rss['main_peak_load_phase']:,}, index {rss['main_peak_index_phase']:,})",
        f"   RSS MB pipeline: main {rss['pipeline_main']:,} (max of open peak, load-phase peak minus "
        f"resident shard files {rss['main_load_phase_minus_shard_files']:,}; anon "
        f"{rss['main_anon_peak_load_phase']:,}) + encoder workers {rss['encoder_workers_peak']:,} "
        f"= {r['pipeline_peak_rss_mb']:,}",
        f"   RSS MB engine: shard files resident {rss['shard_files_resident_end_of_load']:,} at end of load; "
        f"HNSW build +{rss['engine_index_phase_above_load']:,} above the load phase peak",
        f"   load average before {r['load_average']['before']}, after {r['load_average']['after']}",
    ]
    return "\n".join(lines)


def corpus_for(out: Path, docs: int, seed: int, beir_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The corpus file of `docs` documents (written unless already there with the same parameters)."""
    path = out / f"corpus-{docs}-seed{seed}.parquet"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("docs") == docs and meta.get("seed") == seed:
            return path, meta
    t0 = time.perf_counter()
    meta = write_corpus(path, docs, seed=seed, beir_dir=beir_dir)
    meta["generate_s"] = round(time.perf_counter() - t0, 1)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path, meta


def parse_modes(text: str) -> list[str]:
    """`--modes` as a list: `auto`, `inprocess` or a worker count (≥ 1) each.

    Raises:
        SystemExit: on another value.
    """
    modes = [m.strip() for m in text.split(",") if m.strip()]
    for m in modes:
        if m not in ("auto", "inprocess") and not (m.isdigit() and int(m) >= 1):
            raise SystemExit(f"--modes: {m!r} is not auto, inprocess or a worker count >= 1")
    return modes or ["auto"]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m eval.bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=TREC_COVID_DOCS, help="documents (default 171,332)")
    parser.add_argument("--model", default="random-1024", help="model (default random-1024: random weights)")
    parser.add_argument("--matrix", choices=MATRICES, default="published")
    parser.add_argument(
        "--modes",
        default="auto",
        help="comma-separated runs at each scale, side by side: auto (the pipeline's choice), inprocess "
        "(three threads, no worker process) or a worker count; default auto",
    )
    parser.add_argument(
        "--no-small", action="store_true", help="skip the runs at docs/10 (and the RSS ratio)"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep each run's data directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("STATIC_INGEST_DATA_DIR", "data"))
    )
    parser.add_argument("--beir-dir", type=Path, default=BEIR_DIR)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        args.corpus = args.child
        child(args)
        return
    modes = parse_modes(args.modes)

    from ingest.encoding import resolve_model
    from ingest.models import read_marker

    location = resolve_model(args.model, data_dir=args.data_dir)
    args.model_path = location.path
    marker = read_marker(location.path) or {}
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    if marker.get("random_weights"):
        weights = (
            f"RANDOM weights, the architecture of {marker.get('architecture_of')}; "
            "speed does not depend on the weights"
        )
    else:
        weights = "trained weights"
    print(f"model: {location.model_id} at {location.path}: {weights}")
    print(f"matrix: {args.matrix}; modes: {', '.join(modes)}")
    args.out.mkdir(parents=True, exist_ok=True)
    scales = [args.docs] if args.no_small else [max(1, args.docs // 10), args.docs]
    corpora = {docs: corpus_for(args.out, docs, args.seed, args.beir_dir) for docs in scales}
    print(f"corpus ({args.docs:,} docs): {json.dumps(corpora[args.docs][1])}")
    results: dict[str, Any] = {
        "machine": info,
        "model": str(location.model_id),
        "random_weights": bool(marker.get("random_weights")),
        "matrix": args.matrix,
        "corpus": corpora[args.docs][1],
        "runs": [],
    }
    for docs in scales:
        for mode in modes:
            print(f"\n== {args.matrix}, {docs:,} docs, mode {mode}: a fresh process ...", flush=True)
            run = run_scale(corpora[docs][0], mode, args, args.out / f"data-{args.matrix}-{docs}-{mode}")
            results["runs"].append(run)
            print(format_run(f"{args.matrix} @ {docs:,} docs, mode {mode}", run), flush=True)
        if len(modes) > 1:
            runs = [r for r in results["runs"] if r["docs"] == results["runs"][-1]["docs"]]
            base = runs[0]
            for r in runs[1:]:
                mine, theirs = r["seconds"]["total"], base["seconds"]["total"]
                print(
                    f"   side by side at {docs:,} docs: mode {r['mode']} {mine:.1f} s vs mode {base['mode']} "
                    f"{theirs:.1f} s wall: {theirs / mine:.2f}x as fast"
                )
    if len(scales) == 2:
        print()
        for mode in modes:
            small, big = (r for r in results["runs"] if r["mode"] == mode)
            ratio = big["pipeline_peak_rss_mb"] / max(small["pipeline_peak_rss_mb"], 1)
            results.setdefault("pipeline_rss_ratio", {})[mode] = round(ratio, 2)
            lo, hi = small["pipeline_peak_rss_mb"], big["pipeline_peak_rss_mb"]
            print(
                f"pipeline peak RSS, mode {mode}: {lo:,} MB at {scales[0]:,} docs, {hi:,} MB at "
                f"{scales[1]:,} docs: ratio {ratio:.2f} (main process incl. engine: "
                f"{small['rss_mb']['main_peak_vmhwm']:,} vs {big['rss_mb']['main_peak_vmhwm']:,} MB)"
            )
    out_file = args.out / f"scale-{args.matrix}-{args.docs}-{'-'.join(modes)}.json"
    out_file.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {out_file}")


if __name__ == "__main__":
    main()
