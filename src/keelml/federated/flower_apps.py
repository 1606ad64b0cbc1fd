"""Flower apps on the Message API: a ServerApp running keelml's rounds and a ClientApp wrapping a client.

Messages: ``query`` (column statistics, once), ``train`` (global weights in an ArrayRecord, the
config and task spec as JSON in a ConfigRecord; the reply carries the clipped update), ``evaluate``.
The server waits for every reply with a timeout; a missing or failed reply is a dropped client.
The module-level ``server_app`` / ``client_app`` are what SuperLink / SuperNode load in deployment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keelml.core.errors import InvalidInputError
from keelml.federated.aggregate import ServerOptimizer, flatten, noise_source, unflatten
from keelml.federated.client import ClientUpdate, FederatedClient
from keelml.federated.config import FederatedConfig
from keelml.federated.inprocess import EngineResult, HoldoutSet, RoundCallback, holdout_arrays
from keelml.federated.model import evaluate, initial_weights
from keelml.federated.preprocessing import ClientStats, SchemaMismatchError, TaskSpec, merge_stats
from keelml.federated.rounds import NotEnoughClientsError, RoundMetrics, aggregate_round, check_enough, log

ClientLoader = Callable[[Any], FederatedClient]  # Flower Context -> this node's client


# -- client side -------------------------------------------------------------------------------


def _spec_of(config_record: Any, cache: dict[str, TaskSpec]) -> TaskSpec:
    raw = str(config_record["spec"])
    if raw not in cache:
        cache.clear()
        cache[raw] = TaskSpec.from_json(json.loads(raw))
    return cache[raw]


def make_client_app(load: ClientLoader) -> Any:
    """A ClientApp whose handlers run a :class:`FederatedClient` built by ``load(context)``."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()
    specs: dict[str, TaskSpec] = {}
    clients: dict[int, FederatedClient] = {}

    def client(context: Any) -> FederatedClient:
        if context.node_id not in clients:
            clients[context.node_id] = load(context)
        return clients[context.node_id]

    @app.query()
    def stats(msg: Any, context: Any) -> Any:
        body = json.dumps(client(context).stats().to_json())
        return Message(RecordDict({"stats": ConfigRecord({"json": body})}), reply_to=msg)

    @app.train()
    def train(msg: Any, context: Any) -> Any:
        cfg = msg.content["config"]
        config = FederatedConfig.from_mapping(json.loads(str(cfg["federated"])))
        rnd = int(cfg["server-round"])
        if (
            config.dropout
            and np.random.default_rng([config.seed, rnd, context.node_id % 2**31]).random() < config.dropout
        ):
            raise ConnectionAbortedError(f"simulated dropout in round {rnd}")
        weights = [np.asarray(a, dtype=np.float32) for a in msg.content["arrays"].to_numpy_ndarrays()]
        update = client(context).fit(weights, _spec_of(cfg, specs), config, round_number=rnd)
        metrics = MetricRecord(
            {
                "num-examples": update.examples,
                "loss": update.loss,
                "norm": update.norm,
                "weight": update.weight,
            }
        )
        arrays = ArrayRecord([update.update.astype(np.float64)])
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    @app.evaluate()
    def evaluate_(msg: Any, context: Any) -> Any:
        cfg = msg.content["config"]
        config = FederatedConfig.from_mapping(json.loads(str(cfg["federated"])))
        weights = [np.asarray(a, dtype=np.float32) for a in msg.content["arrays"].to_numpy_ndarrays()]
        result = client(context).evaluate(weights, _spec_of(cfg, specs), config)
        return Message(RecordDict({"metrics": MetricRecord(dict(result))}), reply_to=msg)

    return app


# -- server side -------------------------------------------------------------------------------


def wait_for_nodes(grid: Any, wanted: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= wanted:
            return nodes
        if time.monotonic() > deadline:
            raise NotEnoughClientsError(
                f"only {len(nodes)} of {wanted} clients connected within {timeout:g} s",
                expected=f"{wanted} connected clients (SuperNodes)",
                received=str(len(nodes)),
                fix="start more clients (`keel fl client`), lower --clients, or raise --connect-timeout",
            )
        time.sleep(0.2)


def _send(
    grid: Any, nodes: list[int], kind: str, content: Callable[[], Any], timeout: float
) -> dict[int, Any]:
    """Replies by node id; nodes missing from the result did not answer in time or failed."""
    from flwr.app import Message

    messages = [Message(content(), dst_node_id=n, message_type=kind) for n in nodes]
    replies = grid.send_and_receive(messages, timeout=timeout)
    out: dict[int, Any] = {}
    for reply in replies:
        node = reply.metadata.src_node_id
        if reply.has_error():
            log.warning("%s: client node %d failed: %s", kind, node, reply.error.reason)
            out[node] = reply  # kept so callers can surface a client's own error message
        else:
            out[node] = reply
    return out


def collect_stats(grid: Any, nodes: list[int], config: FederatedConfig) -> TaskSpec:
    from flwr.app import RecordDict

    replies = _send(grid, nodes, "query", RecordDict, config.round_timeout)
    stats: list[ClientStats] = []
    for node in nodes:
        reply = replies.get(node)
        if reply is None:
            raise NotEnoughClientsError(
                f"client node {node} did not send its column statistics within {config.round_timeout:g} s",
                fix="check the client's log, or raise --round-timeout",
            )
        if reply.has_error():
            raise SchemaMismatchError(
                f"client node {node} could not prepare its data",
                received=reply.error.reason[-800:],
                fix="fix that client's data (columns, label, rows) and start it again",
            )
        stats.append(ClientStats.from_json(json.loads(str(reply.content["stats"]["json"]))))
    return merge_stats(stats, max_categories=config.max_categories)


def serve_rounds(
    grid: Any,
    config: FederatedConfig,
    *,
    test: HoldoutSet | None = None,
    on_round: RoundCallback | None = None,
    connect_timeout: float = 60.0,
) -> EngineResult:
    """keelml's federated rounds over a Flower Grid (simulation or deployment)."""
    from flwr.app import ArrayRecord, ConfigRecord, RecordDict

    if config.secure_agg != "off":
        raise InvalidInputError(
            "secure aggregation over Flower messages runs in its own workflow",
            received=f"--secure-agg {config.secure_agg}",
            fix="see keelml.federated.flower_secagg",
        )
    start = time.perf_counter()
    nodes = wait_for_nodes(grid, config.clients, connect_timeout)
    spec = collect_stats(grid, nodes, config)
    weights = initial_weights(spec, config.hidden, config.seed)
    held_out = holdout_arrays(spec, test)
    rng = np.random.default_rng(config.seed)
    noise_rng = noise_source(config)
    optimizer = ServerOptimizer(config)
    base = {"federated": json.dumps(config.to_json()), "spec": json.dumps(spec.to_json())}
    history: list[RoundMetrics] = []
    first = 0.0
    for r in range(1, config.rounds + 1):
        t0 = time.perf_counter()
        first = first or t0 - start
        k = max(config.min_clients, round(config.fraction_fit * len(nodes)))
        chosen = [
            nodes[i] for i in sorted(rng.choice(len(nodes), size=min(k, len(nodes)), replace=False).tolist())
        ]

        def content(r: int = r, weights: Any = weights) -> Any:
            return RecordDict(
                {
                    "arrays": ArrayRecord([w.copy() for w in weights]),
                    "config": ConfigRecord({**base, "server-round": r}),
                }
            )

        replies = _send(grid, chosen, "train", content, config.round_timeout)
        updates: list[ClientUpdate] = []
        dropped: list[str] = []
        for node in chosen:
            reply = replies.get(node)
            if reply is None or reply.has_error():
                dropped.append(f"node {node}" + (" (timed out)" if reply is None else ""))
                continue
            m = reply.content["metrics"]
            vector = np.asarray(reply.content["arrays"].to_numpy_ndarrays()[0], dtype=np.float64)
            updates.append(
                ClientUpdate(
                    f"node {node}",
                    vector,
                    float(m["weight"]),
                    int(m["num-examples"]),
                    float(m["loss"]),
                    float(m["norm"]),
                )
            )
        check_enough(r, len(updates), len(chosen), dropped, config)
        step = aggregate_round(updates, config, noise_rng)
        weights = unflatten(optimizer.step(flatten(weights), step), weights)
        if held_out is not None:
            metrics = evaluate(weights, *held_out)
        elif r == config.rounds:  # each message is a process start on a SuperNode: evaluate once, at the end
            metrics = federated_evaluate(grid, nodes, weights, base, config)
        else:
            metrics = {}
        bound = config.clip
        history.append(
            RoundMetrics(
                round=r,
                sampled=len(chosen),
                aggregated=len(updates),
                dropped=tuple(dropped),
                clipped=sum(1 for u in updates if bound is not None and u.norm > bound),
                train_loss=float(
                    np.average([u.loss for u in updates], weights=[u.examples for u in updates])
                ),
                update_norm=float(np.linalg.norm(step)),
                seconds=time.perf_counter() - t0,
                test=metrics,
            )
        )
        if on_round is not None:
            on_round(history[-1])
    return EngineResult(weights, spec, tuple(history), first)


def federated_evaluate(
    grid: Any, nodes: list[int], weights: Any, base: dict[str, Any], config: FederatedConfig
) -> dict[str, float]:
    """Example-weighted accuracy and loss of the global model on the clients' own rows."""
    from flwr.app import ArrayRecord, ConfigRecord, RecordDict

    def content() -> Any:
        return RecordDict({"arrays": ArrayRecord([w.copy() for w in weights]), "config": ConfigRecord(base)})

    replies = [
        r for r in _send(grid, nodes, "evaluate", content, config.round_timeout).values() if not r.has_error()
    ]
    if not replies:
        return {}
    n = np.array([float(r.content["metrics"]["examples"]) for r in replies])
    acc = np.array([float(r.content["metrics"]["accuracy"]) for r in replies])
    loss = np.array([float(r.content["metrics"]["loss"]) for r in replies])
    return {"accuracy": float((acc * n).sum() / n.sum()), "loss": float((loss * n).sum() / n.sum())}


# -- deployment: the apps SuperLink / SuperNode load by module path ----------------------------


def load_node_data(context: Any) -> FederatedClient:
    """A SuperNode's client: its own file (``--node-config data-path=...``), read on the node."""
    import pandas as pd

    cfg = context.node_config
    path = Path(str(cfg["data-path"]))
    label = str(cfg["label"])
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    features = [f for f in str(cfg.get("features", "")).split(",") if f] or None
    return FederatedClient(str(cfg.get("name", path.stem)), frame, label=label, features=features)


def _deployed_server_main(grid: Any, context: Any) -> None:
    cfg = context.run_config
    config = FederatedConfig.from_mapping(json.loads(str(cfg["keel-config"])))
    out = Path(str(cfg["keel-out"]))
    out.mkdir(parents=True, exist_ok=True)

    def report(m: RoundMetrics) -> None:
        with (out / "rounds.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"round": m.round, **m.scalars(), "dropped": list(m.dropped)}) + "\n")

    try:
        if config.secure_agg != "off":  # the clients run the matching mod (deploy_apps.COMPONENTS)
            from keelml.federated.flower_secagg import serve_secagg_rounds

            result = serve_secagg_rounds(grid, context, config, on_round=report)
        else:
            result = serve_rounds(
                grid, config, on_round=report, connect_timeout=float(cfg.get("keel-connect-timeout", 60))
            )
    except Exception as exc:  # the CLI reads this file; the SuperLink only logs tracebacks
        (out / "error.json").write_text(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        raise
    np.savez(out / "weights.npz", *result.weights)
    (out / "spec.json").write_text(json.dumps(result.spec.to_json()), encoding="utf-8")
    (out / "done.json").write_text(json.dumps({"rounds": len(result.history)}), encoding="utf-8")


def _deployed_server_app() -> Any:
    from flwr.serverapp import ServerApp

    server = ServerApp()
    server.main()(_deployed_server_main)
    return server


# what SuperLink / SuperNode load ("keelml.federated.flower_apps:server_app"); importing this module
# imports flwr, so the rest of keelml imports it only when a Flower engine runs
server_app = _deployed_server_app()
client_app = make_client_app(load_node_data)
