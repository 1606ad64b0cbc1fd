"""One round on the server, whatever the transport: sampled clients in, new global weights out.

Used by the in-process engine and by the Flower ServerApp, so both aggregate identically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keelml.core.errors import BackendUnavailableError, MissingDependencyError
from keelml.federated.aggregate import NoiseSource, ServerOptimizer, Vector, dp_noise, robust_mean
from keelml.federated.client import ClientUpdate
from keelml.federated.config import FederatedConfig

log = logging.getLogger("keelml.federated")


class NotEnoughClientsError(BackendUnavailableError):
    """Too few clients answered a round (dropouts or timeouts) to aggregate it."""


@dataclass(frozen=True, slots=True)
class RoundMetrics:
    round: int
    sampled: int
    aggregated: int
    dropped: tuple[str, ...]
    clipped: int
    train_loss: float
    update_norm: float
    seconds: float
    test: dict[str, float] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        out = {
            "clients_sampled": float(self.sampled),
            "clients_aggregated": float(self.aggregated),
            "clients_dropped": float(len(self.dropped)),
            "clients_clipped": float(self.clipped),
            "train_loss": self.train_loss,
            "update_norm": self.update_norm,
            "round_seconds": self.seconds,
        }
        out.update({f"test_{k}": v for k, v in self.test.items()})
        return out


def check_enough(
    round_number: int, got: int, sampled: int, dropped: Sequence[str], config: FederatedConfig
) -> None:
    if dropped:
        log.warning(
            "round %d: %d of %d clients dropped out (%s); continuing with %d",
            round_number,
            len(dropped),
            sampled,
            ", ".join(dropped[:10]),
            got,
        )
    if got < config.min_clients:
        raise NotEnoughClientsError(
            f"round {round_number}: only {got} of {sampled} sampled clients answered",
            expected=f"at least min_clients = {config.min_clients} updates",
            received=f"{got} updates; dropped or timed out: {', '.join(dropped[:10]) or 'none'}",
            fix="lower --min-clients, sample more clients (--fraction-fit), or raise --round-timeout",
        )


SecureSum = Callable[[Sequence[Vector], Collection[int]], Vector]


def keelml_secure_sum(config: FederatedConfig) -> SecureSum:
    """The secagg subpackage's in-process SecAgg+ (sum of surviving clients' vectors)."""
    try:
        from keelml.federated.secagg import SecAggConfig, secure_sum
    except ImportError as exc:  # the protocol lands separately; say so instead of a bare ImportError
        raise MissingDependencyError(
            "--secure-agg keelml needs keelml.federated.secagg, which is not available in this install",
            received=str(exc),
            fix="use --secure-agg flower (with --engine flower) or --secure-agg off",
        ) from exc

    def run(vectors: Sequence[Vector], vanished: Collection[int]) -> Vector:
        # unclipped updates have no declared bound: the wide range (64-bit ring), not the default +-1024
        wide = SecAggConfig(clip_bound=2.0**20, precision_bits=24)
        result: Any = secure_sum(list(vectors), wide, dropped_before_masking=vanished)
        return np.asarray(result.total, dtype=np.float64)

    return run


def aggregate_round(
    updates: Sequence[ClientUpdate],
    config: FederatedConfig,
    rng: NoiseSource,
    *,
    secure_sum: SecureSum | None = None,
    vanished: Collection[int] = (),
) -> Vector:
    """The aggregated update (to add to the global weights via the server optimizer).

    With secure aggregation the server only learns sums: each client contributes ``[w * update, w]``
    and the server divides. ``vanished`` indexes ``updates`` whose owners shared their keys and then
    vanished before sending their masked input: the protocol removes their masks through their
    neighbours' shares and their update is not in the sum.
    """
    if config.robust is not None:
        return robust_mean([u.update for u in updates], config.robust, config.trim_fraction)
    if secure_sum is not None:
        vectors = [np.append(u.weight * u.update, u.weight) for u in updates]
        total = secure_sum(vectors, vanished)
        summed, weight = total[:-1], float(total[-1])
    else:
        summed = np.sum([u.weight * u.update for u in updates], axis=0)
        weight = float(sum(u.weight for u in updates))
    if config.client_dp is not None:
        summed = summed + dp_noise(summed.size, config, rng)
    return summed / weight


__all__ = ["RoundMetrics", "ServerOptimizer", "aggregate_round", "check_enough", "keelml_secure_sum"]


def round_metrics(
    round_number: int,
    sampled: int,
    aggregated: Sequence[ClientUpdate],
    dropped: Sequence[str],
    step: Vector,
    seconds: float,
    test: dict[str, float],
    config: FederatedConfig,
) -> RoundMetrics:
    """One round's record, from the updates that went into the aggregate (both engines build it so)."""
    bound = config.clip
    return RoundMetrics(
        round=round_number,
        sampled=sampled,
        aggregated=len(aggregated),
        dropped=tuple(dropped),
        clipped=sum(1 for u in aggregated if bound is not None and u.norm > bound),
        train_loss=float(np.average([u.loss for u in aggregated], weights=[u.examples for u in aggregated])),
        update_norm=float(np.linalg.norm(step)),
        seconds=seconds,
        test=test,
    )
