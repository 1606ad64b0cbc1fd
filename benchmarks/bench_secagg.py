"""Benchmark secure aggregation: keelml's SecAgg+ vs plain FedAvg vs Flower's SecAgg+, one run.

    .venv/bin/python benchmarks/bench_secagg.py               # 50 and 200 clients x 100,234 parameters
    .venv/bin/python benchmarks/bench_secagg.py --full-graph  # + the complete graph at 50 (minutes)
    .venv/bin/python benchmarks/bench_secagg.py --quick       # smoke test (results under benchmarks/.work/)

What is measured (all in one process, one thread for numpy/BLAS, methods interleaved per repetition):

1. Flower round: one fit round driven by a Flower server workflow over an in-process Flower Grid
   (``keelml.federated.secagg.flower_local``: every node's ClientApp runs in this process, messages are
   deep-copied). Every method uses the same ClientApp, whose ``fit`` returns a fixed per-client update
   (no training, so the round time is protocol + messaging + aggregation). Methods: plain FedAvg
   (Flower's ``default_fit_workflow``), keelml (``KeelSecAggWorkflow`` + ``keelml_secagg_mod``), and
   Flower's ``SecAggPlusWorkflow`` + ``secaggplus_mod``. Clients run one after another, so this is
   the total CPU cost of a round, not its latency with parallel clients. Both wall time and the
   process's CPU time are recorded (on a shared machine the CPU time is the steadier of the two).
2. Protocol only: ``secure_sum`` on the same vectors vs the plain weighted sum (Flower's
   ``aggregate``), reporting the server's own time and the critical path with parallel clients
   (per phase: server time + the slowest client).
The accuracy of every method is checked against the exact float64 weighted mean.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAPES = [(250, 384), (384,), (384, 10), (10,)]  # 100,234 parameters, an MLP-like model


# keelml-32: a declared range that fits the 32-bit ring at 200 clients (every |w * param| and the weight
# w <= 99 stay below 128; 16 fractional bits). The default range (2**20 at 24 bits) needs 64 bits.
RANGE_32, PRECISION_32 = 128.0, 16

_UPDATES: dict[int, list[np.ndarray[Any, Any]]] = {}


def _local(node: int) -> list[np.ndarray[Any, Any]]:
    """Each client's fixed update, generated once outside every timed region."""
    if node not in _UPDATES:
        rng = np.random.default_rng(node)
        _UPDATES[node] = [(0.05 * rng.standard_normal(s)).astype(np.float32) for s in SHAPES]
    return _UPDATES[node]


def _examples(node: int) -> int:
    return 20 + node % 80


def _client_app(mods: list[Any]) -> Any:
    from flwr.client import NumPyClient
    from flwr.clientapp import ClientApp

    class Fixed(NumPyClient):
        def __init__(self, node: int) -> None:
            self.node = node

        def fit(self, parameters: Any, config: Any) -> tuple[list[Any], int, dict[str, Any]]:
            update = _local(self.node)
            return [p + u for p, u in zip(parameters, update, strict=True)], _examples(self.node), {}

    return ClientApp(client_fn=lambda ctx: Fixed(ctx.node_id).to_client(), mods=mods)


def flower_round(method: str, nodes: list[int]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds of this process, and the max |error| against the exact weighted mean.

    ``keelml``: default SecAggConfig (k = 2 ceil(log2 n), t = k // 2 + 1, the default range needs the
    64-bit ring); ``-32``: the same graph with a declared range that fits the 32-bit ring; ``-5``: 5 shares (Flower's
    count includes the client itself, so keelml gets k = 4), threshold 3; ``-full``: the complete graph,
    threshold a majority of n.
    """
    from flwr.client.mod import secaggplus_mod
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_PARAMS_RECORD
    from flwr.server.workflow.default_workflows import default_fit_workflow

    from keelml.federated.secagg import SecAggConfig
    from keelml.federated.secagg.flower_client import keelml_secagg_mod
    from keelml.federated.secagg.flower_local import legacy_context, local_grid
    from keelml.federated.secagg.flower_server import KeelSecAggWorkflow

    n = len(nodes)
    keelml_configs = {
        "keelml": SecAggConfig(),
        "keelml-32": SecAggConfig(clip_bound=RANGE_32, precision_bits=PRECISION_32),
        "keelml-5": SecAggConfig(neighbours=4, threshold=3),
        "keelml-full": SecAggConfig(full_graph=True, threshold=n // 2 + 1),
    }
    workflow: Callable[[Any, Any], None]
    if method == "plain":
        mods: list[Any] = []
        workflow = default_fit_workflow
    elif method in keelml_configs:
        mods = [keelml_secagg_mod]
        workflow = KeelSecAggWorkflow(keelml_configs[method])
    else:
        mods = [secaggplus_mod]
        shares, threshold = (5, 3) if method == "flower-5" else (n, n // 2 + 1)
        workflow = SecAggPlusWorkflow(num_shares=shares, reconstruction_threshold=threshold, timeout=600)
    grid = local_grid(_client_app(mods), nodes)
    strategy = FedAvg(fraction_fit=1.0, min_fit_clients=len(nodes), min_available_clients=len(nodes))
    zeros = [np.zeros(s, dtype=np.float32) for s in SHAPES]
    context = legacy_context(grid, strategy, ndarrays_to_parameters(zeros))
    started, cpu = time.perf_counter(), time.process_time()
    workflow(grid, context)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    got = parameters_to_ndarrays(
        compat.arrayrecord_to_parameters(context.state.array_records[MAIN_PARAMS_RECORD], True)
    )
    weights = np.array([_examples(n) for n in nodes], dtype=np.float64)
    error = 0.0
    for i in range(len(SHAPES)):
        exact = (
            sum(w * _local(n)[i].astype(np.float64) for n, w in zip(nodes, weights, strict=True))
            / weights.sum()
        )
        error = max(error, float(np.abs(got[i].astype(np.float64) - exact).max()))
    return elapsed, cpu, error


def protocol_only(n: int, reps: int) -> dict[str, Any]:
    """secure_sum vs Flower's plain ``aggregate`` on the same [w * params, w] vectors, interleaved."""
    from flwr.server.strategy.aggregate import aggregate

    from keelml.federated.secagg import SecAggConfig, secure_sum

    locals_ = [_local(c) for c in range(n)]
    weighted = [(p, _examples(c)) for c, p in enumerate(locals_)]
    vectors = [
        np.concatenate([_examples(c) * a.ravel().astype(np.float64) for a in p] + [[_examples(c)]])
        for c, p in enumerate(locals_)
    ]
    rows: list[dict[str, float]] = []
    for _ in range(reps):
        started = time.perf_counter()
        aggregate(weighted)
        plain = time.perf_counter() - started
        result = secure_sum(vectors, SecAggConfig())
        rows.append(
            {
                "plain_aggregate_s": plain,
                "secure_server_s": sum(t.server_s for t in result.timings),
                "secure_critical_path_s": result.critical_path_s,
                "secure_sequential_s": result.sequential_s,
            }
        )
    out: dict[str, Any] = {
        "neighbours": result.neighbours,
        "threshold": result.threshold,
        "repetitions": reps,
    }
    for key in rows[0]:
        out[key] = _stats([r[key] for r in rows])
    for key in ("secure_server_s", "secure_critical_path_s", "secure_sequential_s"):
        out[f"ratio_{key}"] = _stats([r[key] / r["plain_aggregate_s"] for r in rows])
    out["last_round_phases"] = [
        {"phase": t.phase, "server_s": t.server_s, "client_max_s": t.clients_max_s} for t in result.timings
    ]
    return out


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(np.ceil(0.9 * len(ordered))) - 1)]
    return {"median": statistics.median(ordered), "p90": p90, "min": ordered[0], "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--full-graph", action="store_true", help="also run the complete graph (Flower's takes minutes)"
    )
    parser.add_argument(
        "--repetitions",
        default="50:5,200:3",
        help="clients:repetitions of the Flower round (a loaded machine may need fewer at 200)",
    )
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    sparse = ["plain", "keelml", "keelml-32", "keelml-5", "flower-5"]
    sizes = [tuple(int(x) for x in pair.split(":")) for pair in args.repetitions.split(",")]
    plans = [(6, 2, sparse)] if args.quick else [(n, reps, sparse) for n, reps in sizes]
    if args.full_graph and not args.quick:
        plans.insert(1, (50, 1, ["plain", "keelml-full", "flower-full"]))
    runs: list[dict[str, Any]] = []
    for n, reps, methods in plans:
        nodes = [1000 + 7919 * i for i in range(n)]
        for node in nodes:
            _local(node)
        wall: dict[str, list[float]] = {m: [] for m in methods}
        cpu: dict[str, list[float]] = {m: [] for m in methods}
        errors: dict[str, float] = {}
        for rep in range(reps):
            order = methods if rep % 2 == 0 else list(reversed(methods))  # interleave, alternate order
            for m in order:
                elapsed, used, err = flower_round(m, nodes)
                wall[m].append(elapsed)
                cpu[m].append(used)
                errors[m] = max(errors.get(m, 0.0), err)
                print(
                    f"n={n} rep={rep} {m}: {elapsed:.3f}s wall {used:.3f}s cpu err={err:.2e} "
                    f"load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
        runs.append(
            {
                "clients": n,
                "repetitions": reps,
                "seconds": {m: _stats(v) for m, v in wall.items()},
                "cpu_seconds": {m: _stats(v) for m, v in cpu.items()},
                "ratio_to_plain": _ratios(wall, methods),
                "cpu_ratio_to_plain": _ratios(cpu, methods),
                "max_abs_error": errors,
            }
        )
    proto = {n: protocol_only(n, reps) for n, reps in ([(6, 2)] if args.quick else sizes)}
    out = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_secagg.py"
        + (" --quick" if args.quick else "")
        + (" --full-graph" if args.full_graph else "")
        + (f" --repetitions {args.repetitions}" if args.repetitions != "50:5,200:3" else ""),
        "parameters": sum(int(np.prod(s)) for s in SHAPES),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, SHARED with other jobs "
        f"(load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end)",
        "versions": {p: version(p) for p in ("numpy", "cryptography", "flwr")}
        | {"python": platform.python_version()},
        "flower_rounds": runs,
        "protocol_only": proto,
    }
    target = HERE / (".work" if args.quick else "results")
    target.mkdir(parents=True, exist_ok=True)
    (target / "secagg.json").write_text(json.dumps(out, indent=2))
    (target / "secagg.md").write_text(markdown(out))
    print(markdown(out))


def _ratios(values: dict[str, list[float]], methods: list[str]) -> dict[str, dict[str, float]]:
    """Per method, the ratio to plain FedAvg of the same repetition (median, p90, ...)."""
    return {
        m: _stats([t / p for t, p in zip(values[m], values["plain"], strict=True)])
        for m in methods
        if m != "plain"
    }


def markdown(out: dict[str, Any]) -> str:
    lines = [
        "# Secure aggregation: keelml SecAgg+ vs plain FedAvg vs Flower SecAgg+",
        "",
        f"Command: `{out['command']}`  ",
        f"Model: {out['parameters']:,} parameters (float32), FedAvg weighted by num_examples.  ",
        f"Machine: {out['machine']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + ".",
        "",
        "## One Flower fit round (all clients run sequentially in one process)",
        "",
        "Same ClientApp (fixed update, no training), same in-process Flower grid, methods interleaved. "
        "Ratio = method / plain FedAvg of the same repetition; median and p90 over repetitions. "
        "Wall = elapsed time; CPU = this process's CPU time (less disturbed by the other jobs).",
        "",
        "| clients | method | ring | wall median s | wall ratio median | wall ratio p90 "
        "| CPU median s | CPU ratio median | CPU ratio p90 | max abs error vs exact mean |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rings = {"keelml-32": "32", "flower-5": "32", "flower-full": "32", "plain": "-"}
    for run in out["flower_rounds"]:
        for m in run["seconds"]:
            cells = []
            for key, ratio_key in (("seconds", "ratio_to_plain"), ("cpu_seconds", "cpu_ratio_to_plain")):
                r = run[ratio_key].get(m)
                ratio = f"{r['median']:.2f}x | {r['p90']:.2f}x" if r else "1 | 1"
                cells.append(f"{run[key][m]['median']:.3f} | {ratio}")
            lines.append(
                f"| {run['clients']} | {m} | {rings.get(m, '64')} | "
                + " | ".join(cells)
                + f" | {run['max_abs_error'][m]:.1e} |"
            )
    lines += [
        "",
        "## Protocol only (no Flower messaging): `secure_sum` vs plain weighted sum (Flower's `aggregate`)",
        "",
        "Same `[w * params, w]` vectors, interleaved per repetition, default SecAggConfig (64-bit ring).",
        "Server = the keelml server's own time in all four phases; critical path = per phase, server + the",
        "slowest client (clients in parallel).",
        "",
        "| clients | k / t | plain aggregate s | keelml server s (ratio) | critical path s (ratio) "
        "| all clients sequential s (ratio) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n, p in out["protocol_only"].items():
        cells = [f"{p['plain_aggregate_s']['median']:.4f}"]
        for key in ("secure_server_s", "secure_critical_path_s", "secure_sequential_s"):
            r = p[f"ratio_{key}"]
            cells.append(f"{p[key]['median']:.4f} ({r['median']:.2f}x, p90 {r['p90']:.2f}x)")
        lines.append(f"| {n} | {p['neighbours']} / {p['threshold']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
