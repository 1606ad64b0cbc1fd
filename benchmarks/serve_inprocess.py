"""The service's own time per /v1/predict call, in process: the FastAPI app called as ASGI, no HTTP.

What uvicorn, the network and the client add is left out, and so is the model: the app serves the
tests' small numpy model (tests/serve/fakes.py, a few microseconds), so what is measured is routing,
middleware, auth, body reading, validation, ids, the log queue, metrics and the JSON reply. Calls are
short (tens of microseconds), so the median stays meaningful on a loaded machine, where the HTTP
figure of benchmarks/serve_overhead.py is mostly time spent waiting for a CPU.

With ``--ab-src DIR`` the same measurement runs in turns in two processes, this checkout's keelml and
the one under ``DIR`` (e.g. ``git archive HEAD~3 src | tar -x -C /tmp/old`` -> ``/tmp/old/src``).

    .venv/bin/python benchmarks/serve_inprocess.py --calls 5000 --rounds 5 --ab-src /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def _measure(calls: int, api_key: str | None, freeze_gc: bool) -> dict[str, float]:
    import gc

    from tests.serve.fakes import GOOD_ROW, fake_app

    from keelml.serve import ServeConfig

    config = ServeConfig(log_flush_seconds=0.05, reload_seconds=3600)
    if "freeze_gc" in ServeConfig.model_fields:  # an older keelml (--ab-src) has no such setting
        config = config.with_overrides(freeze_gc=freeze_gc)
    app = fake_app(Path(tempfile.mkdtemp(prefix="keel-inprocess-")), api_key=api_key, config=config)
    full: list[float] = []  # durations of full (generation 2) collections during the timed calls
    started = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                full.append(time.perf_counter() - started[0])

    body = json.dumps({"row": GOOD_ROW}).encode()
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    if api_key:
        headers.append((b"x-api-key", api_key.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict", "root_path": "",
             "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000)}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def call() -> None:
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app({**scope, "state": {}}, receive, send)
        assert statuses == [200], statuses

    async with app.router.lifespan_context(app):
        for _ in range(min(500, calls)):  # warm-up
            await call()
        times = []
        gc.callbacks.append(watch)
        objects = len(gc.get_objects()) + gc.get_freeze_count()
        for _ in range(calls):
            start = time.perf_counter()
            await call()
            times.append(time.perf_counter() - start)
        gc.callbacks.remove(watch)
    times.sort()
    return {"p50_us": times[len(times) // 2] * 1e6, "p90_us": times[int(0.9 * len(times))] * 1e6,
            "p999_us": times[int(0.999 * len(times))] * 1e6, "max_us": times[-1] * 1e6,
            "tracked_objects": objects, "full_collections": len(full),
            "full_gc_ms_max": max(full, default=0.0) * 1e3}  # fmt: skip


def _one(src: Path | None, calls: int, api_key: str | None, freeze_gc: bool) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, __file__, "--child", "--calls", str(calls)] + (
        ["--api-key", api_key] if api_key else []
    )
    cmd += [] if freeze_gc else ["--no-freeze-gc"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--api-key", default="bench-key-0123456789abcdef", help="'' for a service without a key"
    )
    parser.add_argument("--ab-src", type=Path, default=None)
    parser.add_argument(
        "--output", type=Path, default=None, help="also write the summary (JSON) and a .md next to it"
    )
    parser.add_argument(
        "--no-freeze-gc", action="store_true", help="[serve] freeze_gc = false on the new side"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        import uvloop

        print(json.dumps(uvloop.run(_measure(args.calls, args.api_key or None, not args.no_freeze_gc))))
        return
    load_before = os.getloadavg()
    sides: dict[str, Path | None] = {"new": None, **({"old": args.ab_src.resolve()} if args.ab_src else {})}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for r in range(args.rounds):
        for name in list(sides) if r % 2 == 0 else list(reversed(sides)):
            results[name].append(_one(sides[name], args.calls, args.api_key, not args.no_freeze_gc))
            x = results[name][-1]
            print(f"round {r} {name}: p50 {x['p50_us']:.0f} us, p90 {x['p90_us']:.0f} us, p99.9 {x['p999_us']:.0f} us, "
                  f"max {x['max_us'] / 1e3:.1f} ms; {x['full_collections']} full GCs (longest "
                  f"{x['full_gc_ms_max']:.1f} ms) over {x['tracked_objects']} objects", flush=True)  # fmt: skip
    summary: dict[str, Any] = {
        name: {"p50_us_median": statistics.median(x["p50_us"] for x in runs),
               "p90_us_median": statistics.median(x["p90_us"] for x in runs)}
        for name, runs in results.items()
    }  # fmt: skip
    if "old" in sides:
        ratios = sorted(
            o["p50_us"] / n["p50_us"] for o, n in zip(results["old"], results["new"], strict=True)
        )
        summary["old_over_new_p50_median"] = statistics.median(ratios)
        summary["old_over_new_p50_min"] = ratios[0]
    summary["load_average"] = os.getloadavg()
    print(json.dumps(summary, indent=2))
    if args.output is not None:
        command = " ".join([".venv/bin/python", "benchmarks/serve_inprocess.py", *sys.argv[1:]])
        out = {"command": command, "date": datetime.now(UTC).isoformat(timespec="seconds"), "summary": summary,
               "rounds": results, "load_before": load_before, "new_src": os.environ.get("PYTHONPATH") or "this checkout"}  # fmt: skip
        args.output.with_suffix(".json").write_text(json.dumps(out, indent=2))
        args.output.with_suffix(".md").write_text(_report(out, args.ab_src))


def _report(out: dict[str, Any], ab_src: Path | None) -> str:
    s = out["summary"]
    lines = [
        "# Serving: the service's own time per /v1/predict call, in process (ASGI, no HTTP, no model)",
        "",
        f"Command: `{out['command']}` ({out['date']}). Load average {out['load_before'][0]:.1f} before, "
        f"{s['load_average'][0]:.1f} after, on {os.cpu_count()} cores shared with other jobs; run at nice 19.",
        "",
        "The FastAPI app with the tests' numpy model (a few microseconds), called as ASGI in one process under "
        "uvloop: routing, middleware, API-key check, body, validation, ids, log queue, metrics, JSON reply.",
        "",
        "| keelml | p50 (us, median of rounds) | p90 (us, median of rounds) |",
        "|---|---|---|",
    ]
    for name in ("old", "new"):
        if name in s:
            label = f"old (`{ab_src}`)" if name == "old" else f"new (`{out.get('new_src', 'this checkout')}`)"
            lines.append(f"| {label} | {s[name]['p50_us_median']:.0f} | {s[name]['p90_us_median']:.0f} |")
    if "old_over_new_p50_median" in s:
        lines += ["", f"p50 old / new per round: median {s['old_over_new_p50_median']:.1f}x, "
                  f"smallest {s['old_over_new_p50_min']:.1f}x."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
