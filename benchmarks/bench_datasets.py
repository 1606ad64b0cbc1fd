"""Benchmark keelml dataset add / append / diff against plain pyarrow, one fresh process per trial.

    .venv/bin/python benchmarks/bench_datasets.py           # full size: 2.5 min on a quiet 2-core machine
    .venv/bin/python benchmarks/bench_datasets.py --quick   # smoke test, results under .work/

Inputs are generated deterministically (numpy, seeded) under benchmarks/.work/ (gitignored). Each
trial runs in a fresh child with every thread pool pinned to 2 threads; its peak RSS is the child's
VmHWM (see proc_mb). Plain and keelml trials alternate (ABBA) and pair 0 is a discarded warm-up.
Timings exclude interpreter start-up, imports and Workspace.init/open.
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
THREADS = 2
THREAD_ENV = {"OMP_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2", "TOKIO_WORKER_THREADS": "2"}
SEED = 20240501
NEW_IDS = 10**12  # appended rows get ids from here on, so they never clash with a base table
Result = dict[str, Any]
GIT = (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--", "../src"])


@dataclass(frozen=True)
class Sizes:
    rows: int  # base table for add, append and the change-size diff series
    append: int
    pairs: int
    changes: tuple[int, ...]  # rows appended between v1 and v2 of a `rows`-row table
    bases: tuple[int, ...]  # base sizes for a fixed change of changes[1] rows
    reps: int  # diff / full-scan repetitions inside one child


FULL = Sizes(1_000_000, 100_000, 7, (1_000, 10_000, 100_000), (100_000, 1_000_000), 5)
QUICK = Sizes(100_000, 10_000, 2, (100, 1_000, 10_000), (10_000, 100_000), 3)


def make_table(rows: int, first_id: int, seed: int) -> pa.Table:
    """30 columns: id, 15 float (some 1% null), 7 int, 6 low-cardinality strings, 1 free text."""
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {"id": pa.array(np.arange(first_id, first_id + rows, dtype=np.int64))}
    for i in range(15):
        nulls = rng.random(rows) < 0.01 if i % 5 == 0 else None
        cols[f"f{i:02d}"] = pa.array(rng.normal(i, 1 + i, rows), mask=nulls)
    for i in range(7):
        cols[f"i{i:02d}"] = pa.array(rng.integers(0, 10 ** (i + 1), rows))
    for i in range(6):
        vocab = pa.array([f"c{i}_{k}" for k in range(3 + 4 * i)])
        cols[f"c{i:02d}"] = vocab.take(rng.integers(0, len(vocab), rows))
    words = pa.array([f"w{k}" for k in range(5_000)])
    offsets = np.concatenate([[0], np.cumsum(rng.integers(6, 16, rows))]).astype(np.int32)
    text = pa.ListArray.from_arrays(offsets, words.take(rng.integers(0, len(words), offsets[-1])))
    cols["text"] = pc.binary_join(text, " ")
    return pa.table(cols)


def input_file(rows: int, new: bool = False) -> Path:
    """The Parquet input of `rows` rows (base ids 0.., or new ids NEW_IDS..), made once."""
    path = WORK / f"{'extra' if new else 'base'}_{rows}_s{SEED}.parquet"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        table = make_table(rows, NEW_IDS if new else 0, SEED + 1 if new else SEED)
        pq.write_table(table, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return path


# -- child side ---------------------------------------------------------------------------------


def child(spec: Result) -> Result:
    pa.set_cpu_count(THREADS)
    pa.set_io_thread_count(THREADS)
    op = spec["op"]
    if op == "plain":  # the baseline: read the Parquet input, write it to a new file
        t0 = time.perf_counter()
        table = pq.read_table(spec["src"])
        pq.write_table(table, spec["dst"])
        return {"seconds": time.perf_counter() - t0, "rows": table.num_rows}
    if op == "idle_plain":
        return {"seconds": 0.0}
    import keelml  # only keelml children pay for importing it

    if op == "idle_keelml":
        import deltalake  # noqa: F401  (imported lazily by an add)

        return {"seconds": 0.0}
    ws = keelml.Workspace.init(spec["ws"]) if op in ("add", "setup") else keelml.Workspace.open(spec["ws"])
    if op in ("add", "append"):
        t0 = time.perf_counter()
        if op == "add":
            ws.datasets.add("bench", spec["src"], label="c00", id="id")
        else:
            ws.datasets.append("bench", spec["src"])
        return {"seconds": time.perf_counter() - t0, "rows": pq.read_metadata(spec["src"]).num_rows}
    if op == "setup":
        for name, base, extra in spec["datasets"]:
            ws.datasets.add(name, base, label="c00", id="id")
            ws.datasets.append(name, extra)
        return {"seconds": 0.0}
    name, times, out = spec["name"], [], {}
    for _ in range(spec["reps"]):
        t0 = time.perf_counter()
        if op == "diff":
            d = ws.datasets.diff(f"{name}@1", f"{name}@2")
            out = {"files_read": d.files_read, "added": d.added, "removed": d.removed, "changed": d.changed}
        else:  # full scan: read both versions entirely, compare ids with pyarrow
            a, b = ws.datasets.read(f"{name}@1"), ws.datasets.read(f"{name}@2")
            ids_a, ids_b = a["id"].combine_chunks(), b["id"].combine_chunks()
            added = len(ids_b) - pc.sum(pc.is_in(ids_b, value_set=ids_a)).as_py()
            removed = len(ids_a) - pc.sum(pc.is_in(ids_a, value_set=ids_b)).as_py()
            out = {"added": added, "removed": removed}
        times.append(time.perf_counter() - t0)
    if op == "scan":
        from keelml.data import delta

        uri = ws.datasets.dataset(name).table_uri
        versions = [ws.catalog.get_version(name, v).delta_version for v in (1, 2)]
        out["files_read"] = sum(len(delta.files(uri, v)) for v in versions)
    return {"seconds": float(np.median(times)), "all_seconds": times, **out}


# -- parent side --------------------------------------------------------------------------------


def run_child(spec: Result) -> Result:
    """Run one trial in a fresh interpreter with pinned thread pools; return what it printed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(command, env={**os.environ, **THREAD_ENV}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"child {spec['op']} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def proc_mb(file: str, key: str) -> float:
    """A kB field of a /proc file, in MiB. The children's peak RSS is their own VmHWM, not ru_maxrss:
    Linux adds the parent's RSS at fork/exec to a child's ru_maxrss, so every child of this (large)
    parent would report at least the parent's size."""
    fields = Path(file).read_text().split()
    return int(fields[fields.index(f"{key}:") + 1]) / 1024


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def stats(values: list[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def compare(pairs: int, plain: Callable[[], Result], keel: Callable[[], Result]) -> Result:
    trials: dict[str, list[Result]] = {"plain": [], "keelml": []}
    for i in range(pairs + 1):  # pair 0 warms the page cache and is discarded
        order = ("keelml", "plain") if i % 2 else ("plain", "keelml")
        pair = {kind: (plain if kind == "plain" else keel)() for kind in order}
        for position, kind in enumerate(order if i else ()):
            trials[kind].append({**pair[kind], "position": position})
        print(f"  pair {i}: " + ", ".join(f"{k} {pair[k]['seconds']:.2f}s" for k in order), flush=True)
    summary: Result = {}
    for kind, runs in trials.items():
        secs = stats([r["seconds"] for r in runs])
        summary[kind] = {
            "seconds": secs,
            "rows_per_s": runs[0]["rows"] / secs["median"],
            "peak_rss_mb": stats([r["peak_rss_mb"] for r in runs]),
            "output_mb": runs[0]["output_mb"],
            "trials": runs,
        }
    ratios = [k["seconds"] / p["seconds"] for p, k in zip(trials["plain"], trials["keelml"], strict=True)]
    summary["ratio"] = {**stats(ratios), "per_pair": ratios}
    return summary


def bench_write(s: Sizes, op: str) -> Result:
    """Plain pyarrow read + write of the input vs ws.datasets.add (fresh) / append (to `s.rows` rows)."""
    src = input_file(s.rows) if op == "add" else input_file(s.append, new=True)
    out, ws, pristine = WORK / "plain_out.parquet", WORK / f"ws_{op}", WORK / f"ws_{op}.pristine"
    for path in (ws, pristine):
        shutil.rmtree(path, ignore_errors=True)
    if op == "append":  # one base dataset, restored before every trial at the same (absolute) path
        run_child({"op": "add", "src": str(input_file(s.rows)), "ws": str(ws)})
        shutil.move(ws, pristine)

    def plain() -> Result:
        out.unlink(missing_ok=True)
        return {**run_child({"op": "plain", "src": str(src), "dst": str(out)}), "output_mb": size_mb(out)}

    def keel() -> Result:
        shutil.rmtree(ws, ignore_errors=True)
        if op == "append":
            shutil.copytree(pristine, ws)
        before = size_mb(ws) if ws.exists() else 0.0
        result = run_child({"op": op, "src": str(src), "ws": str(ws)})
        return {**result, "output_mb": size_mb(ws) - before}

    return compare(s.pairs, plain, keel)


def bench_diff(s: Sizes) -> list[Result]:
    cases = sorted({(s.rows, c) for c in s.changes} | {(b, s.changes[1]) for b in s.bases})
    ws = WORK / "ws_diff"
    shutil.rmtree(ws, ignore_errors=True)
    datasets = [(f"d{b}_{c}", str(input_file(b)), str(input_file(c, new=True))) for b, c in cases]
    run_child({"op": "setup", "ws": str(ws), "datasets": datasets})
    rows = []
    for (base, change), (name, _, _) in zip(cases, datasets, strict=True):
        spec = {"ws": str(ws), "name": name, "reps": s.reps}
        diff, scan = run_child({**spec, "op": "diff"}), run_child({**spec, "op": "scan"})
        assert diff["added"] == scan["added"] == change, (diff, scan)
        rows.append({"base_rows": base, "change_rows": change, "diff": diff, "full_scan": scan})
        print(f"  base {base:,} +{change:,}: diff {diff['seconds']:.3f}s, full scan {scan['seconds']:.3f}s")
    return rows


def environment() -> Result:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    git = [subprocess.run(["git", *a], capture_output=True, text=True, cwd=HERE).stdout.strip() for a in GIT]
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "git_commit": git[0] or None,
        "git_dirty_src": bool(git[1]),  # uncommitted changes under src/ were benchmarked
        "versions": {
            "python": platform.python_version(),
            **{pkg: version(pkg) for pkg in ("keelml", "pyarrow", "deltalake", "duckdb", "numpy")},
        },
        "machine": {
            "cpu": next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"),
            "cores": os.cpu_count(),
            "ram_gb": round(proc_mb("/proc/meminfo", "MemTotal") / 1024, 1),
            "platform": platform.platform(),
        },
        "threads": {**THREAD_ENV, "pyarrow.set_cpu_count": THREADS, "pyarrow.set_io_thread_count": THREADS},
    }


def fmt(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def markdown(r: Result) -> str:
    e, s, m = r["environment"], r["sizes"], r["environment"]["machine"]
    idle = ", ".join(f"{k} {v:.0f} MB" for k, v in r["idle_rss_mb"].items())
    lines = [
        "# keelml dataset benchmark",
        f"\n{e['date']} · `{e['command']}` · commit {e['git_commit']}"
        + (" + uncommitted changes under src/" if e["git_dirty_src"] else "")
        + f" · load average (1/5/15 min) at start {fmt(r['loadavg_start'])}, at end {fmt(r['loadavg_end'])}\n",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['platform']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in e["versions"].items()),
        "- Threads: " + ", ".join(f"{k}={v}" for k, v in e["threads"].items()),
        "- Each trial is a fresh process; plain and keelml alternate (ABBA) after one discarded warm-up"
        " pair. Seconds exclude interpreter start-up, imports and Workspace.init/open. Peak RSS is the"
        f" child's VmHWM, imports included (idle children: {idle}). p90 interpolates linearly.",
    ]
    if max(r["loadavg_start"][0], r["loadavg_end"][0]) > 1:
        lines.append(
            "\n**Warning: other processes loaded the machine during this run (see the load average);"
        )
        lines[-1] += " absolute times are inflated and noisy, per-pair ratios less so.**"
    for op, rows in (("add", s["rows"]), ("append", s["append"])):
        what = "Add + profile" if op == "add" else f"Append to a {s['rows']:,}-row dataset"
        lines += [
            f"\n## {what}: {rows:,} rows x 30 columns, {s['pairs']} pairs\n",
            "| op | median s | p90 s | rows/s | peak RSS MB median / p90 | MB written |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind, label in (("plain", "pyarrow read_table + write_table"), ("keelml", f"ws.datasets.{op}")):
            k, t, rss = r[op][kind], r[op][kind]["seconds"], r[op][kind]["peak_rss_mb"]
            lines.append(
                f"| {label} | {t['median']:.2f} | {t['p90']:.2f} | {k['rows_per_s']:,.0f} "
                f"| {rss['median']:.0f} / {rss['p90']:.0f} | {k['output_mb']:.0f} |"
            )
        q = r[op]["ratio"]
        met = "met" if q["p90"] <= 2 else ("met at the median only" if q["median"] <= 2 else "not met")
        lines += [
            f"| **ratio keelml / plain, per pair** | **{q['median']:.2f}x** | **{q['p90']:.2f}x** | | | |",
            f"\nPer-pair ratios: {', '.join(f'{x:.2f}' for x in q['per_pair'])}. Target <= 2x: **{met}**.",
        ]
    lines += [
        f"\n## Diff v1 -> v2 where v2 appended the change (median of {s['reps']} runs per process)\n",
        "Full scan = read both versions entirely and compare ids with pyarrow.compute.is_in.\n",
        "| base rows | change rows | diff s | files read | full scan s | files read | peak MB diff / scan |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in r["diff"]:
        a, b = d["diff"], d["full_scan"]
        lines.append(
            f"| {d['base_rows']:,} | {d['change_rows']:,} | {a['seconds']:.3f} | {a['files_read']} "
            f"| {b['seconds']:.3f} | {b['files_read']} | {a['peak_rss_mb']:.0f} / {b['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines) + f"\n\nTotal benchmark time: {r['total_seconds']:.0f} s.\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 pairs, results under .work/")
    parser.add_argument("--pairs", type=int, help="override the number of measured pairs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(json.loads(args.child))
        print(json.dumps({**result, "peak_rss_mb": proc_mb("/proc/self/status", "VmHWM")}))
        return
    sizes = QUICK if args.quick else FULL
    if args.pairs:
        sizes = Sizes(**{**asdict(sizes), "pairs": args.pairs})
    started = time.perf_counter()
    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}; other work on the machine skews timings")
    results: Result = {"environment": environment(), "sizes": asdict(sizes), "loadavg_start": os.getloadavg()}
    results["idle_rss_mb"] = {k: run_child({"op": f"idle_{k}"})["peak_rss_mb"] for k in ("plain", "keelml")}
    for op in ("add", "append", "diff"):
        print(op, flush=True)
        results[op] = bench_diff(sizes) if op == "diff" else bench_write(sizes, op)
    results["total_seconds"], results["loadavg_end"] = time.perf_counter() - started, os.getloadavg()
    out = WORK if args.quick else HERE / "results"
    stem = "datasets-quick" if args.quick else "datasets"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(results))
    print(f"wrote {out / stem}.md and .json in {results['total_seconds']:.0f}s")


if __name__ == "__main__":
    main()
