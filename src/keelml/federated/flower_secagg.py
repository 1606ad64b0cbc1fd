"""Secure aggregation on Flower's engine, around keelml's rounds: Flower's SecAgg+ workflow
(``--secure-agg flower``) or keelml's (``--secure-agg keelml``: KeelSecAggWorkflow, keelml_secagg_mod).

Both run in Flower's legacy strategy API and yield only the example-weighted *mean* of what clients
return, so clients return their clipped update and the server applies it (plus DP noise and the server
optimizer) in ``aggregate_fit``. Values outside +-8 would be silently clipped by Flower's quantizer, so
updates are L2-clipped to 8 for it (which bounds every coordinate); keelml's protocol refuses out-of-
range values. The mods act on the train handler only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from keelml.federated.aggregate import (
    MAX_WEIGHT,
    ServerOptimizer,
    dp_noise,
    flatten,
    noise_source,
    unflatten,
)
from keelml.federated.client import FederatedClient
from keelml.federated.config import FederatedConfig
from keelml.federated.inprocess import EngineResult, HoldoutSet, RoundCallback, holdout_arrays
from keelml.federated.model import Weights, evaluate, initial_weights
from keelml.federated.preprocessing import ClientStats, TaskSpec, merge_stats
from keelml.federated.rounds import NotEnoughClientsError, RoundMetrics, check_enough

FLOWER_CLIPPING_RANGE = 8.0


def _secagg_config(config: FederatedConfig) -> FederatedConfig:
    if config.secure_agg == "keelml":  # keelml's encoding refuses out-of-range values instead of clipping
        return config
    bound = min(config.clip or FLOWER_CLIPPING_RANGE, FLOWER_CLIPPING_RANGE)
    if config.client_dp is not None:
        return replace(config, client_dp=(bound, config.client_dp[1]))
    return replace(config, max_update_norm=bound)


def make_secagg_client_app(load: Callable[[Any], FederatedClient], protocol: str = "flower") -> Any:
    """A ClientApp with Flower's ``secaggplus_mod`` or keelml's ``keelml_secagg_mod`` (train only)."""
    from flwr.client import NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.clientapp import ClientApp

    from keelml.federated.secagg.flower_client import keelml_secagg_mod

    class KeelNumPyClient(NumPyClient):
        def __init__(self, client: FederatedClient) -> None:
            self.client = client

        def get_properties(self, config: dict[str, Any]) -> dict[str, Any]:
            return {"stats": json.dumps(self.client.stats().to_json())}

        def fit(self, parameters: list[Any], config: dict[str, Any]) -> tuple[list[Any], int, dict[str, Any]]:
            cfg = FederatedConfig.from_mapping(json.loads(str(config["federated"])))
            spec = TaskSpec.from_json(json.loads(str(config["spec"])))
            weights = [np.asarray(p, dtype=np.float32) for p in parameters]
            rnd = int(config["server-round"])
            update = self.client.fit(weights, spec, cfg, round_number=rnd)
            # the weight SecAgg+ multiplies by: equal under client DP, else examples capped at MAX_WEIGHT
            weight = 1 if cfg.client_dp is not None else int(min(update.examples, MAX_WEIGHT))
            return [update.update.astype(np.float64)], weight, {"loss": update.loss, "norm": update.norm}

        def evaluate(
            self, parameters: list[Any], config: dict[str, Any]
        ) -> tuple[float, int, dict[str, Any]]:
            cfg = FederatedConfig.from_mapping(json.loads(str(config["federated"])))
            spec = TaskSpec.from_json(json.loads(str(config["spec"])))
            weights = [np.asarray(p, dtype=np.float32) for p in parameters]
            result = self.client.evaluate(weights, spec, cfg)
            return float(result["loss"]), int(result["examples"]), {"accuracy": float(result["accuracy"])}

    def client_fn(context: Any) -> Any:
        return KeelNumPyClient(load(context)).to_client()

    return ClientApp(
        client_fn=client_fn, mods=[keelml_secagg_mod if protocol == "keelml" else secaggplus_mod]
    )


def _strategy(
    config: FederatedConfig, test: HoldoutSet | None, on_round: RoundCallback | None, box: dict[str, Any]
) -> Any:
    from flwr.common import (
        EvaluateIns,
        FitIns,
        GetPropertiesIns,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
    )
    from flwr.server.strategy import Strategy

    class KeelSecAggStrategy(Strategy):
        def __init__(self) -> None:
            self.spec: TaskSpec | None = None
            self.weights: Weights = []
            self.optimizer = ServerOptimizer(config)
            self.noise = noise_source(config)
            self.rng = np.random.default_rng(config.seed)
            self.held_out: Any = None
            self.history: list[RoundMetrics] = []
            self.sampled = 0

        def initialize_parameters(self, client_manager: Any) -> Any:
            if not client_manager.wait_for(config.clients, timeout=config.round_timeout):
                raise NotEnoughClientsError(f"fewer than {config.clients} clients connected in time")
            stats = []
            for proxy in client_manager.all().values():
                res = proxy.get_properties(GetPropertiesIns({}), timeout=config.round_timeout, group_id=None)
                stats.append(ClientStats.from_json(json.loads(str(res.properties["stats"]))))
            self.spec = merge_stats(stats, max_categories=config.max_categories)
            self.held_out = holdout_arrays(self.spec, test)
            self.weights = initial_weights(self.spec, config.hidden, config.seed)
            return ndarrays_to_parameters(self.weights)

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> list[Any]:
            assert self.spec is not None
            box["t0"] = time.perf_counter()
            if server_round == 1:
                box["first"] = box["t0"] - box["start"]
            n = client_manager.num_available()
            k = max(config.min_clients, round(config.fraction_fit * n))
            proxies = client_manager.sample(num_clients=min(k, n), min_num_clients=config.min_clients)
            self.sampled = len(proxies)
            return [
                (p, FitIns(ndarrays_to_parameters(self.weights), self._config(server_round))) for p in proxies
            ]

        def _config(self, server_round: int) -> dict[str, Any]:
            assert self.spec is not None
            return {
                "federated": json.dumps(config.to_json()),
                "spec": json.dumps(self.spec.to_json()),
                "server-round": server_round,
            }

        def aggregate_fit(
            self, server_round: int, results: list[Any], failures: list[Any]
        ) -> tuple[Any, dict[str, Any]]:
            dropped = [f"failure {i}" for i in range(len(failures))]
            check_enough(server_round, len(results), self.sampled, dropped, config)
            mean = flatten(parameters_to_ndarrays(results[0][1].parameters))
            if config.client_dp is not None:  # noise for the sum, scaled to the mean of equal weights
                mean = mean + dp_noise(mean.size, config, self.noise) / len(results)
            self.weights = unflatten(self.optimizer.step(flatten(self.weights), mean), self.weights)
            metrics = evaluate(self.weights, *self.held_out) if self.held_out is not None else {}
            losses = [float(r[1].metrics.get("loss", float("nan"))) for r in results]
            bound = config.clip
            norms = [float(r[1].metrics.get("norm", 0.0)) for r in results]
            self.history.append(
                RoundMetrics(
                    round=server_round,
                    sampled=self.sampled,
                    aggregated=len(results),
                    dropped=tuple(dropped),
                    clipped=sum(1 for v in norms if bound is not None and v > bound),
                    train_loss=float(np.mean(losses)),
                    update_norm=float(np.linalg.norm(mean)),
                    seconds=time.perf_counter() - box["t0"],
                    test=metrics,
                )
            )
            if on_round is not None and not self._evaluates_on_clients(server_round):
                on_round(self.history[-1])
            return ndarrays_to_parameters(self.weights), {}

        def _evaluates_on_clients(self, server_round: int) -> bool:
            """Without held-out rows (deployment) the last model is evaluated on the clients' own rows."""
            return self.held_out is None and server_round == config.rounds

        def configure_evaluate(self, server_round: int, parameters: Any, client_manager: Any) -> list[Any]:
            if not self._evaluates_on_clients(server_round) or len(self.history) < server_round:
                return []
            ins = EvaluateIns(ndarrays_to_parameters(self.weights), self._config(server_round))
            return [(p, ins) for p in client_manager.all().values()]

        def aggregate_evaluate(
            self, server_round: int, results: list[Any], failures: list[Any]
        ) -> tuple[Any, dict[str, Any]]:
            if not self._evaluates_on_clients(server_round) or len(self.history) < server_round:
                return None, {}
            n = np.array([float(r[1].num_examples) for r in results])
            metrics: dict[str, float] = {}
            if n.sum() > 0:  # example-weighted, as the plain deployment's federated evaluation
                accuracy = np.array([float(r[1].metrics["accuracy"]) for r in results])
                loss = np.array([float(r[1].loss) for r in results])
                metrics = {
                    "accuracy": float((accuracy * n).sum() / n.sum()),
                    "loss": float((loss * n).sum() / n.sum()),
                }
            self.history[-1] = replace(self.history[-1], test=metrics)
            if on_round is not None:
                on_round(self.history[-1])
            return None, metrics

        def evaluate(self, server_round: int, parameters: Any) -> Any:
            return None

    return KeelSecAggStrategy()


def serve_secagg_rounds(
    grid: Any,
    context: Any,
    config: FederatedConfig,
    *,
    test: HoldoutSet | None = None,
    on_round: RoundCallback | None = None,
) -> EngineResult:
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

    start = time.perf_counter()
    config = _secagg_config(config)
    shares = min(config.secagg_shares, config.clients)
    if shares % 2 == 0:
        shares = shares - 1 if shares > 3 else config.clients
    box: dict[str, Any] = {"start": start}
    strategy = _strategy(config, test, on_round, box)
    legacy = LegacyContext(
        context=context,
        config=ServerConfig(num_rounds=config.rounds, round_timeout=config.round_timeout),
        strategy=strategy,
    )
    if config.secure_agg == "keelml":
        from keelml.federated.secagg import SecAggConfig
        from keelml.federated.secagg.flower_server import KeelSecAggWorkflow

        weighting: Literal["uniform", "num_examples"] = "uniform" if config.client_dp else "num_examples"
        fit_workflow: Any = KeelSecAggWorkflow(
            # weight (up to MAX_WEIGHT) * unclipped update has no declared bound: the wide 64-bit range
            SecAggConfig(clip_bound=2.0**20, precision_bits=24, phase_timeout_s=config.round_timeout),
            weighting=weighting,
        )
    else:
        fit_workflow = SecAggPlusWorkflow(
            num_shares=shares,
            reconstruction_threshold=max(2, shares // 2 + 1),
            max_weight=MAX_WEIGHT,
            clipping_range=FLOWER_CLIPPING_RANGE,
            timeout=config.round_timeout,
        )
    workflow = DefaultWorkflow(fit_workflow=fit_workflow)
    workflow(grid, legacy)
    if strategy.spec is None or len(strategy.history) < config.rounds:
        raise NotEnoughClientsError(
            f"Flower's SecAgg+ finished {len(strategy.history)} of {config.rounds} rounds",
            received="secure aggregation halted (too few clients answered, or too few shares to unmask)",
            fix="lower --dropout, raise --clients, or use --secure-agg keelml",
        )
    return EngineResult(strategy.weights, strategy.spec, tuple(strategy.history), float(box["first"]))
