"""Key index vs keelml's ASOF JOIN for integer and string entity keys, side by side in one process.

The key index (``keelml.features.keyindex``) packs integer keys as they are and replaces string keys
by their position in the source's sorted distinct keys. This measures what the coding costs: for each
key type, the DuckDB ASOF JOIN (``keelml.features.point_in_time``, what ``index=False`` runs) against a
warm key index (built once, then queried; what every ``index=True`` call after the first runs), in
shuffled interleaved rounds, and the one-off build. Every indexed result is compared with the join's,
value for value. The data: one view of ``--rows`` rows x 10 float features over ``--customers``
customers and 60 days, ttl 7 days, ``--entities`` entity rows; string keys are ``"cust-0000123"``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_features_keys.py --output features-keys
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from keelml.features import Entity, FeatureView, point_in_time
from keelml.features.keyindex import KeyIndex, indexed_point_in_time

RESULTS = Path(__file__).parent / "results"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FEATURES = tuple(f"f{i}" for i in range(10))


def make(rows: int, entities: int, customers: int, seed: int, kind: str) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    span_us = 60 * 86_400 * 1_000_000

    def keys(n: int) -> pa.Array:
        ids = rng.integers(0, customers, n)
        return (
            pa.array(ids, pa.int64())
            if kind == "int64"
            else pa.array(np.char.add("cust-", np.char.zfill(ids.astype(str), 7)))
        )

    t0 = int(T0.timestamp() * 1_000_000)
    source = pa.table({"cid": keys(rows), "ts": pa.array(t0 + rng.integers(0, span_us, rows), pa.timestamp("us", "UTC")),
                       **{f: rng.standard_normal(rows) for f in FEATURES}})  # fmt: skip
    entity = pa.table({"cid": keys(entities), "at": pa.array(t0 + rng.integers(0, span_us, entities), pa.timestamp("us", "UTC"))})  # fmt: skip
    return source, entity


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--entities", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="features-keys")
    args = parser.parse_args()
    pa.set_cpu_count(args.threads)
    view = FeatureView("v", entity=Entity("c", keys=("cid",)), source="s", timestamp="ts",
                       ttl=dt.timedelta(days=7), features=FEATURES)  # fmt: skip
    cols = list(FEATURES)
    data = {kind: make(args.rows, args.entities, args.customers, 0, kind) for kind in ("int64", "string")}
    builds, indexes = {}, {}
    for kind, (source, _) in data.items():
        builds[kind], indexes[kind] = timed(lambda s=source: KeyIndex.build(s, view))

    def join(kind: str) -> pa.Table:
        source, rows = data[kind]
        return pa.Table.from_batches(
            list(point_in_time(rows, "at", [(view, source, cols)], threads=args.threads))
        )

    def lookup(kind: str) -> pa.Table:
        _, rows = data[kind]
        return pa.Table.from_batches(list(indexed_point_in_time(rows, "at", [(view, indexes[kind], cols)])))

    calls = [(kind, engine) for kind in data for engine in ("join", "index")]
    times: dict[str, list[float]] = {f"{k} {e}": [] for k, e in calls}
    rng = random.Random(0)
    for _ in range(args.rounds):
        rng.shuffle(calls)
        results: dict[tuple[str, str], pa.Table] = {}
        for kind, engine in calls:
            seconds, results[(kind, engine)] = timed(
                lambda k=kind, e=engine: (join if e == "join" else lookup)(k)
            )
            times[f"{kind} {engine}"].append(seconds)
        for kind in data:  # every round: the index gives the join's answer
            a, b = results[(kind, "join")], results[(kind, "index")]
            if a.to_pydict() != b.to_pydict():
                raise SystemExit(f"{kind}: the index differs from the join")

    def q(xs: list[float], p: float) -> float:
        return float(np.quantile(xs, p))

    summary: dict[str, Any] = {
        "command": f"OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_features_keys.py --rows {args.rows} "
        f"--entities {args.entities} --customers {args.customers} --rounds {args.rounds} --threads {args.threads} "
        f"--output {args.output}",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "versions": {"duckdb": duckdb.__version__, "pyarrow": pa.__version__},
        "build_s": {k: round(v, 3) for k, v in builds.items()},
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "p90_s": {k: round(q(v, 0.9), 4) for k, v in times.items()},
        "join_over_index": {},
    }
    for kind in data:
        ratios = [j / i for j, i in zip(times[f"{kind} join"], times[f"{kind} index"], strict=True)]
        summary["join_over_index"][kind] = {"median": round(statistics.median(ratios), 2), "p90": round(q(ratios, 0.9), 2),
                                            "min": round(min(ratios), 2)}  # fmt: skip
    index_cost = [s / i for s, i in zip(times["string index"], times["int64 index"], strict=True)]
    summary["string_index_over_int_index"] = {"median": round(statistics.median(index_cost), 2),
                                              "p90": round(q(index_cost, 0.9), 2)}  # fmt: skip
    (RESULTS / f"{args.output}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
