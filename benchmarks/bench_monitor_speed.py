"""Speed and memory of a full drift report: keelml (profile + tests vs the profile) vs Evidently's DataDriftPreset.

    .venv/bin/python benchmarks/bench_monitor_speed.py               # 1,000,000 reference x 100,000 current rows
    .venv/bin/python benchmarks/bench_monitor_speed.py --quick       # 100,000 x 10,000, results under .work/

Data: 50 numeric columns (normal, lognormal, uniform, integer counts) and 10 categorical columns (3 to 40
levels), seeded; the current window shifts 5 numeric and 2 categorical columns. Both tools read the same
parquet files in their own subprocess (Evidently conflicts with pandas 3, so it runs from a separate venv
that this script builds: ``python -m venv /tmp/evidently-venv && pip install evidently 'pandas<3' pyarrow``).
Time is the drift computation after loading (keelml: sketch the reference per partition, merge, test every
column of the window against the profile; Evidently: ``Report([DataDriftPreset()]).run(current,
reference)``); peak memory is the subprocess's maximum RSS, loading included. Runs alternate
keelml / Evidently; thread counts are fixed to 2.

Part 2 measures a window against a *stored* profile (payload loaded from bytes, no reference rows): the
time for windows of 10k..200k rows against profiles of 100k and 1M reference rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

THREADS = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
os.environ.update(THREADS)

HERE = Path(__file__).resolve().parent
VENV = Path("/tmp/evidently-venv")
DATA = Path("/tmp/keel-monitor-bench")
N_NUM, N_CAT = 50, 10

EVIDENTLY_WORKER = r"""
import json, resource, sys, time
import pandas as pd
from evidently import Dataset, DataDefinition, Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
cats = [c for c in ref.columns if c.startswith("c")]
nums = [c for c in ref.columns if c.startswith("n")]
definition = DataDefinition(numerical_columns=nums, categorical_columns=cats)
start = time.perf_counter()
snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                       Dataset.from_pandas(ref, data_definition=definition))
result = snap.dict()
elapsed = time.perf_counter() - start
drifted = None
for m in result.get("metrics", []):
    if "DriftedColumnsCount" in str(m.get("metric_id", "")):
        drifted = m.get("value", {}).get("count")
print(json.dumps({"seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "drifted": drifted}))
"""


def make_data(n_ref: int, n_cur: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    out = DATA / f"{n_ref}x{n_cur}-rg"
    ref_path, cur_path = out / "reference.parquet", out / "current.parquet"
    if ref_path.exists() and cur_path.exists():
        return ref_path, cur_path
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def table(n: int, shifted: bool) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for i in range(N_NUM):
            s = 0.2 if shifted and i < 5 else 0.0
            kind = i % 4
            if kind == 0:
                cols[f"n{i:02d}"] = rng.normal(s, 1.0, n)
            elif kind == 1:
                cols[f"n{i:02d}"] = rng.lognormal(s, 0.5, n)
            elif kind == 2:
                cols[f"n{i:02d}"] = rng.uniform(s, 1.0 + s, n)
            else:
                cols[f"n{i:02d}"] = rng.poisson(3.0 + 3 * s, n).astype(float)
        for j in range(N_CAT):
            levels = 3 + 4 * j
            p = np.ones(levels) / levels
            if shifted and j < 2:
                p = np.r_[p[0] * 1.5, p[1:]]
                p = p / p.sum()
            cols[f"c{j:02d}"] = rng.choice([f"v{k}" for k in range(levels)], n, p=p)
        return pd.DataFrame(cols)

    # row groups of 250,000 rows: the partitions keelml streams (one huge row group would be decoded whole)
    table(n_ref, False).to_parquet(ref_path, row_group_size=250_000)
    table(n_cur, True).to_parquet(cur_path, row_group_size=250_000)
    return ref_path, cur_path


def keel_worker(ref_path: str, cur_path: str) -> None:
    import pandas as pd
    import pyarrow.parquet  # noqa: F401  (imports before the clock, as Evidently's are)
    import scipy.stats  # noqa: F401

    from keelml.monitor import FeatureDriftConfig, ProfileDrift
    from keelml.monitor.profile import profile_parquet

    cur = pd.read_parquet(cur_path)
    start = time.perf_counter()
    # the reference is read and sketched one row group (250,000 rows) and one column at a time (reading counted)
    prof = profile_parquet(ref_path, sample_size=2000)
    profiled = time.perf_counter()
    det = ProfileDrift(prof, FeatureDriftConfig(correction="benjamini_hochberg", window_size=len(cur)))
    det.update(cur)
    report = det.report()
    elapsed = time.perf_counter() - start
    drifted = sum(f.drift for f in report.features)
    print(json.dumps({"seconds": elapsed, "profile_seconds": profiled - start, "test_seconds": elapsed - (profiled - start),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "drifted": drifted,
                      "partitions": prof.partitions, "payload_kb": len(prof.to_payload()) / 1024}))  # fmt: skip


def window_worker() -> None:
    import numpy as np
    import pandas as pd

    from keelml.monitor import FeatureDriftConfig, ProfileDrift, build_profile
    from keelml.monitor.frame import Frame
    from keelml.monitor.profile import Profile

    rng = np.random.default_rng(1)
    out = []
    for n_ref in (100_000, 1_000_000):
        ref = pd.DataFrame({f"n{i}": rng.normal(size=n_ref) for i in range(10)})
        payload = build_profile(Frame(ref), sample_size=500).to_payload()
        del ref
        for n_win in (10_000, 50_000, 100_000, 200_000):
            win = pd.DataFrame({f"n{i}": rng.normal(size=n_win) for i in range(10)})
            times = []
            for _ in range(3):
                start = time.perf_counter()
                det = ProfileDrift(Profile.from_payload(payload), FeatureDriftConfig(window_size=n_win))
                det.update(win)
                times.append(time.perf_counter() - start)
            out.append({"reference_rows": n_ref, "window_rows": n_win, "seconds": sorted(times)[1]})
    print(json.dumps(out))


def null_check(trials: int) -> None:
    """False alarms of ProfileDrift against *compressed* summaries (the soundness benchmark's profiles are
    small enough to stay exact): 40,000 reference rows in 8 partitions at k = 500, 3 windows of 200 rows."""
    import numpy as np
    import pandas as pd

    from keelml.monitor import FeatureDriftConfig, ProfileDrift, build_profile
    from keelml.monitor.frame import Frame

    def table(rng: np.random.Generator, n: int) -> dict[str, object]:
        return {"x": rng.normal(size=n), "y": rng.exponential(size=n), "c": rng.choice(list("abc"), n)}

    out = {}
    for numeric, categorical in [("ks", "chi2"), ("wasserstein", "hellinger")]:
        alarms, err = 0, 0.0
        for t in range(trials):
            rng = np.random.default_rng([7, 5, t])
            frame = Frame(pd.DataFrame(table(rng, 40_000)))
            profile = build_profile(frame, sample_size=100, partition_rows=5_000, k=500)
            err = max(err, profile.columns["x"].rank_error)
            alarm = False
            for w in range(3):
                cfg = FeatureDriftConfig(numeric=numeric, categorical=categorical, alpha=0.05 / 3,
                                         correction="benjamini_hochberg", n_permutations=200, seed=t * 10 + w)  # fmt: skip
                det = ProfileDrift(profile, cfg)
                det.update(table(rng, 200))
                alarm |= det.report().drift
            alarms += alarm
        out[f"{numeric}/{categorical}"] = {
            "trials": trials,
            "alarm_rate": alarms / trials,
            "max_rank_error": err,
        }
    print(json.dumps(out))


def ensure_venv() -> str | None:
    """Build the Evidently venv if needed; returns the reason it is unusable, or None."""
    py = VENV / "bin" / "python"
    if not py.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if made.returncode:
            return f"python -m venv failed: {made.stderr[-500:]}"
    probe = subprocess.run([str(py), "-c", "import evidently, pyarrow"], capture_output=True, text=True)
    if probe.returncode:
        pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "evidently", "pandas<3", "pyarrow"],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
        if pip.returncode:
            return f"pip install evidently failed: {pip.stderr[-500:]}"
    return None


def run_json(cmd: list[str], timeout: int) -> dict[str, object]:
    env = {**os.environ, **THREADS}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if res.returncode:
        return {"error": res.stderr[-800:]}
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {p: version(p) for p in ("numpy", "pandas", "scipy", "datasketches", "pyarrow")}
    ev = subprocess.run([str(VENV / "bin" / "python"), "-c", "import evidently, pandas; print(evidently.__version__, pandas.__version__)"],
                        capture_output=True, text=True)  # fmt: skip
    if ev.returncode == 0:
        e, p = ev.stdout.split()
        out["evidently"] = e
        out["pandas (evidently venv)"] = p
    out["python"] = platform.python_version()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--worker", choices=["keel", "window"])
    parser.add_argument("--null-check", type=int, metavar="TRIALS", help="only the false-alarm check")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.worker == "keel":
        keel_worker(*args.paths)
        return
    if args.worker == "window":
        window_worker()
        return
    if args.null_check:
        null_check(args.null_check)
        return
    n_ref, n_cur = (100_000, 10_000) if args.quick else (1_000_000, 100_000)
    started = time.time()
    load = os.getloadavg()
    ref_path, cur_path = make_data(n_ref, n_cur)
    problem = ensure_venv()
    runs: list[dict[str, object]] = []
    for r in range(args.repeats):
        keel = run_json(
            [sys.executable, __file__, "--worker", "keel", str(ref_path), str(cur_path)], args.timeout
        )
        runs.append({"tool": "keelml", "repeat": r, **keel})
        print("keelml", keel, flush=True)
        if problem is None:
            ev = run_json(
                [str(VENV / "bin" / "python"), "-c", EVIDENTLY_WORKER, str(ref_path), str(cur_path)],
                args.timeout,
            )
            runs.append({"tool": "evidently", "repeat": r, **ev})
            print("evidently", ev, flush=True)
    if problem is None:  # one more keelml run, so every Evidently run has a keelml run on either side
        keel = run_json(
            [sys.executable, __file__, "--worker", "keel", str(ref_path), str(cur_path)], args.timeout
        )
        runs.append({"tool": "keelml", "repeat": args.repeats, **keel})
        print("keelml", keel, flush=True)
    windows = run_json([sys.executable, __file__, "--worker", "window"], args.timeout)
    write(args, n_ref, n_cur, runs, windows, problem, started, load)


def _num(r: dict[str, object], key: str, digits: int = 2) -> str:
    return f"{float(r[key]):.{digits}f}" if key in r else ""  # type: ignore[arg-type]


def _stats(values: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.median(values)), float(np.quantile(values, 0.9))


def write(args: argparse.Namespace, n_ref: int, n_cur: int, runs: list[dict[str, object]], windows: object,
          problem: str | None, started: float, load: tuple[float, float, float]) -> None:  # fmt: skip
    keel = [r for r in runs if r["tool"] == "keelml" and "error" not in r]
    ev = [r for r in runs if r["tool"] == "evidently" and "error" not in r]
    ratios: dict[str, object] = {}
    if keel and ev:
        # each Evidently run against the keelml runs just before and just after it
        pairs = [(k, e) for k in keel for e in ev if k["repeat"] in (e["repeat"], e["repeat"] + 1)]  # type: ignore[operator]
        speed = [float(e["seconds"]) / float(k["seconds"]) for k, e in pairs]  # type: ignore[arg-type]
        mem = [float(k["peak_rss_mb"]) / float(e["peak_rss_mb"]) for k, e in pairs]  # type: ignore[arg-type]
        ratios = {"speedup_median_p90": _stats(speed), "memory_fraction_median_p90": _stats(mem),
                  "speed_target_met": min(speed) >= 50, "memory_target_met": max(mem) <= 0.2}  # fmt: skip
    cmd = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_monitor_speed.py", *sys.argv[1:]]
    )
    result = {
        "command": cmd, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
                   f"shared with other jobs, load average at start {load[0]:.1f}",
        "versions": versions(), "reference_rows": n_ref, "current_rows": n_cur, "columns": [N_NUM, N_CAT],
        "runs": runs, "ratios": ratios, "evidently_problem": problem, "window_vs_stored_profile": windows,
        "wall_seconds": time.time() - started,
    }  # fmt: skip
    out_dir = HERE / "results" if not args.quick else HERE.parent / ".work"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "monitor_speed.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Monitor speed benchmark: full drift report vs Evidently", "",
        f"{result['date']} · `{cmd}`", "",
        f"- Machine: {result['machine']}",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}",  # type: ignore[attr-defined]
        f"- Data: {N_NUM} numeric + {N_CAT} categorical columns; reference {n_ref:,} rows, current {n_cur:,} rows "
        "(5 numeric and 2 categorical columns shifted); thread counts fixed to 2; runs alternate keelml / Evidently "
        "(keelml, Evidently, keelml, ...: each Evidently run is paired with the keelml run before and after it).",
        "- keelml: `profile_parquet` sketches the reference one row group (250,000 rows) and one column at a "
        "time (sorted-batch quantile summaries, Arrow category counts), merges, then tests every column of the window "
        "against the profile (KS / chi-squared, Benjamini-Hochberg). Evidently: `Report([DataDriftPreset()])`"
        " with its defaults for these sizes (normed Wasserstein for numbers, Jensen-Shannon for categories).",
        "- Evidently's time excludes reading the parquet files; keelml's includes reading the reference, which it "
        "streams one column chunk at a time (never holding it whole). Peak memory is each worker's max RSS.",
        "",
        "| tool | repeat | seconds | of which profile | of which tests | peak RSS (MB) | drifted columns |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['tool']} | {r['repeat']} | error: {str(r['error'])[-200:]!r} | | | | |")
            continue
        cells = [_num(r, k) for k in ("seconds", "profile_seconds", "test_seconds")]
        lines.append(
            f"| {r['tool']} | {r['repeat']} | {' | '.join(cells)} | {_num(r, 'peak_rss_mb', 0)} | {r.get('drifted')} |"
        )
    lines.append("")
    if ratios:
        s, m = ratios["speedup_median_p90"], ratios["memory_fraction_median_p90"]
        lines += [
            f"**Speed-up (Evidently time / keelml time): median {s[0]:.1f}x, p90 {s[1]:.1f}x** "  # type: ignore[index]
            f"(target >= 50x: {'met' if ratios['speed_target_met'] else 'MISSED'}).",
            f"**Peak memory (keelml / Evidently): median {m[0]:.2f}, p90 {m[1]:.2f}** "  # type: ignore[index]
            f"(target <= 0.20: {'met' if ratios['memory_target_met'] else 'MISSED'}).", "",
        ]  # fmt: skip
    elif problem:
        lines += [f"Evidently could not be run: {problem}", ""]
    if isinstance(windows, list):
        lines += ["## A window against a stored profile (time proportional to the window)", "",
                  "Profile payload loaded from bytes (as from the catalog), 10 numeric columns, KS; median of 3.", "",
                  "| reference rows | window rows | seconds | seconds per 100k window rows |", "|---:|---:|---:|---:|"]  # fmt: skip
        for w in windows:
            lines.append(f"| {w['reference_rows']:,} | {w['window_rows']:,} | {w['seconds']:.3f} | "
                         f"{w['seconds'] / w['window_rows'] * 1e5:.3f} |")  # fmt: skip
        lines.append("")
    lines.append("The machine was shared with other jobs during the run; absolute times are noisy, the ratios from "
                 "one interleaved run are the result.")  # fmt: skip
    (out_dir / "monitor_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
