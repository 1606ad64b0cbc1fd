"""The transport floor under the serving overhead: uvicorn + the loopback + the load generator alone.

A bare ASGI app (uvicorn, the same loop and parser as `keel serve`) reads the request body and answers
a fixed ~200-byte JSON with ``Server-Timing: model;dur=0``; benchmarks/serve_load.py then reports its
"overhead beyond model time" exactly as for keel. What keel adds is keel's overhead minus this floor.

    .venv/bin/python benchmarks/serve_floor.py --seconds 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPLY = json.dumps({"model": "floor", "model_version": 1, "predictions": [
    {"prediction_id": "0" * 32, "label": "great", "score": 0.5, "proba": {"great": 0.5, "other": 0.5}}]}).encode()  # fmt: skip


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(REPLY)).encode()), (b"server-timing", b"model;dur=0, app;dur=0")]})  # fmt: skip
    await send({"type": "http.response.body", "body": REPLY})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bodies", type=Path, default=Path("/tmp/keel-bench-serve/bodies.jsonl"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.serve:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
        return
    sys.path.insert(0, str(HERE))
    import bench_serve

    port = bench_serve.free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port)])
    try:
        bench_serve.wait_ready(f"http://127.0.0.1:{port}/", proc)
        url = f"http://127.0.0.1:{port}/v1/predict"
        bench_serve.load(url, args.bodies, 2.0, 1)
        runs = [bench_serve.load(url, args.bodies, args.seconds, 1) for _ in range(args.rounds)]
    finally:
        bench_serve.stop(proc)
    floors = [r["overhead_p50_ms"] for r in runs]
    print(json.dumps({"overhead_p50_ms_per_round": floors, "median": statistics.median(floors),
                      "rps": [r["rps"] for r in runs]}))  # fmt: skip


if __name__ == "__main__":
    main()
