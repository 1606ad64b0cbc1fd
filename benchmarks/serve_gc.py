"""Full garbage collections in a serving process's heap, with and without ``[serve] freeze_gc``.

Builds the service of the serving benchmark's workspace (benchmarks/bench_serve.py prepares it: int8
MiniLM, ~300,000 objects after start-up), stubs the model call (a constant probability table) so
that many requests take seconds, and calls ``/v1/predict`` as ASGI in process, recording every full
(generation 2) collection and how long it took. The request log goes to a temporary folder.

    .venv/bin/python benchmarks/serve_gc.py --requests 100000            # freeze_gc = true
    .venv/bin/python benchmarks/serve_gc.py --requests 100000 --no-freeze
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from keelml import Workspace
from keelml.serve.app import create_app
from keelml.serve.server import config_of
from keelml.serve.source import RegistrySource

BODY = json.dumps({"row": {"review": "The soup was cold and the bread was stale, would not order again."}})


async def run(ws: Workspace, spec: str, requests: int, freeze: bool) -> dict[str, Any]:
    config = config_of(ws).with_overrides(model_threads=1, freeze_gc=freeze)
    storage = Path(tempfile.mkdtemp(prefix="keel-serve-gc-"))
    app = create_app(spec, RegistrySource(ws, threads=1), storage=storage, config=config, reload=False)
    body = BODY.encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict", "root_path": "",
             "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}  # fmt: skip
    full: list[float] = []
    began = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                full.append(time.perf_counter() - began[0])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async with app.router.lifespan_context(app):
        loaded = app.state.service.holder.current
        classes = len(loaded.schema.classes)

        class Stub:
            info = loaded.model.info

            def predict_proba(self, rows: list[Any]) -> Any:
                return np.full((len(rows), classes), 1.0 / classes)

        object.__setattr__(loaded, "model", Stub())  # the heap stays the real one; the call is cheap
        objects = len(gc.get_objects()) + gc.get_freeze_count()
        gc.callbacks.append(watch)
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            await app({**scope, "state": {}}, receive, send)
            times.append(time.perf_counter() - start)
        gc.callbacks.remove(watch)
    times.sort()
    return {"freeze_gc": freeze, "requests": requests, "objects_after_start": objects,
            "full_collections": len(full), "full_gc_ms_longest": max(full, default=0.0) * 1e3,
            "full_gc_ms_total": sum(full) * 1e3, "p50_us": times[requests // 2] * 1e6,
            "p999_ms": times[int(0.999 * requests)] * 1e3, "max_ms": times[-1] * 1e3,
            "load_average": os.getloadavg()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/keel-bench-serve/ws"))
    parser.add_argument("--spec", default="reviews-clf@production")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--no-freeze", action="store_true")
    args = parser.parse_args()
    ws = Workspace.open(args.workspace)
    print(json.dumps(asyncio.run(run(ws, args.spec, args.requests, not args.no_freeze))))


if __name__ == "__main__":
    main()
