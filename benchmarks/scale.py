"""Scale benchmark: a TREC-COVID-sized corpus encoded, upserted and HNSW-indexed in the embedded engine.

Usage:
    python -m benchmarks.scale [--docs 171332] [--model random-1024] [--matrix published|default]
        [--modes auto|inprocess|N,...] [--no-small] [--no-engine-heap] [--out bench-out/] [--data-dir data]

It writes a synthetic Parquet corpus of `--docs` documents shaped like TREC-COVID (see
`benchmarks.synth_corpus`: real SciFact/NFCorpus sentences, lognormal lengths, ~160 words per
document) and one of `--docs / 10` documents (its prefix), then ingests each into a fresh data
directory with the project's public pipeline API (`IngestJob.open`, `run_batches`, `build_indexes`,
`finalize`), each in its own fresh Python process so memory figures do not mix. `published` is
1024-d with binary quantization (the published configuration); `default` is every Matryoshka dim ×
none/binary/scalar (`--quantizations` narrows it).

This process watches the ingest process from outside (every 0.2 s: `/proc/<pid>/status` of it and
of its worker processes (encoder, writer), and every second its `/proc/<pid>/smaps`, to tell the pages of the
engine's memory-mapped shard files apart; `benchmarks.rss_watch`); a sampler inside would stall
while the engine holds the GIL. Reported per scale: wall time from opening the job to indexed and
verified, docs/s overall and per stage, and RSS:

- main process peak (pipeline + engine; `VmHWM`, exact) and its peaks during the load and
  the index phases;
- pipeline RSS incl. engine heap: the main process's peak during the load phase of its anonymous +
  shared-memory pages (every sample) plus its resident pages of files other than the engine's shard
  files (libraries, the model; read with smaps), and the peak of the worker processes' (encoder,
  writer) resident pages counted the same way, summed over them at each sample;
- the engine's heap in the main process (id tracker, in-RAM structures), measured, not assumed: after
  the first run at each scale a fresh bare-store process (`--child-bare`, no source, chunker or
  encoder) loads the same number of points in the same batch size, with the same payload fields, and
  reports how far its resident size (counted the same way) rose above its size before the first
  upsert, at the end of the load and at its peak;
- pipeline RSS excl. engine heap: the figure above minus the engine's heap at the end of the bare
  load (`--no-engine-heap` skips the bare run; the ratio then includes it). The closing lines give,
  per mode, the ratio between the two scales (excl. engine heap, then incl. it) and flag a mode that
  ran different architectures at the two scales (`auto`);
- the engine's share: resident shard-file pages at the end of the load phase, and the index phase's
  peak above the load phase's (HNSW build);
- the HNSW build of each collection: wall and CPU seconds of its `build_index` (the engine's build
  threads included), so the index phase can be read per dim and quantization.

The model is normally `random-1024`: static-retrieval-mrl-en-v1's exact architecture (bert-base-
uncased tokenizer, 30,522 × 1024 table) with random weights; speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.machine import cpu_seconds
from benchmarks.machine import machine_info as shared_machine_info
from benchmarks.memcap import MemoryCap
from benchmarks.rss_watch import Watcher, mapped_mb, own_mb, proc_status
from benchmarks.synth_corpus import BEIR_DIR, TREC_COVID_DOCS, write_corpus

MATRICES = ("published", "default")


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, load average and library versions, without importing the libraries.

    This process stays small on purpose: it shares the machine with the ingest it measures.
    """
    return shared_machine_info(("qdrant-edge-py", "tokenizers", "torch", "numpy", "pyarrow"))


# -- the ingest process --------------------------------------------------------------------------------


def matrix_quantizations(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The default matrix's quantizations from `--quantizations` (None: the ingest's default)."""
    text = getattr(args, "quantizations", None)
    return tuple(q.strip() for q in text.split(",") if q.strip()) if text else None


def _bench_config(args: argparse.Namespace, **extra: Any) -> Any:
    """The ingest configuration of a run: the published (1024-d binary) or the default matrix, recreated;
    with `--ef-construct` (a 1024-d model), every graph built with that ef_construct."""
    from dataclasses import replace

    from ingest.config import DEFAULT_QUANTIZATIONS, build_config, default_matrix

    published = args.matrix == "published"
    float_hnsw = getattr(args, "float_hnsw", False)
    ef_construct = getattr(args, "ef_construct", None)
    chosen = matrix_quantizations(args)
    if ef_construct is not None:
        quantizations = ("binary",) if published else chosen or DEFAULT_QUANTIZATIONS
        matrix = default_matrix(1024, quantizations, float_hnsw=float_hnsw)
        extra["collections"] = [replace(s, hnsw_ef_construct=ef_construct) for s in matrix]
    return build_config(
        None,
        model=args.model,
        data_dir=args.data_dir,
        dims=[1024] if published else None,
        quantizations=["binary"] if published else chosen and list(chosen),
        recreate=True,
        float_hnsw=float_hnsw,
        **extra,
    )


def _emit(event: dict[str, Any]) -> None:
    print("@@" + json.dumps(event, default=str), flush=True)


def child(args: argparse.Namespace) -> None:
    """Run one ingest (in the fresh process the parent started) and print its phases as JSON lines."""
    import resource

    from ingest.memory import peak_rss_mb
    from ingest.pipeline import IngestJob

    cfg = _bench_config(args)
    t0 = time.perf_counter()
    job = IngestJob.open(str(args.corpus), cfg)
    t_open = time.perf_counter()
    _emit(
        {
            "phase": "load",
            "collections": job.names,
            "maxrss_mb": peak_rss_mb(),
            "batch_docs": cfg.batch_docs,
        }
    )
    try:
        workers = job.run_batches(
            progress=False, workers=mode_workers(args.child_mode), writer=args.child_mode != "onewriter"
        )
        t_load = time.perf_counter()
        load_cpu = _cpu(resource.RUSAGE_SELF)
        _emit({"phase": "index"})
        index_per_collection = _time_builds(job.store)
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
            "workers": workers,
            "writer_collections": job.writer_collections,
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
            "index_per_collection": index_per_collection,
            "maxrss_mb": peak_rss_mb(),
        }
    )


def child_bare(args: argparse.Namespace) -> None:
    """Load `args.points` points into bare collections (no source, chunker or encoder) and print figures.

    The engine's share of the main process's heap, measured: the same collections, point count, batch
    size, payload fields (texts taken from the corpus) and flush/trim per batch as the pipeline, with
    one block of random unit vectors reused for every batch. Prints the process's resident MB without
    the shard files (as the watcher counts it) right before the first upsert and at the end.
    """
    import numpy as np
    import pyarrow.parquet as pq

    from ingest.config import resolve_collections
    from ingest.memory import release_freed_memory
    from ingest.records import point_id
    from ingest.stores import open_store
    from ingest.write import slice_vectors

    cfg = _bench_config(args)
    specs = resolve_collections(cfg, args.dim)
    dataset = "bare"
    names = [spec.name(dataset) for spec in specs]
    with pq.ParquetFile(args.child_bare) as parquet:
        texts = [t or " " for t in parquet.read_row_group(0, columns=["text"]).column(0).to_pylist()[:1000]]
    block = np.random.default_rng(0).standard_normal((args.batch_points, args.dim), dtype=np.float32)
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    sliced = slice_vectors(block, {spec.dim for spec in specs})
    pid = os.getpid()
    shard_root = str(cfg.data_dir.resolve() / "qdrant")

    def resident_mb() -> int:
        return own_mb(proc_status(pid), mapped_mb(pid, shard_root)[1])

    store = open_store(data_dir=cfg.data_dir, qdrant_url=None)
    try:
        for spec, name in zip(specs, names, strict=True):
            store.ensure_collection(name, spec, recreate=True, defer_index=True)
        release_freed_memory()
        baseline = resident_mb()
        _emit({"phase": "load", "baseline_mb": baseline})
        done = 0
        while done < args.points:
            k = min(args.batch_points, args.points - done)
            ids = [point_id(dataset, f"d{done + i}", 0) for i in range(k)]
            payloads: list[dict[str, Any]] = []
            for i in range(k):
                text = texts[(done + i) % len(texts)][:2500]
                payload: dict[str, Any] = {
                    "doc_id": f"d{done + i}",
                    "chunk_no": 0,
                    "source": dataset,
                    "char_start": 0,
                    "char_end": len(text),
                }
                if cfg.store_text:
                    payload["text"] = text
                payloads.append(payload)
            for spec, name in zip(specs, names, strict=True):
                store.upsert(name, ids, sliced[spec.dim][:k], payloads)
                store.flush(name)
            del ids, payloads
            release_freed_memory()
            done += k
        _emit({"phase": "done", "baseline_mb": baseline, "end_of_load_mb": resident_mb()})
    finally:
        store.close()


def _time_builds(store: Any) -> dict[str, dict[str, float]]:
    """Time each `store.build_index` call from now on: wall and this process's CPU seconds (the engine's
    build threads included; the encoder workers are idle by then), filled in per collection as it runs."""
    import resource

    timings: dict[str, dict[str, float]] = {}
    build = store.build_index

    def timed(name: str) -> None:
        wall, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
        build(name)
        timings[name] = {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(_cpu(resource.RUSAGE_SELF) - cpu, 1),
        }

    store.build_index = timed
    return timings


def _cpu(who: int) -> float:
    return round(cpu_seconds(who), 1)


def _fresh_dir(data_dir: Path) -> Path:
    """Create `data_dir` anew; return it absolute (/proc/<pid>/smaps names files by absolute path)."""
    data_dir = data_dir.resolve()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    return data_dir


def _start_child(
    child_args: list[str], args: argparse.Namespace, data_dir: Path, cap: MemoryCap | None = None
) -> tuple[subprocess.Popen[str], Watcher]:
    """Start this harness as a child process on `data_dir` (model and matrix from `args`), watched;
    inside the memory cgroup `cap` from its first instruction when given."""
    cmd = [sys.executable, "-m", "benchmarks.scale", *child_args]
    cmd += ["--model", str(args.model_path), "--matrix", args.matrix, "--data-dir", str(data_dir)]
    cmd += ["--float-hnsw"] if args.float_hnsw else []
    cmd += ["--ef-construct", str(args.ef_construct)] if args.ef_construct is not None else []
    cmd += ["--quantizations", args.quantizations] if args.quantizations else []
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        preexec_fn=cap.join if cap is not None else None,
    )
    watcher = Watcher(proc.pid, data_dir / "qdrant")
    watcher.start()
    return proc, watcher


def _events(proc: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    """The child's `@@{json}` events, its other output lines echoed indented."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("@@"):
            yield json.loads(line[2:])
        else:
            print("   | " + line.rstrip())


def run_scale(corpus: Path, mode: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Ingest `corpus` in a fresh process with a fresh data directory; return its figures.

    Args:
        corpus: The Parquet corpus.
        mode: `inprocess` (three threads, no worker), `auto` (the pipeline decides) or a worker count.
        args: The parsed options (model path, matrix).
        data_dir: A data directory to create anew.
    """
    data_dir = _fresh_dir(data_dir)
    load_before = os.getloadavg()
    cap = None
    if args.memory_limit_mb:
        cap = MemoryCap.create(args.memory_limit_mb, f"static-ingest-bench-{os.getpid()}-{mode}")
    started = time.perf_counter()
    proc, watcher = _start_child(["--child", str(corpus), "--child-mode", mode], args, data_dir, cap)
    done: dict[str, Any] = {}
    open_maxrss = 0
    workers_used = 0
    writer_collections: list[str] = []
    batch_docs = 1
    phases: dict[str, float] = {}
    for event in _events(proc):
        phases[event["phase"]] = time.perf_counter() - started
        if event["phase"] == "done":
            done = event
            workers_used = event["workers"]
            writer_collections = event.get("writer_collections") or []
        elif event["phase"] == "load":
            open_maxrss = round(event["maxrss_mb"])
            batch_docs = event["batch_docs"]
            watcher.set_phase("load")
        else:
            watcher.set_phase(event["phase"])
    code = proc.wait()
    watcher.stop()
    capped: dict[str, Any] = {}
    if cap is not None:
        capped = {"limit_mb": cap.limit_mb, "cgroup_peak_mb": cap.peak_mb(), "oom_kills": cap.oom_kills()}
        cap.remove()
    if not args.keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    if code != 0 or not done:
        why = (
            f"; the kernel killed {capped['oom_kills']} process(es) under the cap"
            if capped.get("oom_kills")
            else ""
        )
        raise SystemExit(f"the ingest of {corpus} failed (exit code {code}{why}); see its output above")
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
        "workers_used": workers_used,
        "writer_collections": writer_collections,
        "batch_docs": batch_docs,
        "model_dim": summary["model"].get("dim"),
        "docs": n_docs,
        "chunks": summary["chunks"],
        "collections": summary["points"],
        "verified": summary["verified"],
        "seconds": {k: round(v, 1) for k, v in done["seconds"].items()},
        "process_wall_s": round(time.perf_counter() - started, 1),
        "stage_seconds": stage,
        "cpu_seconds": done["cpu_seconds"],
        "index_per_collection": done.get("index_per_collection", {}),
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
        "memory_cap": capped,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "timeline": watcher.timeline,
    }


def run_bare(
    corpus: Path, points: int, batch_points: int, dim: int, args: argparse.Namespace, data_dir: Path
) -> dict[str, Any]:
    """Measure the engine's heap for `points` points in a fresh bare-store process (see `child_bare`).

    Returns:
        `end_of_load` and `peak`: MB above the process's resident size right before the first upsert
        (shard files excluded, as for the pipeline figure), and the inputs.
    """
    data_dir = _fresh_dir(data_dir)
    proc, watcher = _start_child(
        [
            "--child-bare",
            str(corpus),
            "--points",
            str(points),
            "--batch-points",
            str(batch_points),
            "--dim",
            str(dim),
        ],
        args,
        data_dir,
    )
    done: dict[str, Any] = {}
    for event in _events(proc):
        if event["phase"] == "done":
            done = event
        watcher.set_phase(event["phase"])
    code = proc.wait()
    watcher.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    if code != 0 or not done:
        raise SystemExit(f"the bare-store run of {points} points failed (exit code {code}); see above")
    base = done["baseline_mb"]
    peak = watcher.peaks.get("load", {}).get("rss_minus_shard_files", base)
    return {
        "points": points,
        "batch_points": batch_points,
        "baseline_mb": base,
        "end_of_load": max(done["end_of_load_mb"] - base, 0),
        "peak": max(peak - base, 0),
    }


def add_engine_heap(run: dict[str, Any], engine: dict[str, Any]) -> None:
    """Record the engine's measured heap in `run` and the pipeline figure without it.

    The engine's heap at the end of the bare load (its id tracker and in-RAM structures, which only grow)
    is subtracted from the main process's figure, not its peak: that peak also holds per-update
    transients that need not coincide with the main process's own peak, so the pipeline figure stays
    an upper bound.
    """
    rss = run["rss_mb"]
    rss["engine_heap_end_of_load"] = engine["end_of_load"]
    rss["engine_heap_peak"] = engine["peak"]
    rss["pipeline_main_excl_engine_heap"] = rss["pipeline_main"] - engine["end_of_load"]
    run["engine_heap"] = engine
    run["pipeline_peak_rss_mb_excl_engine_heap"] = (
        rss["pipeline_main_excl_engine_heap"] + rss["encoder_workers_peak"]
    )


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
        f"worker processes {cpu['encoder_workers']}",
        f"   docs/s: {rates}",
        f"   RSS MB main process: peak {rss['main_peak_vmhwm']:,} (open {rss['main_peak_open_phase']:,}, "
        f"load {rss['main_peak_load_phase']:,}, index {rss['main_peak_index_phase']:,})",
        f"   RSS MB pipeline incl. engine heap: main {rss['pipeline_main']:,} (max of open peak, load-phase "
        f"peak of anon + shmem + non-shard file pages {rss['main_load_phase_minus_shard_files']:,}; anon "
        f"{rss['main_anon_peak_load_phase']:,}) + worker processes {rss['encoder_workers_peak']:,} "
        f"= {r['pipeline_peak_rss_mb']:,}",
        f"   RSS MB engine: shard files resident {rss['shard_files_resident_end_of_load']:,} at end of load; "
        f"HNSW build +{rss['engine_index_phase_above_load']:,} above the load phase peak",
        f"   load average before {r['load_average']['before']}, after {r['load_average']['after']}",
    ]
    per = r.get("index_per_collection") or {}
    if per:
        lines.insert(
            -1,
            "   HNSW build per collection, wall / CPU s (CPU: this process, engine threads included): "
            + ", ".join(f"{_short(n)} {t['wall_s']:.1f}/{t['cpu_s']:.1f}" for n, t in per.items()),
        )
    if "engine_heap" in r:
        e = r["engine_heap"]
        lines.insert(
            -1,
            f"   RSS MB engine heap in the main process (bare store, {e['points']:,} points in batches of "
            f"{e['batch_points']:,}, measured in its own process): +{e['end_of_load']:,} at end of load "
            f"(peak +{e['peak']:,}); pipeline excl. engine heap: main "
            f"{rss['pipeline_main_excl_engine_heap']:,} + worker processes {rss['encoder_workers_peak']:,} = "
            f"{r['pipeline_peak_rss_mb_excl_engine_heap']:,}",
        )
    cap = r.get("memory_cap") or {}
    if cap:
        lines.insert(
            -1,
            f"   memory cap {cap['limit_mb']:,} MB (a memory cgroup: process memory + the page cache it "
            f"touches): cgroup peak {_mb(cap['cgroup_peak_mb'])} MB, "
            f"OOM kills {cap['oom_kills']}",
        )
    writer = r.get("writer_collections") or []
    lines.insert(
        2,
        f"   architecture: {_architecture(r['workers_used'])}"
        + (f" + 1 writer process for {', '.join(_short(n) for n in writer)}" if writer else ""),
    )
    return "\n".join(lines)


def _short(name: str) -> str:
    # `corpus-171332-seed0-d1024-binary` -> `d1024-binary`
    return name[name.rfind("-d") + 1 :] if "-d" in name else name


def _mb(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _architecture(workers: int) -> str:
    return "in-process (three threads)" if workers == 0 else f"{workers} encoder worker process(es)"


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


def ratio_line(mode: str, small: dict[str, Any], big: dict[str, Any], results: dict[str, Any]) -> str:
    """The peak-RSS ratio of one mode between the two scales (recorded in `results`), as a line.

    The headline figure excludes the engine's heap when it was measured (see `add_engine_heap`); the
    figure including it follows. `auto` may pick different architectures at the two scales: the line
    then says so, as such a ratio compares two designs rather than the growth of one.
    """
    key = "pipeline_peak_rss_mb_excl_engine_heap"
    excl = key in small and key in big
    lo = small[key] if excl else small["pipeline_peak_rss_mb"]
    hi = big[key] if excl else big["pipeline_peak_rss_mb"]
    ratio = hi / max(lo, 1)
    results.setdefault("pipeline_rss_ratio", {})[mode] = round(ratio, 2)
    incl_ratio = big["pipeline_peak_rss_mb"] / max(small["pipeline_peak_rss_mb"], 1)
    results.setdefault("pipeline_rss_ratio_incl_engine_heap", {})[mode] = round(incl_ratio, 2)
    what = "excl. engine heap" if excl else "incl. engine heap"
    line = (
        f"pipeline peak RSS ({what}), mode {mode}: {lo:,} MB at {small['docs']:,} docs, {hi:,} MB at "
        f"{big['docs']:,} docs: ratio {ratio:.2f}"
    )
    if excl:
        line += (
            f" (incl. engine heap: {small['pipeline_peak_rss_mb']:,} vs {big['pipeline_peak_rss_mb']:,} MB, "
            f"ratio {incl_ratio:.2f})"
        )
    line += (
        f"; main process incl. engine: {small['rss_mb']['main_peak_vmhwm']:,} vs "
        f"{big['rss_mb']['main_peak_vmhwm']:,} MB"
    )
    if small["workers_used"] != big["workers_used"]:
        line += (
            f"\n   NOT like for like: mode {mode} ran {_architecture(small['workers_used'])} at "
            f"{small['docs']:,} docs and {_architecture(big['workers_used'])} at {big['docs']:,}; "
            "compare one architecture with --modes inprocess,1"
        )
    return line


def mode_workers(mode: str) -> int | None:
    """The `workers` argument of `IngestJob.run_batches` for a mode: None (auto), 0 (in-process) or N."""
    if mode in ("auto", "onewriter"):
        return None
    return 0 if mode == "inprocess" else int(mode)


def parse_modes(text: str) -> list[str]:
    """`--modes` as a list: `auto`, `inprocess`, `onewriter` (auto without a writer process) or a
    worker count (≥ 1) each.

    Raises:
        SystemExit: on another value.
    """
    modes = [m.strip() for m in text.split(",") if m.strip()]
    for m in modes:
        if m not in ("auto", "inprocess", "onewriter") and not (m.isdigit() and int(m) >= 1):
            raise SystemExit(f"--modes: {m!r} is not auto, inprocess, onewriter or a worker count >= 1")
    return modes or ["auto"]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=TREC_COVID_DOCS, help="documents (default 171,332)")
    parser.add_argument("--model", default="random-1024", help="model (default random-1024: random weights)")
    parser.add_argument("--matrix", choices=MATRICES, default="published")
    parser.add_argument(
        "--modes",
        default="auto",
        help="comma-separated runs at each scale, side by side: auto (the pipeline's choice), inprocess "
        "(three threads, no worker process), onewriter (auto, but no writer process: this process "
        "writes every collection) or a worker count; default auto",
    )
    parser.add_argument(
        "--no-small", action="store_true", help="skip the runs at docs/10 (and the RSS ratio)"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep each run's data directory")
    parser.add_argument(
        "--no-engine-heap",
        action="store_true",
        help="skip the bare-store run per scale that measures the engine's heap (then the pipeline "
        "figures include it)",
    )
    parser.add_argument(
        "--memory-limit-mb",
        type=int,
        default=0,
        help="run each ingest in a memory cgroup capped at this many MiB (page cache included; needs "
        "permission to create one): shows whether it fits, beside the uncapped RSS figures",
    )
    parser.add_argument(
        "--float-hnsw",
        action="store_true",
        help="default matrix: build HNSW graphs on the float collections too (the ingest's --float-hnsw)",
    )
    parser.add_argument(
        "--ef-construct",
        type=int,
        default=None,
        help="build the graphs with this ef_construct instead of the default 100 (1024-d model): what "
        "a cheaper graph saves (its recall cost: python -m benchmarks.hnsw_params)",
    )
    parser.add_argument(
        "--quantizations",
        default=None,
        help="default matrix: only these quantizations, comma-separated (e.g. none,binary: the 10 "
        "collections issue 14 was filed against; default: the ingest's none,binary,scalar)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("STATIC_INGEST_DATA_DIR", "data"))
    )
    parser.add_argument("--beir-dir", type=Path, default=BEIR_DIR)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--child-bare", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--points", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--batch-points", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        args.corpus = args.child
        child(args)
        return
    if args.child_bare is not None:
        child_bare(args)
        return
    modes = parse_modes(args.modes)

    from ingest.encoder.models import read_marker
    from ingest.encoder.static import resolve_model

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
    float_note = " (float collections with HNSW: --float-hnsw)" if args.float_hnsw else ""
    if args.ef_construct is not None:
        float_note += f" (graphs with ef_construct {args.ef_construct}: --ef-construct)"
    if args.quantizations:
        if args.matrix != "default":
            parser.error("--quantizations applies to --matrix default")
        float_note += f" (quantizations {args.quantizations}: --quantizations)"
    cap_note = f"; memory cap {args.memory_limit_mb:,} MB" if args.memory_limit_mb else ""
    print(f"matrix: {args.matrix}{float_note}; modes: {', '.join(modes)}{cap_note}")
    args.out.mkdir(parents=True, exist_ok=True)
    scales = [args.docs] if args.no_small else [max(1, args.docs // 10), args.docs]
    corpora = {docs: corpus_for(args.out, docs, args.seed, args.beir_dir) for docs in scales}
    print(f"corpus ({args.docs:,} docs): {json.dumps(corpora[args.docs][1])}")
    results: dict[str, Any] = {
        "machine": info,
        "model": str(location.model_id),
        "random_weights": bool(marker.get("random_weights")),
        "matrix": args.matrix,
        "quantizations": args.quantizations,
        "corpus": corpora[args.docs][1],
        "runs": [],
    }
    label = f"{args.matrix} ({args.quantizations})" if args.quantizations else args.matrix
    tag = f"{args.matrix}-{args.quantizations.replace(',', '-')}" if args.quantizations else args.matrix
    for docs in scales:
        for mode in modes:
            print(f"\n== {label}, {docs:,} docs, mode {mode}: a fresh process ...", flush=True)
            run = run_scale(corpora[docs][0], mode, args, args.out / f"data-{tag}-{docs}-{mode}")
            results["runs"].append(run)
            if not args.no_engine_heap:
                same = [r for r in results["runs"][:-1] if r["docs"] == run["docs"] and "engine_heap" in r]
                if same:
                    engine = same[0]["engine_heap"]
                else:
                    batches = -(-run["docs"] // run["batch_docs"])
                    print(f"   (bare store: the engine's heap for {run['chunks']:,} points ...)", flush=True)
                    engine = run_bare(
                        corpora[docs][0],
                        run["chunks"],
                        -(-run["chunks"] // max(batches, 1)),
                        run["model_dim"],
                        args,
                        args.out / f"data-{args.matrix}-{docs}-bare",
                    )
                add_engine_heap(run, engine)
            print(format_run(f"{label} @ {docs:,} docs, mode {mode}", run), flush=True)
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
            print(ratio_line(mode, small, big, results))
    out_file = args.out / f"scale-{tag}-{args.docs}-{'-'.join(modes)}.json"
    out_file.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {out_file}")


if __name__ == "__main__":
    main()
