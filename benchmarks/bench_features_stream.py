"""Peak memory and time of ``create_training_dataset``: streamed (now) vs the whole result in memory (before).

    .venv/bin/python benchmarks/bench_features_stream.py                      # 1M entity rows, 10M feature rows
    .venv/bin/python benchmarks/bench_features_stream.py --quick              # smoke test

A workspace under benchmarks/.work/features/ holds two feature views as datasets (ROWS/2 rows x 10
float features each, the inputs of bench_features.py); the entity rows (keys, time, a label) are a
Parquet file scanned in place. Each trial runs in a fresh child process and writes a new dataset:

* ``stream``: ``ws.features.create_training_dataset`` (joined batches written to the new version
  one at a time, one commit at the end);
* ``whole``: what ``create_training_dataset`` did before, ``get_historical_features`` (the joined
  table in memory) then ``ws.datasets.add`` of that table.

The two alternate (whole, stream, stream, whole, ...); peak RSS is the child's VmHWM. Results go to
benchmarks/results/features_stream-ENTITIES-MEMORY_LIMIT.json (``--memory-limit``, DuckDB's limit in both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_features import ENV, TTL, WORK, make_inputs, peak_mb  # noqa: E402

FEATURES = [f"f{i}" for i in range(20)]


def repo() -> Any:
    from keelml.features import Entity, FeatureRepo, FeatureView

    customer = Entity("customer", keys=("customer_id",))
    views = tuple(
        FeatureView(
            f"v{i}",
            entity=customer,
            source=f"v{i}",
            timestamp="ts",
            ttl=TTL,
            features=tuple(FEATURES[i * 10 : i * 10 + 10]),
        )
        for i in range(2)
    )
    return FeatureRepo(entities=(customer,), views=views)


def setup(root: Path, paths: dict[str, str]) -> Path:
    """A workspace with the two views as datasets and the entity rows (with a label) as Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import keelml

    rows = root / "entities.parquet"
    if (root / "ready").exists():
        return rows
    shutil.rmtree(root, ignore_errors=True)
    ws = keelml.Workspace.init(root)
    for i in range(2):
        ws.datasets.add(f"v{i}", pq.read_table(paths[f"v{i}"]), time="ts")
    ent = pq.read_table(paths["entities"])
    label = np.random.default_rng(1).integers(0, 2, ent.num_rows)
    pq.write_table(ent.append_column("label", pa.array(label)), rows)
    ws.close()
    (root / "ready").touch()
    return rows


def child(mode: str, root: str, rows: str, name: str, memory_limit: str) -> dict[str, Any]:
    import pyarrow as pa

    import keelml

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    ws = keelml.Workspace.open(root)
    ws.features.use(repo())
    start = time.perf_counter()
    if mode == "stream":
        ref = ws.features.create_training_dataset(
            name, rows, FEATURES, label="label", memory_limit=memory_limit
        )
    else:  # the code of create_training_dataset before streaming (lineage edges left out)
        # get_historical_features(rows, FEATURES), with the same memory_limit
        batches = list(ws.features.iter_historical(rows, FEATURES, memory_limit=memory_limit))
        result = pa.Table.from_batches(batches)
        del batches
        ref = ws.datasets.add(name, result, label="label", time="event_time", source_name="features")
    seconds = time.perf_counter() - start
    out = {"mode": mode, "seconds": seconds, "peak_mb": peak_mb(), "rows": ws.datasets.version(ref).rows}
    out["digest"] = ref.digest
    ws.close()
    return out


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
    p.add_argument("--child", choices=["stream", "whole"])
    p.add_argument("--root")
    p.add_argument("--rows-file")
    p.add_argument("--name")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB's memory_limit in both modes")
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.root, a.rows_file, a.name, a.memory_limit)))
        return
    if a.quick:
        a.entities, a.rows, a.pairs = 10_000, 100_000, 1
    paths = {k: str(v) for k, v in make_inputs(a.entities, a.rows).items()}
    root = WORK / f"ws-stream-{a.entities}-{a.rows}"
    rows = setup(root, paths)
    load = [os.getloadavg()]
    trials = []
    for i in range(a.pairs):
        for mode in ("whole", "stream") if i % 2 == 0 else ("stream", "whole"):
            name = f"train_{mode}_{i}_{int(time.time())}"
            args = ["--child", mode, "--root", str(root), "--rows-file", str(rows), "--name", name]
            r = spawn([*args, "--memory-limit", a.memory_limit])
            print(f"{mode}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB", file=sys.stderr)
            trials.append(r)
            load.append(os.getloadavg())
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/bench_features_stream.py", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {m: version(m) for m in ("keelml", "duckdb", "pyarrow", "deltalake")},
        "python": platform.python_version(),
        "load_average": load,
        "memory_limit": a.memory_limit,
        "entities": a.entities,
        "feature_rows": a.rows,
        "features": len(FEATURES),
        "trials": trials,
        "same_digest": len({t["digest"] for t in trials}) == 1,
    }
    out = (WORK if a.quick else HERE / "results") / f"features_stream-{a.entities}-{a.memory_limit}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
