"""keelml's feature store side by side with Feast (file offline store, SQLite online store).

    .venv/bin/python benchmarks/bench_features_feast.py                  # writes results/features_feast.*
    .venv/bin/python benchmarks/bench_features_feast.py --quick          # smoke test, under .work/

Feast conflicts with pandas 3, so it runs in its own venv, built here if missing:
``python -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install feast==0.67.0 'pandas<3'``. Every engine runs in
fresh child processes (keelml in .venv, Feast in the Feast venv), pinned to 2 threads.

Offline: the same generated parquet files (bench_features.make_inputs: two views of ROWS/2 rows x
10 float features, 100,000 customers, ttl 7 days) and entity rows go through Feast's
``get_historical_features(...).to_df()`` and keelml's ``point_in_time`` (DuckDB scanning the files),
alternating or in ``--sequence`` order; outputs are compared value by value on (customer_id,
event_time). Each child runs under run_guard.py's watchdog: CPU time (all threads and descendants),
peak RSS of its process tree, load average; killed past ``--max-rss-gb``/``--max-minutes`` or when
MemAvailable falls under ``--min-available-gb``, and then recorded as what it reached. keelml also
runs alone at ``--full-entities`` (0 skips). ``--feast-chunk N`` makes Feast one call per N entity
rows (one call does not fit at 1M). The issue's scale, side by side:

    .venv/bin/python benchmarks/bench_features_feast.py --entities 1000000 --rows 10000000 \
        --sequence keelml,feast,keelml --full-entities 0 --skip online --json features_feast_1m.json

Online: 100,000 customers x 10 float features materialized to Feast's SQLite online store and to
keelml's; two long-lived children then take turns (blocks of lookups, alternating) of
``get_online_features`` for 1 and for 100 random entities; p50/p99 per engine.
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
import tempfile
import time
from pathlib import Path
from typing import Any

from run_guard import last_json_line, run_guarded

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "features"
FEAST_VENV = Path("/tmp/feast-venv")
FEAST_PY = FEAST_VENV / "bin" / "python"
ENV = {"OMP_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2", "TOKIO_WORKER_THREADS": "2", "PYTHONHASHSEED": "0"}
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
TTL = dt.timedelta(days=7)
FEATURES = [[f"f{i * 10 + f}" for f in range(10)] for i in range(2)]


def proc_mb(key: str = "VmHWM") -> float:
    """A memory line of /proc/self/status in MB: VmHWM (peak RSS) or VmRSS (now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- Feast (runs in the Feast venv) ---------------------------------------------------------------


def feast_repo(root: Path, views: dict[str, str]) -> Any:
    """A Feast repo under ``root``: entity customer, one FeatureView per parquet file, applied."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        "project: bench\n"
        f"registry: {root / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n  type: sqlite\n  path: {root / 'online.db'}\n"
        "offline_store:\n  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    objects: list[Any] = [customer]
    for name, (path, feats, ttl_days) in views.items():  # type: ignore[misc]
        objects.append(
            FeatureView(
                name=name,
                entities=[customer],
                ttl=dt.timedelta(days=ttl_days),
                schema=[Field(name=f, dtype=Float64) for f in feats],
                source=FileSource(path=path, timestamp_field="ts"),
                online=True,
            )
        )
    store = FeatureStore(repo_path=str(root))
    store.apply(objects)
    return store


def child_feast_offline(paths: dict[str, str], out: str, chunk: int) -> dict[str, Any]:
    """One get_historical_features call, or one per ``chunk`` entity rows (a user's workaround)."""
    import pandas as pd
    import pyarrow.parquet as pq

    root = Path(tempfile.mkdtemp(prefix="feast-off-"))
    views = {f"v{i}": (paths[f"v{i}"], FEATURES[i], TTL.days) for i in range(2)}
    store = feast_repo(root, views)  # type: ignore[arg-type]
    entity_df = pq.read_table(paths["entities"]).to_pandas()
    before = proc_mb("VmRSS")
    start, cpu0 = time.perf_counter(), time.process_time()
    refs, step = [f"v{i}:{f}" for i in range(2) for f in FEATURES[i]], chunk or len(entity_df)
    parts = [
        store.get_historical_features(entity_df=entity_df.iloc[i : i + step], features=refs).to_df()
        for i in range(0, len(entity_df), step)
    ]
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    df[["customer_id", "event_time", "f0", "f10"]].to_parquet(out)
    return {
        "engine": "feast",
        "calls": len(parts),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": proc_mb(),
        "rss_before_mb": before,
        "rows": len(df),
    }


def child_feast_online(path: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="feast-on-"))
    store = feast_repo(root, {"v": (path, [f"f{i}" for i in range(10)], 3650)})  # type: ignore[dict-item]
    start = time.perf_counter()
    store.materialize(start_date=T0 - dt.timedelta(days=1), end_date=T0 + dt.timedelta(days=1))
    setup = time.perf_counter() - start
    refs = [f"v:f{i}" for i in range(10)]

    def lookup(keys: list[int]) -> list[dict[str, Any]]:
        got = store.get_online_features(
            features=refs, entity_rows=[{"customer_id": k} for k in keys]
        ).to_dict()
        return [{f"f{i}": got[f"f{i}"][j] for i in range(10)} for j in range(len(keys))]

    serve(lookup, setup)


# -- keelml (runs in .venv) -----------------------------------------------------------------------


def bench_views() -> list[Any]:
    """The two feature views of the workload, with Arrow held to this machine's 2 threads."""
    import pyarrow as pa

    from keelml.features import Entity, FeatureView

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    customer = Entity("customer", keys=("customer_id",))
    return [
        FeatureView(
            f"v{i}", entity=customer, source="s", timestamp="ts", ttl=TTL, features=tuple(FEATURES[i])
        )
        for i in range(2)
    ]


def drain(batches: Any, out: str, start: float, cpu0: float) -> tuple[int, float, float]:
    """Consume a retrieval's batches (the timed part ends with the last); rows, wall s, CPU s.

    With ``out``, a few columns are kept and written afterwards for the agreement check."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, kept = 0, []
    for batch in batches:
        n += batch.num_rows
        if out:
            kept.append(batch.select(["customer_id", "event_time", "f0", "f10"]))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    if out:
        pq.write_table(pa.Table.from_batches(kept), out)
    return n, seconds, cpu


def child_keelml_offline(paths: dict[str, str], out: str, memory_limit: str) -> dict[str, Any]:
    from keelml.features import ParquetFiles, point_in_time

    defs = [(view, ParquetFiles((paths[f"v{i}"],)), FEATURES[i]) for i, view in enumerate(bench_views())]
    before = proc_mb("VmRSS")
    start, cpu0 = time.perf_counter(), time.process_time()
    batches = point_in_time(
        ParquetFiles((paths["entities"],)),
        "event_time",
        defs,
        threads=2,
        memory_limit=memory_limit,
        temp_directory=str(WORK / "spill"),
    )
    n, seconds, cpu = drain(batches, out, start, cpu0)
    return {
        "engine": "keelml",
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": proc_mb(),
        "rss_before_mb": before,
        "rows": n,
    }


def child_keelml_online(path: str) -> None:
    import pyarrow.parquet as pq

    import keelml
    from keelml.features import Entity, FeatureRepo, FeatureView

    root = Path(tempfile.mkdtemp(prefix="keel-on-")) / "ws"
    ws = keelml.Workspace.init(root)
    ws.datasets.add("src", pq.read_table(path), time="ts")
    customer = Entity("customer", keys=("customer_id",))
    feats = tuple(f"f{i}" for i in range(10))
    view = FeatureView(
        "v", entity=customer, source="src", timestamp="ts", ttl=dt.timedelta(days=3650), features=feats
    )
    ws.features.use(FeatureRepo(entities=(customer,), views=(view,)))
    now = T0 + dt.timedelta(days=1)
    start = time.perf_counter()
    ws.features.materialize(now=now)
    setup = time.perf_counter() - start

    def lookup(keys: list[int]) -> list[dict[str, Any]]:
        rows = ws.features.get_online_features([{"customer_id": k} for k in keys], list(feats), now=now).rows
        return [{f: r[f] for f in feats} for r in rows]

    serve(lookup, setup)


def serve(lookup: Any, setup: float) -> None:
    """Answer blocks of lookups read from stdin: ``K N SEED`` -> latencies (ms) as one JSON line."""
    import random

    print(
        json.dumps({"ready": True, "materialize_seconds": setup, "probe": lookup([0, 1, 99_999])}), flush=True
    )
    for line in sys.stdin:
        k, n, seed = (int(x) for x in line.split())
        rng = random.Random(seed)
        lat = []
        for _ in range(n):
            keys = [rng.randrange(100_000) for _ in range(k)]
            start = time.perf_counter()
            lookup(keys)
            lat.append((time.perf_counter() - start) * 1000)
        print(json.dumps(lat), flush=True)


# -- parent ---------------------------------------------------------------------------------------


def child_keelml_index_offline(paths: dict[str, str], out: str) -> dict[str, Any]:
    """keelml through its sorted key indexes (keelml.features.keyindex), saved under WORK/index.

    The first call after the parent clears WORK/index builds and saves them (``build_seconds``, not in
    ``seconds``); later calls load the saved ones. ``seconds`` is the lookup from reading the entity rows
    to the joined table, as for the other engines.
    """
    import pyarrow.parquet as pq

    from keelml.features.keyindex import KeyIndex, indexed_point_in_time

    views = bench_views()
    before = proc_mb("VmRSS")
    build_start, build_cpu0 = time.perf_counter(), time.process_time()
    built = False
    for i, view in enumerate(views):
        folder = WORK / "index" / f"v{i}"
        if KeyIndex.load(folder) is None:
            columns = ["customer_id", "ts", *FEATURES[i]]
            index = KeyIndex.build(pq.read_table(paths[f"v{i}"], columns=columns), view)
            assert index is not None, "the benchmark's keys and times fit the packed key"
            index.save(folder)
            built = True
    build_seconds, build_cpu = time.perf_counter() - build_start, time.process_time() - build_cpu0
    start, cpu0 = time.perf_counter(), time.process_time()
    indexes = [KeyIndex.load(WORK / "index" / f"v{i}") for i in range(2)]
    rows = pq.read_table(paths["entities"])
    defs = [
        (v, ix, FEATURES[i]) for i, (v, ix) in enumerate(zip(views, indexes, strict=True)) if ix is not None
    ]
    n, seconds, cpu = drain(indexed_point_in_time(rows, "event_time", defs), out, start, cpu0)
    return {
        "engine": "keelml-index",
        "seconds": seconds,
        "cpu_seconds": cpu,
        "built_index": built,
        "build_seconds": build_seconds if built else 0.0,
        "build_cpu_seconds": build_cpu if built else 0.0,
        "peak_mb": proc_mb(),
        "rss_before_mb": before,
        "rows": n,
    }


def ensure_feast() -> str:
    """Build the Feast venv if it is missing; Feast's version."""
    if not FEAST_PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
        subprocess.run([str(FEAST_PY), "-m", "pip", "install", "-q", "feast==0.67.0", "pandas<3"], check=True)
    code = (
        "import feast, pandas, dask, pyarrow as p; print(*(m.__version__ for m in (feast, pandas, dask, p)))"
    )
    done = subprocess.run(
        [str(FEAST_PY), "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def agreement(a: str, b: str) -> dict[str, Any]:
    """Compare two outputs on (customer_id, event_time): rows, and values of f0 and f10."""
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    for df in (x, y):
        df["event_time"] = pd.to_datetime(df["event_time"], utc=True).astype("datetime64[us, UTC]")
    m = x.merge(y, on=["customer_id", "event_time"], suffixes=("_a", "_b"))
    diff = 0
    for f in ("f0", "f10"):
        left, right = m[f"{f}_a"], m[f"{f}_b"]
        diff += int(((left.isna() != right.isna()) | ((left - right).abs() > 1e-9)).sum())
    return {"rows_a": len(x), "rows_b": len(y), "matched": len(m), "differing_values": diff}


def trial(engine: str, paths: dict[str, str], out: str, a: argparse.Namespace, tag: str) -> dict[str, Any]:
    """One engine in a fresh child under the watchdog; a kill is recorded as the trial's outcome."""
    if out:
        Path(out).unlink(missing_ok=True)
    python = str(FEAST_PY) if engine == "feast" else sys.executable
    args = [python, __file__, "--child", f"{engine}-offline", "--paths", json.dumps(paths), "--out", out]
    args += (
        ["--memory-limit", a.memory_limit] if engine == "keelml" else ["--feast-chunk", str(a.feast_chunk)]
    )
    if engine == "keelml-index-cold":  # this trial builds the index: none may be left from before
        shutil.rmtree(WORK / "index", ignore_errors=True)
        args[3] = "keelml-index-offline"
    g = run_guarded(
        args,
        env={**os.environ, **ENV},
        log_prefix=WORK / f"{tag}-{engine}",
        max_rss_gb=a.max_rss_gb,
        max_minutes=a.max_minutes,
        min_available_gb=a.min_available_gb,
    )
    line = last_json_line(g.stdout) if g.returncode == 0 else None
    r: dict[str, Any] = {"engine": engine, "completed": line is not None, **json.loads(line or "{}")}
    r["guard"] = g.as_dict()
    if line is None and g.killed is None:
        r["error"] = Path(g.stderr).read_text()[-3000:]
    done = f"{r['seconds']:.2f} s (timed part)" if line else f"NOT COMPLETED (killed: {g.killed})"
    print(
        f"{tag} {engine}: {done}; child wall {g.wall_seconds:.1f} s (stopped {g.stopped_seconds:.0f} s), "
        f"CPU {g.cpu_seconds:.1f} s, peak tree RSS {g.peak_tree_rss_mb:.0f} MB, load {g.load_start[0]:.1f}",
        file=sys.stderr,
        flush=True,
    )
    return r


def ratios(trials: list[dict[str, Any]], engine: str = "keelml") -> dict[str, Any]:
    """Feast over ``engine`` for each completed Feast run and each completed ``engine`` run next to it
    (with more engines in the sequence: every completed run of ``engine`` against every Feast run)."""
    import numpy as np

    adjacent = [
        (t, trials[k])
        for j, t in enumerate(trials)
        for k in (j - 1, j + 1)
        if t["engine"] == "feast" and 0 <= k < len(trials) and trials[k]["engine"] == engine
        if t["completed"] and trials[k]["completed"]
    ]
    everyone = [
        (f, k)
        for f in trials
        for k in trials
        if f["engine"] == "feast" and k["engine"] == engine and f["completed"] and k["completed"]
    ]
    pairs = adjacent if len({t["engine"] for t in trials}) <= 2 else everyone
    out: dict[str, Any] = {}
    for name, get in (
        ("timed_wall", lambda r: r["seconds"]),
        ("timed_cpu", lambda r: r["cpu_seconds"]),
        ("child_cpu", lambda r: r["guard"]["cpu_seconds"]),
    ):
        v = [get(f) / get(k) for f, k in pairs]
        out[name] = {"n": len(v), "each": v, "median": float(np.median(v)) if v else None}
        out[name]["p90"] = float(np.percentile(v, 90)) if v else None
    return out


def offline(a: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from bench_features import make_inputs

    small = {k: str(v) for k, v in make_inputs(a.entities, a.rows).items()}
    if a.sequence:
        sequence = a.sequence.split(",")
    else:  # alternating pairs, as in runs D and E
        sequence = [
            e for i in range(a.pairs) for e in (("feast", "keelml") if i % 2 == 0 else ("keelml", "feast"))
        ]
    trials: list[dict[str, Any]] = []
    outs = {e: str(WORK / f"pit-{e}.parquet") for e in ("feast", "keelml", "keelml-index")}
    outs["keelml-index-cold"] = outs["keelml-index"]
    for i, engine in enumerate(sequence):
        r = trial(engine, small, outs[engine], a, f"{a.entities}x{a.rows}-{i}")
        r["position"] = i
        trials.append(r)
        (WORK / "offline-trials.json").write_text(json.dumps(trials, indent=2))  # survives a crash
    full: list[dict[str, Any]] = []
    if a.full_entities:
        big = {k: str(v) for k, v in make_inputs(a.full_entities, a.full_rows).items()}
        for i in range(a.full_trials):
            full.append(trial("keelml", big, "", a, f"full-{i}"))
    both = all(Path(outs[e]).exists() for e in ("feast", "keelml"))
    feast_s = [t["seconds"] for t in trials if t["engine"] == "feast" and t["completed"]]
    first_calls = [  # a cold keelml-index call: building the index, then the lookup
        {"build_seconds": t["build_seconds"], "lookup_seconds": t["seconds"],
         "total_seconds": t["build_seconds"] + t["seconds"],
         "feast_over_total": [f / (t["build_seconds"] + t["seconds"]) for f in feast_s]}
        for t in trials if t["engine"] == "keelml-index" and t["completed"] and t.get("built_index")
    ]  # fmt: skip
    return {
        "entities": a.entities,
        "feature_rows": a.rows,
        "sequence": sequence,
        "feast_entity_rows_per_call": a.feast_chunk or a.entities,
        "limits": {k: getattr(a, k) for k in ("max_rss_gb", "max_minutes", "min_available_gb")},
        "trials": trials,
        "ratio_feast_over_keelml": ratios(trials),
        "ratio_feast_over_keelml_index": ratios(trials, "keelml-index"),
        "agreement": agreement(outs["feast"], outs["keelml"]) if both else "not compared: output missing",
        "agreement_keelml_index": (
            agreement(outs["feast"], outs["keelml-index"])
            if Path(outs["feast"]).exists() and Path(outs["keelml-index"]).exists()
            else "not compared: output missing"
        ),
        "agreement_keelml_index_vs_keelml": (
            agreement(outs["keelml"], outs["keelml-index"])
            if Path(outs["keelml"]).exists() and Path(outs["keelml-index"]).exists()
            else "not compared: output missing"
        ),
        "keelml_index_first_calls": first_calls,
        "keelml_full": {"entities": a.full_entities, "feature_rows": a.full_rows, "trials": full},
    }


def reply(proc: subprocess.Popen[str]) -> Any:
    """The next JSON line of a child (Feast prints progress lines on stdout too)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise RuntimeError(f"child exited with {proc.wait()}")


def online(a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = WORK / "online-100000.parquet"
    rng = np.random.default_rng(3)
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(np.arange(100_000), pa.int64()),
                "ts": pa.array([T0] * 100_000, pa.timestamp("us", "UTC")),
                **{f"f{i}": rng.normal(size=100_000) for i in range(10)},
            }
        ),
        path,
    )
    procs: dict[str, subprocess.Popen[str]] = {}
    ready: dict[str, Any] = {}
    for engine, python in (("feast", str(FEAST_PY)), ("keelml", sys.executable)):
        procs[engine] = subprocess.Popen(
            [python, __file__, "--child", f"{engine}-online", "--paths", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **ENV},
        )
        assert procs[engine].stdout is not None
        ready[engine] = reply(procs[engine])
    lat: dict[str, list[float]] = {f"{e}-{k}": [] for e in procs for k in (1, 100)}
    for block in range(a.blocks):
        order = list(procs) if block % 2 == 0 else list(procs)[::-1]
        for k in (1, 100):
            for engine in order:
                p = procs[engine]
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write(f"{k} {a.block_size} {block}\n")
                p.stdin.flush()
                got = reply(p)
                lat[f"{engine}-{k}"] += got[max(1, len(got) // 20) :] if block == 0 else got
    for p in procs.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait(timeout=60)
    stats = {
        key: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "n": len(v)}
        for key, v in lat.items()
    }
    return {
        "materialize_seconds": {e: r["materialize_seconds"] for e, r in ready.items()},
        "probe_values_agree": ready["feast"]["probe"] == ready["keelml"]["probe"],
        "latency_ms": stats,
        "ratio_feast_over_keelml": {
            f"{k}-{q}": stats[f"feast-{k}"][q] / stats[f"keelml-{k}"][q]
            for k in (1, 100)
            for q in ("p50", "p99")
        },
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--entities", type=int, default=10_000, help="entity rows of the side-by-side run")
    p.add_argument("--rows", type=int, default=1_000_000, help="feature rows of the side-by-side run")
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--full-entities", type=int, default=1_000_000)
    p.add_argument("--full-rows", type=int, default=10_000_000)
    p.add_argument("--full-trials", type=int, default=2)
    p.add_argument("--memory-limit", default="1GB")
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--block-size", type=int, default=200)
    p.add_argument("--sequence", help="engines in order, e.g. keelml,feast,keelml (default: --pairs)")
    p.add_argument("--max-rss-gb", type=float, default=17.0, help="kill a child whose tree passes it")
    p.add_argument("--max-minutes", type=float, default=60.0, help="kill a child running longer")
    p.add_argument("--min-available-gb", type=float, default=1.5, help="kill if MemAvailable is under")
    p.add_argument("--feast-chunk", type=int, default=0, help="entity rows per Feast call (0: one call)")
    p.add_argument("--json", default="features_feast.json", help="results file name under results/")
    p.add_argument("--skip", choices=["offline", "online"], action="append", default=[])
    p.add_argument("--child")
    p.add_argument("--paths")
    p.add_argument("--out", default="")
    a = p.parse_args()
    if a.child:
        if a.child == "feast-offline":
            print(json.dumps(child_feast_offline(json.loads(a.paths), a.out, a.feast_chunk)))
        elif a.child == "keelml-offline":
            print(json.dumps(child_keelml_offline(json.loads(a.paths), a.out, a.memory_limit)))
        elif a.child == "keelml-index-offline":
            print(json.dumps(child_keelml_index_offline(json.loads(a.paths), a.out)))
        elif a.child == "feast-online":
            child_feast_online(a.paths)
        else:
            child_keelml_online(a.paths)
        return
    if a.quick:
        a.entities, a.rows, a.pairs, a.full_entities, a.blocks, a.block_size = 1000, 100_000, 1, 0, 2, 50
    WORK.mkdir(parents=True, exist_ok=True)
    versions = ensure_feast()
    from importlib.metadata import version

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/bench_features_feast.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {
            "feast (its venv), pandas, dask, pyarrow there": versions,
            **{m: version(m) for m in ("keelml", "duckdb", "pyarrow", "pandas")},
        },
        "load_average_start": os.getloadavg(),
    }
    if "offline" not in a.skip:
        result["offline"] = offline(a)
    if "online" not in a.skip:
        result["online"] = online(a)
    result["load_average_end"] = os.getloadavg()
    out = (WORK if a.quick else HERE / "results") / a.json
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
