"""Benchmark the feature store: point-in-time retrieval and online lookups.

    .venv/bin/python benchmarks/bench_features.py                 # full size (see results for timing)
    .venv/bin/python benchmarks/bench_features.py --quick         # smoke test, results under .work/
    .venv/bin/python benchmarks/bench_features.py --entities 1000000 --rows 10000000

Point in time: ENTITIES entity rows x 20 features over ROWS feature rows (two views of ROWS/2 rows
and 10 float features each, 100,000 customers, 90 days of events, ttl 7 days). keelml's engine
(``keelml.features.point_in_time``: DuckDB scanning the parquet files in place, ASOF JOIN under
``--memory-limit`` with spilling, output streamed in 100,000-row batches and consumed batch by batch)
is compared with the obvious peer, ``pandas.merge_asof`` (by key, backward, with tolerance), in
alternating fresh child processes pinned to 2 threads. Inputs are parquet files generated once under
benchmarks/.work/; both engines' times include reading them (pandas' read share is reported), and
peak RSS (VmHWM) is the child's. Both results are checked equal on the first 2,000 rows.
Feast is compared in bench_features_feast.py (it needs its own venv).

Online: a workspace with 100,000 entities x 10 features materialized to SQLite (the embedded
default) and to Redis on 127.0.0.1:6379, then ``ws.features.get_online_features`` in-process for 1
and for 100 random entities, interleaved, p50/p99 over many calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "features"
ENV = {"OMP_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2", "TOKIO_WORKER_THREADS": "2"}
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CUSTOMERS = 100_000
TTL = dt.timedelta(days=7)


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_inputs(entities: int, rows: int) -> dict[str, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    paths = {n: WORK / f"{n}-{entities}-{rows}.parquet" for n in ("entities", "v0", "v1")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(7)
    span = 90 * 24 * 3600 * 1_000_000
    start = int(T0.timestamp() * 1_000_000)
    for i in range(2):
        n = rows // 2
        cols: dict[str, Any] = {
            "customer_id": rng.integers(0, CUSTOMERS, n),
            "ts": pa.array(start + rng.integers(0, span, n), pa.int64()).cast(pa.timestamp("us", "UTC")),
        }
        for f in range(10):
            cols[f"f{i * 10 + f}"] = rng.normal(size=n)
        pq.write_table(pa.table(cols), paths[f"v{i}"])
    ent = {
        "customer_id": rng.integers(0, CUSTOMERS, entities),
        "event_time": pa.array(start + rng.integers(0, span, entities), pa.int64()).cast(
            pa.timestamp("us", "UTC")
        ),
    }
    pq.write_table(pa.table(ent), paths["entities"])
    return paths


def child_pit(engine: str, paths: dict[str, str], memory_limit: str) -> dict[str, Any]:
    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    names = [[f"f{i * 10 + f}" for f in range(10)] for i in range(2)]
    import duckdb  # noqa: F401  (imports are not timed)
    import pandas as pd

    from keelml.features import Entity, FeatureView, ParquetFiles, point_in_time

    start = time.perf_counter()
    read_seconds = 0.0
    if engine == "keelml":
        # DuckDB scans the parquet files itself: nothing is loaded into Python first
        customer = Entity("customer", keys=("customer_id",))
        defs = [
            (
                FeatureView(
                    f"v{i}", entity=customer, source="src", timestamp="ts", ttl=TTL, features=tuple(names[i])
                ),
                ParquetFiles((paths[f"v{i}"],)),
                names[i],
            )
            for i in range(2)
        ]
        n, head = 0, None
        spill = str(WORK / "spill")
        for batch in point_in_time(
            ParquetFiles((paths["entities"],)),
            "event_time",
            defs,
            batch_rows=100_000,
            threads=2,
            memory_limit=memory_limit,
            temp_directory=spill,
        ):
            if head is None:
                head = batch.slice(0, 2000).to_pylist()
            n += batch.num_rows
    else:
        rows = pq.read_table(paths["entities"])
        views = [pq.read_table(paths[f"v{i}"]) for i in range(2)]
        read_seconds = time.perf_counter() - start
        left = rows.to_pandas().reset_index(names="__row").sort_values("event_time", kind="stable")
        for i in range(2):
            right = views[i].to_pandas().sort_values("ts", kind="stable")
            left = pd.merge_asof(
                left,
                right,
                left_on="event_time",
                right_on="ts",
                by="customer_id",
                direction="backward",
                allow_exact_matches=True,
                tolerance=pd.Timedelta(TTL),
            ).drop(columns="ts")
        out = left.sort_values("__row").drop(columns="__row")
        n = len(out)
        head = out.head(2000).to_dict("records")
    seconds = time.perf_counter() - start

    def clean(v: Any) -> Any:
        return None if v is None or v != v else round(float(v), 12)

    digest = [[clean(r.get(f"f{j}")) for j in (0, 10)] for r in head or []]
    return {
        "engine": engine,
        "seconds": seconds,
        "read_seconds": read_seconds,
        "peak_mb": peak_mb(),
        "rows": n,
        "head": digest,
    }


def child_online(redis_url: str, lookups: int) -> dict[str, Any]:
    import keelml
    from keelml.features import Entity, FeatureRepo, FeatureView

    rng = np.random.default_rng(3)
    tmp = Path(tempfile.mkdtemp(prefix="keel-bench-"))
    table = pa.table(
        {
            "customer_id": np.arange(CUSTOMERS),
            "ts": pa.array([T0] * CUSTOMERS, pa.timestamp("us", "UTC")),
            **{f"f{i}": rng.normal(size=CUSTOMERS) for i in range(10)},
        }
    )
    customer = Entity("customer", keys=("customer_id",))
    view = FeatureView(
        "v",
        entity=customer,
        source="src",
        timestamp="ts",
        ttl=dt.timedelta(days=3650),
        features=tuple(f"f{i}" for i in range(10)),
    )
    features = list(view.features)
    stores: dict[str, Any] = {}
    setup: dict[str, float] = {}
    for backend, uri in (("sqlite", "sqlite:///.keel/online.db"), ("redis", redis_url)):
        root = tmp / backend
        ws = keelml.Workspace.init(root)
        (root / "keel.toml").write_text(
            (root / "keel.toml").read_text().replace("sqlite:///.keel/online.db", uri)
        )
        ws = keelml.Workspace.open(root)
        ws.datasets.add("src", table, time="ts")
        ws.features.use(FeatureRepo(entities=(customer,), views=(view,)))
        start = time.perf_counter()
        ws.features.materialize(now=T0 + dt.timedelta(days=1))
        setup[backend] = time.perf_counter() - start
        stores[backend] = ws
    now = T0 + dt.timedelta(days=1)
    lat: dict[str, list[float]] = {f"{b}-{k}": [] for b in stores for k in (1, 100)}
    for _ in range(lookups):
        for backend, ws in stores.items():
            for k in (1, 100):
                keys = [{"customer_id": int(c)} for c in rng.integers(0, CUSTOMERS, k)]
                start = time.perf_counter()
                ws.features.get_online_features(keys, features, now=now)
                lat[f"{backend}-{k}"].append((time.perf_counter() - start) * 1000)
    for ws in stores.values():
        ws.features.online.clear("v")
        ws.features.close()
    warm = {k: v[len(v) // 20 :] for k, v in lat.items()}  # first 5% are warm-up
    return {
        "materialize_seconds": setup,
        "latency_ms": {
            k: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "n": len(v)}
            for k, v in warm.items()
        },
    }


def spawn(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, **ENV}
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--entities", type=int, default=1_000_000)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--lookups", type=int, default=2000)
    p.add_argument("--skip-pandas", action="store_true")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument("--child", choices=["keelml", "pandas", "online"])
    p.add_argument("--paths")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB's memory_limit in the keelml child")
    a = p.parse_args()
    if a.child == "online":
        print(json.dumps(child_online(a.redis, a.lookups)))
        return
    if a.child:
        print(json.dumps(child_pit(a.child, json.loads(a.paths), a.memory_limit)))
        return
    if a.quick:
        a.entities, a.rows, a.pairs, a.lookups = 10_000, 100_000, 1, 200
    paths = {k: str(v) for k, v in make_inputs(a.entities, a.rows).items()}
    trials = []
    engines = ["keelml"] if a.skip_pandas else ["keelml", "pandas"]
    for i in range(a.pairs):
        for engine in engines if i % 2 == 0 else engines[::-1]:
            r = spawn(["--child", engine, "--paths", json.dumps(paths), "--memory-limit", a.memory_limit])
            print(f"{engine}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB", file=sys.stderr)
            trials.append(r)
    heads = {t["engine"]: t.pop("head") for t in trials}
    agree = len(set(json.dumps(h, default=str) for h in heads.values())) == 1
    online = spawn(["--child", "online", "--redis", a.redis, "--lookups", str(a.lookups)])
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/bench_features.py", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {m: version(m) for m in ("keelml", "duckdb", "pyarrow", "pandas", "redis", "numpy")},
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "point_in_time": {
            "entities": a.entities,
            "feature_rows": a.rows,
            "features": 20,
            "trials": trials,
            "first_2000_rows_agree": agree,
        },
        "online": online,
    }
    out = (WORK if a.quick else HERE / "results") / "features.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
