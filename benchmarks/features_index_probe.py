"""Would a sorted key index per feature-view version make point-in-time retrieval >= 100x Feast? A probe.

Kept to reproduce features-index-probe.json; the design it tested is now keelml.features.keyindex
(`index=True`), measured against Feast by bench_features_feast.py (runs J-K). The probe was an
experiment that measured one candidate design against the engine keelml ships
(DuckDB ASOF JOIN, ``keelml.features.point_in_time``) on the issue's workload (bench_features.make_inputs:
1,000,000 entity rows, two views of 5,000,000 rows x 10 float features, 100,000 customers, ttl 7 days).

The candidate: dataset versions are immutable, so each view version could carry, built once, its rows'
(entity key, event time) packed into one int64 and sorted (stable, so ties keep storage order), plus
the permutation to storage order. Retrieval is then: sort the entity rows' packed keys once,
``searchsorted`` them into each view's keys (latest row at or before T; ties go to the row stored last,
as in keelml's engine), drop matches past the ttl, and gather the feature columns of the matched rows
either from the view's Parquet files (``index``) or from an uncompressed Arrow IPC copy of the features
in storage order, memory-mapped (``index+copy``: more disk, no decoding). The packed key needs
key bits + time-span bits <= 63, checked (a real implementation would fall back to the ASOF JOIN).

Each round runs the three engines in a shuffled order in this one process (2 threads for DuckDB and
Arrow); every candidate's output is compared with the engine's, value for value, null for null.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/features_index_probe.py --rounds 3 --output features-index-probe
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
from bench_features import TTL, WORK, make_inputs

RESULTS = Path(__file__).parent / "results"
NAMES = [[f"f{i * 10 + f}" for f in range(10)] for i in range(2)]
TTL_US = int(TTL.total_seconds() * 1_000_000)


def micros(column: Any) -> np.ndarray:
    return column.cast(pa.timestamp("us", "UTC")).cast(pa.int64()).to_numpy()


def build_index(path: Path, names: list[str], copy: Path | None) -> dict[str, Any]:
    """The one-time cost: packed sorted keys + permutation (+ the uncompressed feature copy)."""
    keys = pq.read_table(path, columns=["customer_id", "ts"])
    customer = keys["customer_id"].to_numpy().astype(np.int64)
    ts = micros(keys["ts"])
    low = int(ts.min())
    bits = (int(ts.max()) - low + 1).bit_length()
    if int(customer.max()).bit_length() + bits > 63 or customer.min() < 0:
        raise SystemExit("packed key does not fit in 63 bits: the index would fall back to the ASOF JOIN")
    packed = (customer << bits) | (ts - low)
    order = np.argsort(packed, kind="stable")
    if copy is not None:
        feather.write_feather(pq.read_table(path, columns=names), copy, compression="uncompressed")
    return {"key": packed[order], "perm": order, "low": low, "bits": bits, "path": path, "copy": copy}


def retrieve(indexes: list[dict[str, Any]], entities: Path, from_copy: bool) -> pa.Table:
    rows = pq.read_table(entities)
    customer = rows["customer_id"].to_numpy().astype(np.int64)
    ts = micros(rows["event_time"])
    out: dict[str, Any] = {"customer_id": rows["customer_id"], "event_time": rows["event_time"]}
    for index, names in zip(indexes, NAMES, strict=True):
        bits, low = index["bits"], index["low"]
        rel = ts - low
        query = (customer << bits) | np.clip(rel, 0, (1 << bits) - 1)
        order = np.argsort(query, kind="stable")  # sorted queries: searchsorted walks forward
        pos = np.empty_like(order)
        pos[order] = np.searchsorted(index["key"], query[order], side="right") - 1
        safe = np.maximum(pos, 0)
        hit = index["key"][safe]
        hit_ts = (hit & ((1 << bits) - 1)) + low
        ok = (pos >= 0) & (rel >= 0) & ((hit >> bits) == customer) & (ts - hit_ts <= TTL_US)
        if from_copy:
            table = feather.read_table(index["copy"], memory_map=True)
        else:
            table = pq.read_table(index["path"], columns=names)
        taken = table.take(pa.array(index["perm"][safe]))
        missing = pa.array(~ok)
        for name in names:
            out[name] = pc.if_else(missing, pa.scalar(None, pa.float64()), taken[name])
    return pa.table(out)


def engine(paths: dict[str, Path]) -> pa.Table:
    from keelml.features import Entity, FeatureView, ParquetFiles, point_in_time

    customer = Entity("customer", keys=("customer_id",))
    views = [
        (
            FeatureView(
                f"v{i}", entity=customer, source="src", timestamp="ts", ttl=TTL, features=tuple(NAMES[i])
            ),
            ParquetFiles((str(paths[f"v{i}"]),)),
            NAMES[i],
        )
        for i in range(2)
    ]
    batches = list(
        point_in_time(
            ParquetFiles((str(paths["entities"]),)), "event_time", views, batch_rows=100_000, threads=2,
            memory_limit="1GB", temp_directory=str(WORK / "spill"),
        )
    )  # fmt: skip
    return pa.Table.from_batches(batches)


def disagreements(got: pa.Table, want: pa.Table) -> int:
    bad = 0
    for name in [n for names in NAMES for n in names]:
        a, b = got[name].combine_chunks(), want[name].combine_chunks()
        same_null = pc.equal(a.is_null(), b.is_null())
        same_value = pc.fill_null(pc.equal(a, b), True)
        bad += len(a) - pc.sum(pc.and_(same_null, same_value).cast(pa.int64())).as_py()
    return bad


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="features-index-probe")
    a = parser.parse_args()
    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    paths = make_inputs(a.entities, a.rows)
    copies = [WORK / f"v{i}-{a.entities}-{a.rows}.copy.arrow" for i in range(2)]
    builds = []
    for i in range(2):
        index, wall, cpu = timed(lambda i=i: build_index(paths[f"v{i}"], NAMES[i], None))
        _, wall_c, cpu_c = timed(lambda i=i: build_index(paths[f"v{i}"], NAMES[i], copies[i]))
        builds.append({"view": f"v{i}", "index_wall_s": wall, "index_cpu_s": cpu,
                       "index_and_copy_wall_s": wall_c, "index_and_copy_cpu_s": cpu_c,
                       "index_mb": (index["key"].nbytes + index["perm"].nbytes) / 2**20,
                       "copy_mb": copies[i].stat().st_size / 2**20})  # fmt: skip
    indexes = [build_index(paths[f"v{i}"], NAMES[i], None) | {"copy": copies[i]} for i in range(2)]
    runs: dict[str, list[dict[str, float]]] = {"engine": [], "index": [], "index+copy": []}
    rng = random.Random(0)
    for r in range(a.rounds):
        order = list(runs)
        rng.shuffle(order)
        outputs = {}
        for name in order:
            fn = {"engine": lambda: engine(paths), "index": lambda: retrieve(indexes, paths["entities"], False),
                  "index+copy": lambda: retrieve(indexes, paths["entities"], True)}[name]  # fmt: skip
            outputs[name], wall, cpu = timed(fn)
            runs[name].append({"round": r, "wall_s": wall, "cpu_s": cpu, "rows": outputs[name].num_rows})
            print(f"round {r} {name:<11} wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)
        for name in ("index", "index+copy"):
            runs[name][-1]["cells_differing_from_engine"] = disagreements(outputs[name], outputs["engine"])
    summary = {}
    for name, trials in runs.items():
        wall = sorted(t["wall_s"] for t in trials)
        summary[name] = {"wall_median_s": statistics.median(wall), "wall_max_s": wall[-1],
                         "cpu_median_s": statistics.median(t["cpu_s"] for t in trials)}  # fmt: skip
    for name in ("index", "index+copy"):
        per_round = [e["wall_s"] / c["wall_s"] for e, c in zip(runs["engine"], runs[name], strict=True)]
        summary[name]["engine_over_this_wall_median"] = statistics.median(per_round)
    result = {
        "command": "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "") + " " + " ".join([sys.executable, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "versions": {"pyarrow": pa.__version__, "numpy": np.__version__},
        "builds": builds, "runs": runs, "summary": summary,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{a.output}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({"builds": builds, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
