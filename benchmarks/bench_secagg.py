"""Benchmark secure aggregation: keelml's SecAgg+ vs plain FedAvg vs Flower's SecAgg+, one run.

    .venv/bin/python benchmarks/bench_secagg.py               # 50 and 200 clients, ~100k parameters
    .venv/bin/python benchmarks/bench_secagg.py --full-graph  # + the complete graph at 50 (minutes)
    .venv/bin/python benchmarks/bench_secagg.py --quick       # smoke test (results under benchmarks/.work/)

What is measured (all in one process, one thread for numpy/BLAS, methods interleaved per repetition):

1. Flower round: one fit round driven by a Flower server workflow over an in-process Flower Grid
   (``keelml.federated.secagg.flower_local``: every node's ClientApp runs in this process, messages are
   deep-copied). Every method uses the same ClientApp, in two modes:
   - ``train`` (the FedAvg round): each client runs one local epoch of mini-batch SGD (batch 32,
     learning rate 0.05, momentum 0.9: ``keelml.federated.model.train_local``, keelml's own federated
     training code and FederatedConfig's defaults) on its own shard, starting from the global model,
     and returns its new weights. The model is keelml's federated MLP, 64 -> 384 -> 192 -> 10
     (100,810 parameters). Shards are generated (10 Gaussian classes in 64 dimensions) with
     100 + node % 256 examples (100 to 355, mean about 228: LEAF's FEMNIST has 805,263 samples over
     3,550 writers, 227 per writer); ``--shard LOW:HIGH`` changes the range.
   - ``protocol``: ``fit`` returns a fixed per-client update (no training), so the round time is
     protocol + messaging + aggregation only.
   Methods: plain FedAvg (Flower's ``default_fit_workflow``), keelml (``KeelSecAggWorkflow`` +
   ``keelml_secagg_mod``) in several configurations, and Flower's ``SecAggPlusWorkflow`` +
   ``secaggplus_mod``. Clients run one after another, so this is the total CPU cost of a round, not
   its latency with parallel clients. Both wall time and the process's CPU time are recorded (on a
   shared machine the CPU time is the steadier of the two).
2. Protocol only (no Flower messaging): ``secure_sum`` on the same vectors vs the plain weighted sum
   (Flower's ``aggregate``), reporting the server's own time and the critical path with parallel
   clients (per phase: server time + the slowest client).
The accuracy of every method is checked against the exact float64 weighted mean of what the clients
returned.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
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
LAYERS = [64, 384, 192, 10]  # keelml's federated MLP: weight (out, in) then bias, per layer
SHAPES = [s for a, b in itertools.pairwise(LAYERS) for s in ((b, a), (b,))]  # 100,810
MODES = ("train", "protocol")
EPOCHS, BATCH, LEARNING_RATE = 1, 32, 0.05  # FederatedConfig's defaults

# keelml-64: the wide range that was the default before (+-2**20 at 24 fractional bits, 64-bit ring)
WIDE = {"clip_bound": 2.0**20, "precision_bits": 24}

_UPDATES: dict[int, list[np.ndarray[Any, Any]]] = {}
_SHARDS: dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
_RETURNED: dict[int, list[np.ndarray[Any, Any]]] = {}  # what each client returned in the last round
_TRAIN_CPU: list[float] = []


def _local(node: int) -> list[np.ndarray[Any, Any]]:
    """Each client's fixed update (protocol mode), generated once outside every timed region."""
    if node not in _UPDATES:
        rng = np.random.default_rng(node)
        _UPDATES[node] = [(0.05 * rng.standard_normal(s)).astype(np.float32) for s in SHAPES]
    return _UPDATES[node]


SHARD = [100, 356]  # examples per client: 100 + node % 256 (--shard LOW:HIGH sets [LOW, HIGH + 1])


def _examples(node: int) -> int:
    return SHARD[0] + node % (SHARD[1] - SHARD[0])


def _shard(node: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Each client's training rows (train mode), generated once outside every timed region."""
    if node not in _SHARDS:
        centres = np.random.default_rng(12345).normal(0.0, 1.0, (LAYERS[-1], LAYERS[0]))
        rng = np.random.default_rng(node)
        y = rng.integers(0, LAYERS[-1], _examples(node))
        x = (centres[y] + 1.5 * rng.standard_normal((y.size, LAYERS[0]))).astype(np.float32)
        _SHARDS[node] = (x, y.astype(np.int64))
    return _SHARDS[node]


def _initial() -> list[np.ndarray[Any, Any]]:
    """torch's Linear initialisation, as ``keelml.federated.model.initial_weights`` draws it."""
    rng = np.random.default_rng(0)
    out = []
    for fan_in, fan_out in itertools.pairwise(LAYERS):
        bound = 1.0 / np.sqrt(fan_in)
        out.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        out.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return out


def _client_app(mods: list[Any], mode: str) -> Any:
    from flwr.client import NumPyClient
    from flwr.clientapp import ClientApp

    from keelml.federated.model import train_local

    class Client(NumPyClient):
        def __init__(self, node: int) -> None:
            self.node = node

        def fit(self, parameters: Any, config: Any) -> tuple[list[Any], int, dict[str, Any]]:
            if mode == "protocol":
                out = [p + u for p, u in zip(parameters, _local(self.node), strict=True)]
            else:
                started = time.thread_time()
                x, y = _shard(self.node)
                weights = [np.asarray(p, dtype=np.float32) for p in parameters]
                local = train_local(
                    weights,
                    x,
                    y,
                    epochs=EPOCHS,
                    batch_size=BATCH,
                    learning_rate=LEARNING_RATE,
                    proximal_mu=0.0,
                    seed=self.node,
                )
                out = local.weights
                _TRAIN_CPU.append(time.thread_time() - started)
            _RETURNED[self.node] = out
            return out, _examples(self.node), {}

    return ClientApp(client_fn=lambda ctx: Client(ctx.node_id).to_client(), mods=mods)


def flower_round(method: str, nodes: list[int], mode: str = "protocol") -> tuple[float, float, float, float]:
    """Wall seconds, CPU seconds of this process, max |error| against the exact weighted mean of what
    the clients returned, and the CPU seconds of local training inside the round.

    ``keelml``: default SecAggConfig (k = 2 ceil(log2 n), t = k // 2 + 1, range +-1024, the 32-bit ring
    with the precision that fits); ``-64``: the same graph with the wide range that was the default
    before (64-bit ring); ``-5``: 5 shares (Flower's count includes the client itself, so keelml gets
    k = 4), threshold 3; ``-full``: the complete graph, threshold a majority of n.
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
        "keelml-64": SecAggConfig(**WIDE),  # type: ignore[arg-type]
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
    grid = local_grid(_client_app(mods, mode), nodes)
    strategy = FedAvg(fraction_fit=1.0, min_fit_clients=len(nodes), min_available_clients=len(nodes))
    start = _initial() if mode == "train" else [np.zeros(s, dtype=np.float32) for s in SHAPES]
    context = legacy_context(grid, strategy, ndarrays_to_parameters(start))
    _RETURNED.clear()
    _TRAIN_CPU.clear()
    started, cpu = time.perf_counter(), time.process_time()
    workflow(grid, context)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    got = parameters_to_ndarrays(
        compat.arrayrecord_to_parameters(context.state.array_records[MAIN_PARAMS_RECORD], True)
    )
    if sorted(_RETURNED) != sorted(nodes):
        raise RuntimeError(f"{method}: {len(_RETURNED)} of {n} clients trained")
    weights = np.array([_examples(n) for n in nodes], dtype=np.float64)
    error = 0.0
    for i in range(len(SHAPES)):
        exact = (
            sum(w * _RETURNED[n][i].astype(np.float64) for n, w in zip(nodes, weights, strict=True))
            / weights.sum()
        )
        error = max(error, float(np.abs(got[i].astype(np.float64) - exact).max()))
    return elapsed, cpu, error, sum(_TRAIN_CPU)


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
    plan = SecAggConfig().plan(n)
    out: dict[str, Any] = {
        "ring": f"{plan.modulus_bits}-bit, {plan.precision_bits} fractional bits",
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
        "--full-graph", action="store_true", help="also run the complete graph at 50 clients (minutes)"
    )
    parser.add_argument(
        "--repetitions",
        default="50:5,200:3",
        help="clients:repetitions of the Flower round (a loaded machine may need fewer at 200)",
    )
    parser.add_argument("--modes", default=",".join(MODES), help="train and/or protocol")
    parser.add_argument("--output", default="secagg", help="results file name (without .json / .md)")
    parser.add_argument("--shard", default="100:355", help="LOW:HIGH examples per client (train mode)")
    args = parser.parse_args()
    low, high = (int(x) for x in args.shard.split(":"))
    SHARD[:] = [low, high + 1]
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= set(MODES):
        parser.error(f"--modes takes {' and '.join(MODES)}")
    load_start = os.getloadavg()[0]
    sparse = ["plain", "keelml", "keelml-64", "keelml-5", "flower-5"]
    sizes = [tuple(int(x) for x in pair.split(":")) for pair in args.repetitions.split(",")]
    plans = [(6, 2, sparse)] if args.quick else [(n, reps, sparse) for n, reps in sizes]
    if args.full_graph and not args.quick:
        plans.append((50, 1, ["plain", "keelml-full", "flower-full"]))
    warm = [1000 + 7919 * i for i in range(6)]
    for mode in modes:  # imports and first-call costs, outside every timed round
        for m in {m for *_, methods in plans for m in methods}:
            flower_round(m, warm, mode)
    runs: list[dict[str, Any]] = []
    for n, reps, methods in plans:
        nodes = [1000 + 7919 * i for i in range(n)]
        for node in nodes:
            _local(node)
            _shard(node)
        keys = [(mode, m) for mode in modes for m in methods]
        wall: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
        cpu: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
        train: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
        errors: dict[tuple[str, str], float] = {}
        for rep in range(reps):
            order = keys if rep % 2 == 0 else list(reversed(keys))  # interleave, alternate order
            for mode, m in order:
                elapsed, used, err, trained = flower_round(m, nodes, mode)
                wall[mode, m].append(elapsed)
                cpu[mode, m].append(used)
                train[mode, m].append(trained)
                errors[mode, m] = max(errors.get((mode, m), 0.0), err)
                print(
                    f"n={n} rep={rep} {mode} {m}: {elapsed:.3f}s wall {used:.3f}s cpu "
                    f"(training {trained:.3f}s) err={err:.2e} load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
        for mode in modes:
            pick = [(mode, m) for m in methods]
            runs.append(
                {
                    "clients": n,
                    "mode": mode,
                    "repetitions": reps,
                    "seconds": {m: _stats(wall[k]) for k in pick for m in [k[1]]},
                    "cpu_seconds": {m: _stats(cpu[k]) for k in pick for m in [k[1]]},
                    "training_cpu_seconds": {m: _stats(train[k]) for k in pick for m in [k[1]]},
                    "ratio_to_plain": _ratios({k[1]: wall[k] for k in pick}, methods),
                    "cpu_ratio_to_plain": _ratios({k[1]: cpu[k] for k in pick}, methods),
                    "max_abs_error": {k[1]: errors[k] for k in pick},
                }
            )
    proto = {n: protocol_only(n, reps) for n, reps in ([(6, 2)] if args.quick else sizes)}
    out = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_secagg.py"
        + (" --quick" if args.quick else "")
        + (" --full-graph" if args.full_graph else "")
        + (f" --repetitions {args.repetitions}" if args.repetitions != "50:5,200:3" else "")
        + (f" --modes {args.modes}" if modes != list(MODES) else "")
        + (f" --output {args.output}" if args.output != "secagg" else "")
        + (f" --shard {args.shard}" if args.shard != "100:355" else ""),
        "parameters": sum(int(np.prod(s)) for s in SHAPES),
        "local_training": f"{EPOCHS} epoch, batch {BATCH}, learning rate {LEARNING_RATE}, momentum 0.9; "
        f"{low} + node % {high + 1 - low} examples per client",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, SHARED with other jobs "
        f"(load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end)",
        "versions": {p: version(p) for p in ("numpy", "cryptography", "flwr")}
        | {"python": platform.python_version()},
        "flower_rounds": runs,
        "protocol_only": proto,
    }
    target = HERE / (".work" if args.quick else "results")
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{args.output}.json").write_text(json.dumps(out, indent=2))
    (target / f"{args.output}.md").write_text(markdown(out))
    print(markdown(out))


def _ratios(values: dict[str, list[float]], methods: list[str]) -> dict[str, dict[str, float]]:
    """Per method, the ratio to plain FedAvg of the same repetition (median, p90, ...)."""
    return {
        m: _stats([t / p for t, p in zip(values[m], values["plain"], strict=True)])
        for m in methods
        if m != "plain"
    }


RINGS = {"keelml": "32", "keelml-5": "32", "keelml-full": "32", "keelml-64": "64", "plain": "-"}


def markdown(out: dict[str, Any]) -> str:
    lines = [
        "# Secure aggregation: keelml SecAgg+ vs plain FedAvg vs Flower SecAgg+",
        "",
        f"Command: `{out['command']}`  ",
        f"Model: {out['parameters']:,} parameters (float32), FedAvg weighted by num_examples.  ",
        f"Local training (train mode): {out['local_training']}.  ",
        f"Machine: {out['machine']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + ".",
    ]
    titles = {
        "train": "FedAvg round with local training (each client: one local epoch of SGD on its shard)",
        "protocol": "Protocol only inside Flower (each client returns a fixed update: no training)",
    }
    for mode in MODES:
        rows = [r for r in out["flower_rounds"] if r["mode"] == mode]
        if not rows:
            continue
        lines += [
            "",
            f"## One Flower fit round, {titles[mode]}",
            "",
            "All clients run sequentially in one process; same ClientApp, same in-process Flower grid, "
            "methods and modes interleaved. Ratio = method / plain FedAvg of the same repetition and mode; "
            "median and p90 over repetitions. Wall = elapsed time; CPU = this process's CPU time (less "
            "disturbed by the other jobs); training = CPU seconds of local training inside the round.",
            "",
            "| clients | method | ring | wall median s | wall ratio median | wall ratio p90 "
            "| CPU median s | CPU ratio median | CPU ratio p90 | training CPU s | max abs error |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in rows:
            for m in run["seconds"]:
                cells = []
                for key, ratio_key in (("seconds", "ratio_to_plain"), ("cpu_seconds", "cpu_ratio_to_plain")):
                    r = run[ratio_key].get(m)
                    ratio = f"**{r['median']:.2f}x** | {r['p90']:.2f}x" if r else "1 | 1"
                    cells.append(f"{run[key][m]['median']:.3f} | {ratio}")
                lines.append(
                    f"| {run['clients']} | {m} | {RINGS.get(m, '32')} | "
                    + " | ".join(cells)
                    + f" | {run['training_cpu_seconds'][m]['median']:.3f}"
                    + f" | {run['max_abs_error'][m]:.1e} |"
                )
    lines += [
        "",
        "## Protocol only (no Flower messaging): `secure_sum` vs plain weighted sum (Flower's `aggregate`)",
        "",
        "Same `[w * params, w]` vectors (protocol mode's fixed updates), interleaved per repetition, default",
        "SecAggConfig. Server = the keelml server's own time in all four phases; critical path = per phase,",
        "server + the slowest client (clients in parallel). Wall time.",
        "",
        "| clients | ring | k / t | plain aggregate s | keelml server s (ratio) | critical path s (ratio) "
        "| all clients sequential s (ratio) |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for n, p in out["protocol_only"].items():
        cells = [f"{p['plain_aggregate_s']['median']:.4f}"]
        for key in ("secure_server_s", "secure_critical_path_s", "secure_sequential_s"):
            r = p[f"ratio_{key}"]
            cells.append(f"{p[key]['median']:.4f} ({r['median']:.2f}x, p90 {r['p90']:.2f}x)")
        lines.append(
            f"| {n} | {p['ring']} | {p['neighbours']} / {p['threshold']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
