"""Where the time of a 1-entity Redis lookup goes: keelml's own work vs the round trip.

    nice -n 19 .venv/bin/python benchmarks/bench_features_redis.py --calls 3000

A workspace with 10,000 entities x 10 float features materialized to Redis (127.0.0.1:6379/14),
then, interleaved call by call with random keys: redis-py's ``GET`` of the stored key (the floor
for one round trip from Python), ``RedisOnlineStore.get``, ``ws.features.get_online_features``
for one entity, and the same lookup planned on every call (as before planning was cached).
Reported: latency p50/p90/p99 (first 5% dropped as warm-up) and the process CPU time per call
(user + system, measured over a separate run of each: what the client itself spends, which the
machine's load does not inflate the way it inflates waiting). Results go to
benchmarks/results/features_redis.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    import keelml
    from keelml.features import Entity, FeatureRepo, FeatureView
    from keelml.features.compute import plan_derived
    from keelml.features.serving import lookup

    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--entities", type=int, default=10_000)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    a = p.parse_args()
    rng = np.random.default_rng(3)
    root = Path(tempfile.mkdtemp(prefix="keel-redis-")) / "ws"
    keelml.Workspace.init(root)
    (root / "keel.toml").write_text(
        (root / "keel.toml").read_text().replace("sqlite:///.keel/online.db", a.redis)
    )
    ws = keelml.Workspace.open(root)
    n = a.entities
    table = pa.table(
        {
            "customer_id": np.arange(n),
            "ts": pa.array([T0] * n, pa.timestamp("us", "UTC")),
            **{f"f{i}": rng.normal(size=n) for i in range(10)},
        }
    )
    customer = Entity("customer", keys=("customer_id",))
    features = tuple(f"f{i}" for i in range(10))
    view = FeatureView(
        "v", entity=customer, source="src", timestamp="ts", ttl=dt.timedelta(days=3650), features=features
    )
    ws.datasets.add("src", table, time="ts")
    ws.features.use(FeatureRepo(entities=(customer,), views=(view,)))
    ws.features.materialize(now=T0 + dt.timedelta(days=1))
    now = T0 + dt.timedelta(days=1)
    store: Any = ws.features.online
    fs: Any = ws.features

    def unplanned(rows: list[dict[str, Any]]) -> Any:
        """get_online_features as before this change: the features planned on every call."""
        stored, derived = plan_derived(fs.repo, list(features))
        return lookup(fs, rows, list(features), fs._views_for(stored), derived, now)

    client = store._client
    calls: dict[str, Callable[[int], Any]] = {
        "redis_py_get": lambda c: client.get(store._key("v", f"[{c}]")),
        "store_get": lambda c: store.get("v", [f"[{c}]"]),
        "get_online_features": lambda c: ws.features.get_online_features(
            [{"customer_id": c}], list(features), now=now
        ),
        "planned_per_call": lambda c: unplanned([{"customer_id": c}]),
    }
    lat: dict[str, list[float]] = {k: [] for k in calls}
    load = [os.getloadavg()]
    for _ in range(a.calls):
        for name, call in calls.items():
            key = int(rng.integers(0, n))
            start = time.perf_counter()
            call(key)
            lat[name].append((time.perf_counter() - start) * 1000)
    load.append(os.getloadavg())
    cpu_us: dict[str, float] = {}
    for name, call in calls.items():
        keys = rng.integers(0, n, a.calls)
        before = _cpu()
        for key in keys:
            call(int(key))
        cpu_us[name] = (_cpu() - before) / a.calls * 1e6
    store.clear("v")
    ws.features.close()
    warm = {k: v[len(v) // 20 :] for k, v in lat.items()}
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "nice -n 19 .venv/bin/python benchmarks/bench_features_redis.py " + f"--calls {a.calls}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": {m: version(m) for m in ("keelml", "redis")},
        "nice": os.nice(0),
        "load_average": load,
        "latency_ms": {
            k: {q: float(np.percentile(v, int(q[1:]))) for q in ("p50", "p90", "p99")}
            for k, v in warm.items()
        },
        "client_cpu_us_per_call": cpu_us,
    }
    out = HERE / "results" / "features_redis.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
