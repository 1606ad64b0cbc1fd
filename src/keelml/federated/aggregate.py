"""Server-side aggregation: norm bounding, weighted / robust means, client-level DP noise, server optimizers.

Everything works on flat float64 vectors of model *updates* (client weights minus global weights).

>>> import numpy as np
>>> ups = [np.array([1.0, 0.0]), np.array([3.0, 0.0]), np.array([100.0, 0.0])]
>>> robust_mean(ups, "median", 0.1).tolist()
[3.0, 0.0]
>>> clip(np.array([3.0, 4.0]), 1.0)[0].tolist()
[0.6000000000000001, 0.8]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from keelml.federated.config import FederatedConfig
from keelml.federated.model import Weights

Vector = npt.NDArray[np.float64]
MAX_WEIGHT = 1000.0  # examples per client are capped here for weighting (keeps weight * update bounded)


def flatten(weights: Sequence[npt.NDArray[np.float32]]) -> Vector:
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def unflatten(vector: Vector, like: Sequence[npt.NDArray[np.float32]]) -> Weights:
    out: Weights = []
    at = 0
    for w in like:
        out.append(vector[at : at + w.size].reshape(w.shape).astype(np.float32))
        at += w.size
    return out


def clip(update: Vector, bound: float | None) -> tuple[Vector, float]:
    """Scale ``update`` down to L2 norm ``bound``; returns the clipped update and its original norm."""
    norm = float(np.linalg.norm(update))
    if bound is None or norm <= bound:
        return update, norm
    return update * (bound / norm), norm


def client_weight(examples: int, config: FederatedConfig) -> float:
    """FedAvg weights by examples; client-level DP weighs clients equally (sensitivity = clip / n)."""
    if config.client_dp is not None:
        return 1.0
    return min(float(examples), MAX_WEIGHT) / MAX_WEIGHT


def weighted_mean(updates: Sequence[Vector], weights: Sequence[float]) -> Vector:
    w = np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), np.stack(updates), axes=1)


def robust_mean(updates: Sequence[Vector], kind: str, trim_fraction: float) -> Vector:
    """Coordinate-wise median, or trimmed mean dropping ``trim_fraction`` of clients at each end."""
    stacked = np.stack(updates)
    if kind == "median":
        return np.median(stacked, axis=0)
    k = int(trim_fraction * len(updates))
    ordered = np.sort(stacked, axis=0)
    return ordered[k : len(updates) - k].mean(axis=0)  # type: ignore[no-any-return]


class NoiseSource(Protocol):
    """numpy's ``Generator.normal`` signature (a Generator, or keelml's SecureGaussian)."""

    def normal(self, loc: float = ..., scale: float = ..., size: Any = ...) -> Any: ...


def noise_source(config: FederatedConfig) -> NoiseSource:
    """Where the server's DP noise comes from: a CSPRNG (AES-256-CTR keyed by os.urandom, hardened
    sampling) with ``secure_noise`` (the default), else numpy seeded by the run's seed (reproducible,
    but whoever knows the seed can subtract the noise)."""
    if config.secure_noise and config.client_dp is not None:
        from keelml.core.securerandom import SecureGaussian

        return SecureGaussian()
    return np.random.default_rng([config.seed, 1])


def dp_noise(size: int, config: FederatedConfig, rng: NoiseSource) -> Vector:
    """Gaussian noise for the *sum* of clipped updates: std = noise multiplier * clip."""
    assert config.client_dp is not None
    bound, multiplier = config.client_dp
    return np.asarray(rng.normal(0.0, multiplier * bound, size), dtype=np.float64)


@dataclass
class ServerOptimizer:
    """Applies the aggregated update: FedAvg / FedProx step, or FedAdam (Reddi et al. 2021)."""

    config: FederatedConfig
    m: Vector | None = field(default=None, repr=False)
    v: Vector | None = field(default=None, repr=False)

    def step(self, global_vector: Vector, update: Vector) -> Vector:
        if self.config.strategy != "fedadam":
            return global_vector + update
        beta1, beta2, tau = 0.9, 0.99, 1e-3
        self.m = update * (1 - beta1) if self.m is None else beta1 * self.m + (1 - beta1) * update
        self.v = update**2 * (1 - beta2) if self.v is None else beta2 * self.v + (1 - beta2) * update**2
        return global_vector + self.config.server_learning_rate * self.m / (np.sqrt(self.v) + tau)
