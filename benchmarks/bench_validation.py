"""Validation of a 1,000,000-row x 30-column version against a stored schema and profile.

    .venv/bin/python benchmarks/bench_validation.py            # about 3-5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_validation.py --quick    # 100,000 rows, results under .work/

A workspace under benchmarks/.work/ gets two versions of a generated dataset (seeded numpy): v1 is
the reference, v2 has new rows with a few injected anomalies (values out of range, an unknown
category, extra missing values). Each trial is a fresh child process (threads pinned to 2) that
opens the workspace and runs one operation on v2; its peak RSS is the child's VmHWM. Operations,
interleaved round by round after one discarded warm-up round:

- ``read``: ``ws.datasets.read("bench@2")``, the whole table in memory (what a naive check loads);
- ``validate``: ``validate_dataset(ws, "bench@2", against="bench@1")`` (the default: duplicates too);
- ``validate_nodup``: the same with ``duplicates=False`` (only per-batch state).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
THREADS = {"OMP_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2", "TOKIO_WORKER_THREADS": "2"}
SEED = 20240601

CHILD = r"""
import json, resource, sys, time
import pyarrow as pa
pa.set_cpu_count(2); pa.set_io_thread_count(2)
import duckdb
from keelml import Workspace
from keelml.data.quality import validate_dataset

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

root, op = sys.argv[1], sys.argv[2]
ws = Workspace.open(root)
idle = hwm()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
cpu0 = cpu()
start = time.perf_counter()
if op == "read":
    rows, extra = ws.datasets.read("bench@2").num_rows, {}
else:
    report = validate_dataset(ws, "bench@2", against="bench@1", duplicates=(op == "validate"))
    rows = report.rows
    extra = {"blocking": sorted({a.kind for a in report.blocking}), "anomalies": len(report.anomalies)}
seconds = time.perf_counter() - start
cpu_seconds = cpu() - cpu0
print(json.dumps({"op": op, "seconds": seconds, "cpu_seconds": cpu_seconds, "rows": rows, "peak_mb": hwm(), "idle_mb": idle, **extra}))
"""


def make_table(rows: int, first_id: int, seed: int, anomalies: bool) -> pa.Table:
    """30 columns: id, 15 float (some 1% null), 7 int, 6 low-cardinality strings, 1 free text."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {"id": pa.array(np.arange(first_id, first_id + rows, dtype=np.int64))}
    for i in range(15):
        nulls = rng.random(rows) < (0.01 if i % 5 == 0 else 0.0)
        values = rng.normal(i, 1 + i, rows)
        if anomalies and i == 1:
            values[rng.random(rows) < 0.02] = 1e6  # 2% out of range: blocking
        if anomalies and i == 2:
            nulls = rng.random(rows) < 0.2  # 20% missing where the reference had none
        cols[f"f{i:02d}"] = pa.array(values, mask=nulls if nulls.any() else None)
    for i in range(7):
        cols[f"i{i:02d}"] = pa.array(rng.integers(0, 10 ** (i + 1), rows))
    for i in range(6):
        vocab = [f"c{i}_{k}" for k in range(3 + 4 * i)]
        if anomalies and i == 0:
            vocab.append("unseen")
        cols[f"c{i:02d}"] = pa.array(vocab).take(rng.integers(0, len(vocab), rows))
    words = pa.array([f"w{k}" for k in range(5_000)])
    offsets = np.concatenate([[0], np.cumsum(rng.integers(6, 16, rows))]).astype(np.int32)
    cols["text"] = pc.binary_join(
        pa.ListArray.from_arrays(offsets, words.take(rng.integers(0, len(words), offsets[-1]))), " "
    )
    return pa.table(cols)


def prepare(root: Path, rows: int) -> None:
    from keelml import Workspace

    if root.exists():
        shutil.rmtree(root)
    ws = Workspace.init(root)
    ws.datasets.add("bench", make_table(rows, 0, SEED, False), id="id")
    ws.datasets.add("bench", make_table(rows, rows, SEED + 1, True), id="id")
    ws.close()


def trial(root: Path, op: str) -> dict[str, Any]:
    env = {**os.environ, **THREADS}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), op], capture_output=True, text=True, env=env, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def stats(values: list[float]) -> dict[str, float]:
    return {
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "min": min(values),
        "max": max(values),
    }


def environment() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "../src"], capture_output=True, text=True, cwd=HERE
    )
    dirty_src = bool(dirty.stdout.strip())
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "git_commit": commit,
        "git_dirty_src": dirty_src,
        "versions": {
            "python": platform.python_version(),
            **{p: version(p) for p in ("keelml", "pyarrow", "deltalake", "duckdb", "numpy", "scipy")},
        },
        "machine": {
            "cpu": next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "threads": {**THREADS, "pyarrow.set_cpu_count": 2, "pyarrow.set_io_thread_count": 2},
    }


def markdown(r: dict[str, Any]) -> str:
    e, m = r["environment"], r["environment"]["machine"]
    lines = [
        "# Validation benchmark",
        f"\n{e['date']} · `{e['command']}` · commit {e['git_commit']}"
        + (" + uncommitted changes under src/" if e.get("git_dirty_src") else "")
        + "\n",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; load average at start "
        + " / ".join(f"{v:.1f}" for v in m["loadavg_start"])
        + " (a shared machine: other engineers' tests ran at the same time)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in e["versions"].items()),
        "- Threads: " + ", ".join(f"{k}={v}" for k, v in e["threads"].items()),
        f"- Data: {r['rows']:,} rows x 30 columns per version (15 float, 7 int, 6 categorical, 1 text, id); "
        f"v2 validated against v1's inferred schema and stored profile. {r['rounds']} interleaved rounds after one "
        "discarded warm-up; each trial a fresh process; seconds exclude start-up, imports and opening the workspace.",
        "",
        "| operation | median wall s | p90 wall s | median CPU s (user + sys) | peak RSS MB median (idle after imports) |",
        "|---|---:|---:|---:|---:|",
    ]
    for op, s in r["summary"].items():
        lines.append(
            f"| {op} | {s['seconds']['median']:.2f} | {s['seconds']['p90']:.2f} | {s['cpu_seconds']['median']:.2f} "
            f"| {s['peak_mb']['median']:.0f} ({s['idle_mb']:.0f}) |"
        )
    v = r["summary"]["validate"]["seconds"]["median"]
    n = r["summary"]["validate_nodup"]["seconds"]["median"]
    c = r["summary"]["validate"]["cpu_seconds"]["median"]
    lines += [
        "",
        f"Target: validation under 10 s: default `validate` **{'met' if v < 10 else 'not met'}** in wall time "
        f"(median {v:.2f} s, p90 {r['summary']['validate']['seconds']['p90']:.2f} s), `validate_nodup` "
        f"**{'met' if n < 10 else 'not met'}** (median {n:.2f} s). The machine was shared (load average above): "
        f"the plain `read` of the same version took {r['summary']['read']['seconds']['median']:.2f} s here. "
        f"CPU time, less sensitive to the other load, is {c:.2f} s for the default validation. "
        "Ratios per round, validate / read: " + ", ".join(f"{x:.2f}" for x in r["ratios"]) + ".",
        "",
        "Memory: `validate_nodup` keeps one batch (a 131,072-row row group) plus per-column counters, so its "
        "peak does not grow with the table; `read` holds the whole table. The default `validate` also keeps "
        "per-row hashes for duplicates, conflicting labels and id uniqueness (8 bytes each for the feature "
        "row, the id and each text column's normalised text, plus the id values: about 33 MB per million rows "
        "here) and, while grouping at the end, sort orders and permuted keys (about 50-90 bytes per row for a "
        "moment): the difference to `validate_nodup` is what that costs at this size; it grows with rows, "
        "not with columns. `--no-duplicates` gives the batch-bounded run. Blocking anomalies found in v2: "
        + ", ".join(r["blocking"])
        + ".",
        "",
    ]
    if r.get("notes"):
        lines += [r["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    rounds = 2 if args.quick else args.rounds
    env = environment()
    root = HERE / ".work" / f"validation_{rows}"
    start = time.perf_counter()
    prepare(root, rows)
    print(f"prepared {rows:,} x 2 versions in {time.perf_counter() - start:.1f} s", flush=True)
    ops = ["read", "validate", "validate_nodup"]
    trials: list[dict[str, Any]] = []
    for round_ in range(rounds + 1):
        order = ops if round_ % 2 == 0 else ops[::-1]
        for op in order:
            t = trial(root, op)
            t["round"] = round_
            print(t, flush=True)
            if round_ > 0:
                trials.append(t)
    summary = {}
    for op in ops:
        mine = [t for t in trials if t["op"] == op]
        summary[op] = {
            "seconds": stats([t["seconds"] for t in mine]),
            "cpu_seconds": stats([t["cpu_seconds"] for t in mine]),
            "peak_mb": stats([t["peak_mb"] for t in mine]),
            "idle_mb": float(np.median([t["idle_mb"] for t in mine])),
        }
    by_round = {(t["round"], t["op"]): t["seconds"] for t in trials}
    ratios = [by_round[(r, "validate")] / by_round[(r, "read")] for r in range(1, rounds + 1)]
    blocking = next(t for t in trials if t["op"] == "validate")["blocking"]
    result = {
        "environment": env,
        "rows": rows,
        "rounds": rounds,
        "trials": trials,
        "summary": summary,
        "ratios": ratios,
        "blocking": blocking,
    }
    out = HERE / (".work" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "validation.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "validation.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
