"""Interleaved A/B of two versions of keelml's point-in-time engine (``keelml/features/offline.py``).

    git show REV:src/keelml/features/offline.py > /tmp/offline_old.py
    .venv/bin/python benchmarks/bench_features_ab.py --old /tmp/offline_old.py \\
        --entities 100000 --rows 10000000 --pairs 5

Each trial is a fresh child process that loads the given offline.py as the engine (the rest of
keelml is the working tree's) and streams ``point_in_time`` over the Parquet inputs of
bench_features.py (two views of ROWS/2 rows x 10 float features, 100,000 customers, ttl 7 days),
DuckDB and Arrow pinned to 2 threads. Old and new alternate (old, new, new, old, ...). Reported per
trial: wall seconds, CPU seconds of the process (user + system: less sensitive to other jobs than
wall time on a shared machine), peak RSS, and a checksum of the output that both must share.

    .venv/bin/python benchmarks/bench_features_ab.py --floor --pairs 3 --out benchmarks/results/features_floor.json

measures the floor instead: CPU seconds of decoding, with no join, what any engine must read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_features import ENV, TTL, WORK, make_inputs, peak_mb  # noqa: E402

NEW = HERE.parent / "src" / "keelml" / "features" / "offline.py"


def child(engine: str, paths: dict[str, str]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from keelml.features import Entity, FeatureView, ParquetFiles

    spec = importlib.util.spec_from_file_location("offline_under_test", engine)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    names = [[f"f{i * 10 + f}" for f in range(10)] for i in range(2)]
    customer = Entity("customer", keys=("customer_id",))
    defs = [
        (
            FeatureView(
                f"v{i}", entity=customer, source="s", timestamp="ts", ttl=TTL, features=tuple(names[i])
            ),
            ParquetFiles((paths[f"v{i}"],)),
            names[i],
        )
        for i in range(2)
    ]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    rows, check = 0, 0.0
    for batch in module.point_in_time(
        ParquetFiles((paths["entities"],)),
        "event_time",
        defs,
        threads=2,
        temp_directory=str(WORK / "spill"),
    ):
        rows += batch.num_rows
        check += sum(pc.sum(batch.column(c)).as_py() or 0.0 for c in ("f0", "f10"))
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": peak_mb(),
        "rows": rows,
        "check": round(check, 6),
    }


def child_floor(paths: dict[str, str]) -> dict[str, Any]:
    """CPU seconds of decoding what any engine must read, with no join: the floor under the engine."""
    import duckdb

    names = [[f"f{i * 10 + f}" for f in range(10)] for i in range(2)]
    con = duckdb.connect()
    con.execute("SET threads=2")
    out: dict[str, Any] = {"engine": "floor"}
    queries = {
        # keys, event times and stored positions of both views (what the ASOF join needs)
        "keys_and_times": [
            f"SELECT sum(customer_id), sum(epoch_us(ts)), sum(file_row_number) "
            f"FROM read_parquet('{paths[f'v{i}']}', file_row_number=true)"
            for i in range(2)
        ],
        # the 10 feature columns of one row in 50 per view (what the late fetch decodes)
        "features_sparse": [
            f"SELECT {', '.join(f'sum({c})' for c in names[i])} FROM read_parquet('{paths[f'v{i}']}', "
            "file_row_number=true) WHERE file_row_number % 50 = 0"
            for i in range(2)
        ],
        # every column the join needs, every row, and the entity rows
        "all_needed_columns": [
            f"SELECT sum(customer_id), sum(epoch_us(ts)), {', '.join(f'sum({c})' for c in names[i])} "
            f"FROM read_parquet('{paths[f'v{i}']}')"
            for i in range(2)
        ]
        + [f"SELECT sum(customer_id), sum(epoch_us(event_time)) FROM read_parquet('{paths['entities']}')"],
    }
    for name, sqls in queries.items():
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        for sql in sqls:
            con.sql(sql).fetchall()
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out[name] = {"seconds": time.perf_counter() - start, "cpu_seconds": cpu}
    return out


def spawn(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, **ENV}
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summary(trials: list[dict[str, Any]], key: str) -> dict[str, float]:
    old = [t[key] for t in trials if t["engine"] == "old"]
    new = [t[key] for t in trials if t["engine"] == "new"]
    pairs = sorted(o / n for o, n in zip(old, new, strict=True))
    return {
        "old_median": median(old),
        "new_median": median(new),
        "ratio_median": median(pairs),
        "ratio_p90": pairs[min(len(pairs) - 1, int(0.9 * len(pairs)))],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--old", help="the offline.py to compare against (required)")
    p.add_argument("--new", default=str(NEW))
    p.add_argument("--entities", type=int, default=100_000)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--out", default=str(HERE / "results" / "features_ab.json"))
    p.add_argument("--floor", action="store_true", help="only the decode floor, --pairs times")
    p.add_argument("--child")
    p.add_argument("--paths")
    a = p.parse_args()
    if a.child:
        run = child_floor if a.child == "floor" else lambda paths: child(a.child, paths)
        print(json.dumps(run(json.loads(a.paths))))
        return
    paths = {k: str(v) for k, v in make_inputs(a.entities, a.rows).items()}
    if a.floor:
        floors = [spawn(["--child", "floor", "--paths", json.dumps(paths)]) for _ in range(a.pairs)]
        Path(a.out).write_text(json.dumps({"load_average": os.getloadavg(), "floor": floors}, indent=2))
        print(json.dumps(floors, indent=2))
        return
    if not a.old:
        p.error("--old is required")
    trials: list[dict[str, Any]] = []
    load = [os.getloadavg()]
    for i in range(a.pairs):
        for engine in ("old", "new") if i % 2 == 0 else ("new", "old"):
            r = spawn(["--child", a.old if engine == "old" else a.new, "--paths", json.dumps(paths)])
            r["engine"] = engine
            print(f"{engine}: {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU", file=sys.stderr)
            trials.append(r)
            load.append(os.getloadavg())
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/bench_features_ab.py", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {m: version(m) for m in ("keelml", "duckdb", "pyarrow")},
        "load_average": load,
        "entities": a.entities,
        "feature_rows": a.rows,
        "same_output": len({(t["rows"], t["check"]) for t in trials}) == 1,
        "wall": summary(trials, "seconds"),
        "cpu": summary(trials, "cpu_seconds"),
        "peak_mb": summary(trials, "peak_mb"),
        "trials": trials,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("same_output", "wall", "cpu", "peak_mb")}, indent=2))


if __name__ == "__main__":
    main()
