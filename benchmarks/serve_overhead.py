"""Service overhead beyond model time, measured at the client: `keel serve` alone, optionally old vs new.

The quick part of benchmarks/bench_serve.py (``--overhead-only`` runs this): one uvicorn worker serving
the int8 MiniLM classifier of the serving benchmark's workspace, one review per request, concurrency 1,
keep-alive, from a separate load process (benchmarks/serve_load.py). Per request the overhead is the
client's end-to-end time minus the model time the server reports in its ``Server-Timing`` header
(tokenising and ONNX Runtime); the handler's share is ``app - model`` from the same header.

With ``--ab-src DIR`` a second keel server runs the keelml package found in ``DIR`` (e.g. an older
commit: ``git archive HEAD~3 src | tar -x -C /tmp/old``, then ``--ab-src /tmp/old/src``) with the
same workspace, threads and requests; the two are measured in turns, the order flipped every round,
and the result gives each side's per-round p50 and the per-round ratio (median and p90 over rounds).

    .venv/bin/python benchmarks/bench_serve.py --overhead-only --rounds 6 --seconds 5 --ab-src /tmp/old/src
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _start(
    bench: Any, ws: Path, threads: int, src: Path | None, fake: bool
) -> tuple[subprocess.Popen[bytes], str]:
    """A keel server; with ``src``, running the keelml package under that folder instead; with ``fake``,
    the tests' numpy model instead of MiniLM (tests/serve/fake_server.py: what is left is overhead)."""
    if src is None and not fake:
        return bench.start("keel", ws, threads)  # type: ignore[no-any-return]
    port = bench.free_port()
    paths = [str(src)] if src is not None else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "KEEL_API_KEY": "",
           "KEEL_FAKE_STORAGE": tempfile.mkdtemp(prefix="keel-overhead-"),
           "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}  # fmt: skip
    if fake:
        cmd = [sys.executable, "-m", "uvicorn", "tests.serve.fake_server:app", "--factory", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    else:
        code = "import sys; from keelml.cli.main import run; sys.exit(run(sys.argv[1:]))"
        cmd = [sys.executable, "-c", code, "-w", str(ws), "serve", bench.SPEC, "--port", str(port),
               "--model-threads", str(threads), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    bench.wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, f"http://127.0.0.1:{port}/v1/predict"


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def measure(bench: Any, args: Any, bodies: Path, command: str) -> dict[str, Any]:
    """Rounds of concurrency-1 load against the new server (and the ``--ab-src`` one), interleaved."""
    if args.fake_model:  # rows of the fake model's schema (amount, region, note)
        bodies = Path(tempfile.mkdtemp(prefix="keel-overhead-")) / "bodies.jsonl"
        rows = (
            {"amount": 100.0 * i - 2000, "region": ("north", "south")[i % 2], "note": f"loan {i}"}
            for i in range(50)
        )
        bodies.write_text("\n".join(json.dumps({"row": row}) for row in rows))
    sides: dict[str, Path | None] = {"new": None}
    if args.ab_src is not None:
        sides["old"] = Path(args.ab_src).resolve()
    before = bench.machine()
    servers = {
        name: _start(bench, args.workspace, args.threads, src, args.fake_model) for name, src in sides.items()
    }
    runs: list[dict[str, Any]] = []
    try:
        for _, url in servers.values():
            bench.load(url, bodies, 3.0, 1)  # warm-up
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                result = bench.load(servers[name][1], bodies, args.seconds, 1)
                runs.append({"round": r, "side": name, **result})
                print(f"round {r} {name}: overhead p50 {result['overhead_p50_ms']:.3f} ms, handler "
                      f"{result['handler_overhead_p50_ms']:.3f} ms, e2e p50 {result['p50_ms']:.2f} ms, "
                      f"{result['errors']} errors", flush=True)  # fmt: skip
    finally:
        for proc, _ in servers.values():
            bench.stop(proc)
    summary: dict[str, Any] = {}
    for name in sides:
        mine = [x for x in runs if x["side"] == name]
        overheads = [x["overhead_p50_ms"] for x in mine]
        summary[name] = {
            "overhead_p50_ms_median": statistics.median(overheads), "overhead_p50_ms_p90": _p90(overheads),
            "overhead_p90_ms_median": statistics.median(x["overhead_p90_ms"] for x in mine),
            "handler_p50_ms_median": statistics.median(x["handler_overhead_p50_ms"] for x in mine),
            "e2e_p50_ms_median": statistics.median(x["p50_ms"] for x in mine),
            "errors": sum(x["errors"] for x in mine),
        }  # fmt: skip
    if "old" in sides:
        ratios = []
        for r in range(args.rounds):
            pair = {x["side"]: x["overhead_p50_ms"] for x in runs if x["round"] == r}
            ratios.append(pair["old"] / pair["new"])
        summary["old_over_new_median"] = statistics.median(ratios)
        summary["old_over_new_p90"] = _p90(ratios)
    return {"command": command, "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine_before": before, "machine_after": bench.machine(), "versions": bench.versions(),
            "threads": args.threads, "fake_model": args.fake_model, "rounds": args.rounds, "seconds_per_run": args.seconds,
            "ab_src": args.ab_src, "new_src": os.environ.get("PYTHONPATH") or "this checkout",
            "summary": summary, "runs": runs}  # fmt: skip


def report(out: dict[str, Any]) -> str:
    s, before, after = out["summary"], out["machine_before"], out["machine_after"]
    model = "the tests' numpy model (tests/serve/fake_server.py)" if out.get("fake_model") else "int8 MiniLM"
    lines = [
        "# Serving: service overhead beyond model time (client side, concurrency 1)",
        "",
        f"Command: `{out['command']}` ({out['date']}).",
        f"Machine: {before['cpu']}, {before['cores']} cores, Python {before['python']}; load average "
        f"{before['load_average'][0]:.1f} before, {after['load_average'][0]:.1f} after (shared with other jobs).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + ".",
        "",
        f"One uvicorn worker per server, {model}, `model_threads = {out['threads']}`, one row per request (a review for MiniLM), "
        f"keep-alive, {out['seconds_per_run']:g} s per run, {out['rounds']} rounds"
        + (", the two servers in turns with the order flipped each round." if out["ab_src"] else "."),
        "Overhead = client end-to-end minus the model time in `Server-Timing`; handler = `app - model`.",
        "",
        "| server | overhead p50 (ms, median of rounds) | p90 of rounds | overhead p90 (ms) | handler p50 (ms) "
        "| end-to-end p50 (ms) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("old", "new"):
        if name in s:
            x = s[name]
            label = (
                f"old (`{out['ab_src']}`)"
                if name == "old"
                else f"new (`{out.get('new_src', 'this checkout')}`)"
            )
            lines.append(
                f"| {label} | {x['overhead_p50_ms_median']:.3f} | {x['overhead_p50_ms_p90']:.3f} | "
                f"{x['overhead_p90_ms_median']:.3f} | {x['handler_p50_ms_median']:.3f} | "
                f"{x['e2e_p50_ms_median']:.2f} | {x['errors']} |"
            )
    if "old_over_new_median" in s:
        lines += ["", f"Overhead old / new, per round: median {s['old_over_new_median']:.2f}x, "
                  f"p90 {s['old_over_new_p90']:.2f}x."]  # fmt: skip
    met = s["new"]["overhead_p50_ms_median"] <= 1.0
    lines += ["", f"Target <= 1 ms p50: **{'met' if met else 'MISSED'}** "
              f"({s['new']['overhead_p50_ms_median']:.3f} ms, median of the rounds' p50)."]  # fmt: skip
    lines += ["", "Per run:", "", "| round | server | overhead p50 | overhead p90 | handler p50 | e2e p50 |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for x in out["runs"]:
        lines.append(f"| {x['round']} | {x['side']} | {x['overhead_p50_ms']:.3f} | {x['overhead_p90_ms']:.3f} | "
                     f"{x['handler_overhead_p50_ms']:.3f} | {x['p50_ms']:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write(out: dict[str, Any], name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(report(out))
