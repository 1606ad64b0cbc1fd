"""Where the serving process's memory grows per request: the service in process with the model call
stubbed (as benchmarks/serve_gc.py), RSS every 10,000 requests, with the request log written by
``LEAKMODE``: unset = keelml's Delta append; ``nowrite``; ``parquet`` (plain Parquet part files);
``trim`` (glibc malloc_trim after each commit); ``handle`` (one DeltaTable kept open); ``ckpt`` (a Delta
checkpoint every 10 commits); ``nomerge`` (no schema merge). Needs the serving benchmark's workspace.

    LEAKMODE=parquet .venv/bin/python benchmarks/serve_memory.py 2000 120000 [trace]
"""

import asyncio
import gc
import json
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, "/work/main/benchmarks")
from keelml import Workspace
from keelml.serve.app import create_app
from keelml.serve.server import config_of
from keelml.serve.source import RegistrySource


def rss() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


BODY = json.dumps(
    {"row": {"review": "The soup was cold and the bread was stale, would not order again. " * 3}}
).encode()
N1, N2 = int(sys.argv[1]), int(sys.argv[2])
trace = len(sys.argv) > 3 and sys.argv[3] == "trace"

MODE = os.environ.get("LEAKMODE", "")
if MODE:
    from keelml.core import request_log

    if MODE == "nowrite":
        request_log.append = lambda path, table: None
    if MODE == "trim":
        import ctypes

        _libc = ctypes.CDLL("libc.so.6")
        _orig = request_log.append

        def _t(path, table):
            _orig(path, table)
            _libc.malloc_trim(0)

        request_log.append = _t
    if MODE == "handle":
        from deltalake import DeltaTable, write_deltalake

        _h = {}

        def _hw(path, table):
            path.mkdir(parents=True, exist_ok=True)
            dt = _h.get(path)
            if dt is None:
                write_deltalake(str(path), table, mode="append", schema_mode="merge")
                _h[path] = DeltaTable(str(path))
            else:
                dt.update_incremental()
                write_deltalake(dt, table, mode="append", schema_mode="merge")

        request_log.append = _hw
    if MODE == "ckpt":
        from deltalake import DeltaTable

        _orig2 = request_log.append
        _n = [0]

        def _ck(path, table):
            _orig2(path, table)
            _n[0] += 1
            if _n[0] % 10 == 0:
                DeltaTable(str(path)).create_checkpoint()

        request_log.append = _ck
    if MODE == "nomerge":
        from deltalake import write_deltalake

        def _nm(path, table):
            path.mkdir(parents=True, exist_ok=True)
            write_deltalake(str(path), table, mode="append")

        request_log.append = _nm
    if MODE == "parquet":
        import itertools

        import pyarrow.parquet as pq

        _c = itertools.count()

        def _w(path, table):
            path.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, str(path / f"part-{next(_c)}.parquet"))

        request_log.append = _w


async def main():
    ws = Workspace.open(Path("/tmp/keel-bench-serve/ws"))
    config = config_of(ws).with_overrides(model_threads=1)
    storage = Path(tempfile.mkdtemp(prefix="keel-leak-"))
    app = create_app(
        "reviews-clf@production", RegistrySource(ws, threads=1), storage=storage, config=config, reload=False
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/predict",
        "raw_path": b"/v1/predict",
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"x"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
    }

    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(m):
        return None

    async with app.router.lifespan_context(app):
        loaded = app.state.service.holder.current
        classes = len(loaded.schema.classes)

        class Stub:
            info = loaded.model.info

            def predict_proba(self, rows):
                return np.full((len(rows), classes), 1.0 / classes)

        object.__setattr__(loaded, "model", Stub())
        for _ in range(N1):
            await app({**scope, "state": {}}, receive, send)
        await asyncio.sleep(3)
        gc.collect()
        r0 = rss()
        print("rss after warmup", r0, flush=True)
        if trace:
            tracemalloc.start(10)
            s0 = tracemalloc.take_snapshot()
        for i in range(N2):
            await app({**scope, "state": {}}, receive, send)
            if i % 10000 == 0:
                await asyncio.sleep(0.01)
                print("  at", i, round(rss()), flush=True)
        await asyncio.sleep(4)
        gc.collect()
        import glob

        print("commits", len(glob.glob(str(storage) + "/**/_delta_log/*.json", recursive=True)))
        r1 = rss()
        print("rss after", N2, r1, "per request KB", (r1 - r0) * 1024 / N2, flush=True)
        if trace:
            s1 = tracemalloc.take_snapshot()
            for st in s1.compare_to(s0, "traceback")[:6]:
                print(st.size_diff / 1024, "KB", st.count_diff)
                for line in st.traceback.format()[-8:]:
                    print("   ", line)


asyncio.run(main())
