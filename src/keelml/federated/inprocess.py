"""The fast in-process engine: clients are objects in this process, rounds are function calls.

No Ray, no gRPC: the first round starts as soon as torch is imported. The same client code and the
same server aggregation (:mod:`keelml.federated.rounds`) run under Flower's engines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.federated.aggregate import ServerOptimizer, flatten, noise_source, unflatten
from keelml.federated.client import ClientUpdate, FederatedClient
from keelml.federated.config import FederatedConfig
from keelml.federated.model import Weights, evaluate, initial_weights
from keelml.federated.preprocessing import TaskSpec, merge_stats
from keelml.federated.rounds import (
    RoundMetrics,
    aggregate_round,
    check_enough,
    keelml_secure_sum,
    round_metrics,
)

RoundCallback = Callable[[RoundMetrics], None]


@dataclass(frozen=True, slots=True)
class HoldoutSet:
    """Held-out rows the simulation evaluates the global model on each round (simulation only)."""

    frame: Any  # a pandas DataFrame with the feature columns
    labels: Sequence[str]


@dataclass(frozen=True, slots=True)
class EngineResult:
    weights: Weights
    spec: TaskSpec
    history: tuple[RoundMetrics, ...]
    seconds_to_first_round: float


def sample_clients(n: int, config: FederatedConfig, rng: np.random.Generator) -> list[int]:
    k = max(config.min_clients, round(config.fraction_fit * n))
    return sorted(rng.choice(n, size=min(k, n), replace=False).tolist())


def holdout_arrays(
    spec: TaskSpec, test: HoldoutSet | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
    if test is None:
        return None
    import pandas as pd

    frame = test.frame if isinstance(test.frame, pd.DataFrame) else pd.DataFrame(test.frame)
    index = {c: i for i, c in enumerate(spec.classes)}
    keep = [i for i, v in enumerate(test.labels) if str(v) in index]
    y = np.array([index[str(test.labels[i])] for i in keep], dtype=np.int64)
    return spec.preprocessing.transform(frame.iloc[keep]), y


def run_inprocess(
    clients: Sequence[FederatedClient],
    config: FederatedConfig,
    *,
    test: HoldoutSet | None = None,
    on_round: RoundCallback | None = None,
    progress: Progress | None = None,
) -> EngineResult:
    if config.secure_agg == "flower":
        raise InvalidInputError(
            "Flower's SecAgg+ runs only on Flower's engine",
            expected="--secure-agg flower with --engine flower, or --secure-agg keelml in-process",
            received="--secure-agg flower with the in-process engine",
            fix="add --engine flower, or use --secure-agg keelml",
        )
    start = time.perf_counter()
    progress = progress or NoProgress()
    secure = keelml_secure_sum(config) if config.secure_agg == "keelml" else None
    spec = merge_stats([c.stats() for c in clients], max_categories=config.max_categories)
    weights = initial_weights(spec, config.hidden, config.seed)
    held_out = holdout_arrays(spec, test)
    rng = np.random.default_rng(config.seed)
    noise_rng = noise_source(config)
    optimizer = ServerOptimizer(config)
    history: list[RoundMetrics] = []
    first_round = 0.0
    progress.stage("federated rounds", total=config.rounds)
    for r in range(1, config.rounds + 1):
        t0 = time.perf_counter()
        if r == 1:
            first_round = t0 - start
        chosen = sample_clients(len(clients), config, rng)
        # who vanishes mid-round: a lost reply, or under secure aggregation after sharing keys and
        # before sending the masked input (the protocol must then remove the vanished client's masks)
        vanish = {i for i in chosen if rng.random() < config.dropout}
        deadline = t0 + config.round_timeout
        updates: list[ClientUpdate] = []
        dropped: list[str] = []
        for i in chosen:
            update = clients[i].fit(weights, spec, config, round_number=r)
            late = time.perf_counter() > deadline
            if (i in vanish and secure is None) or late:
                dropped.append(clients[i].name + (" (timed out)" if late else ""))
                continue
            updates.append(update)
        vanished_idx = [
            j for j, u in enumerate(updates) if secure is not None and _index(clients, u) in vanish
        ]
        dropped += [updates[j].client for j in vanished_idx]
        check_enough(r, len(updates) - len(vanished_idx), len(chosen), dropped, config)
        survivors = [u for j, u in enumerate(updates) if j not in vanished_idx]
        step = aggregate_round(updates, config, noise_rng, secure_sum=secure, vanished=vanished_idx)
        vector = optimizer.step(flatten(weights), step)
        weights = unflatten(vector, weights)
        metrics = evaluate(weights, *held_out) if held_out is not None else {}
        seconds = time.perf_counter() - t0
        history.append(round_metrics(r, len(chosen), survivors, dropped, step, seconds, metrics, config))
        if on_round is not None:
            on_round(history[-1])
        progress.advance()
    return EngineResult(weights, spec, tuple(history), first_round)


def _index(clients: Sequence[FederatedClient], update: ClientUpdate) -> int:
    return next(i for i, c in enumerate(clients) if c.name == update.client)
