"""One federated client: it holds its rows, runs the saved preprocessing on them, and returns updates.

Raw rows never leave a :class:`FederatedClient`; what it returns is the column statistics (once, to fit
the preprocessing), a clipped model update with its weight, and evaluation metrics.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.core.errors import EmptySourceError
from keelml.federated.aggregate import Vector, client_weight, clip, flatten
from keelml.federated.config import FederatedConfig
from keelml.federated.model import Weights, evaluate, train_local
from keelml.federated.preprocessing import ClientStats, SchemaMismatchError, TaskSpec, local_stats


@dataclass(frozen=True, slots=True)
class ClientUpdate:
    """What leaves a client after local training."""

    client: str
    update: Vector  # clipped (local weights - global weights), flat
    weight: float
    examples: int
    loss: float
    norm: float  # before clipping


class FederatedClient:
    def __init__(
        self, name: str, frame: pd.DataFrame, *, label: str, features: Sequence[str] | None = None
    ) -> None:
        if len(frame) == 0:
            raise EmptySourceError(
                f"client {name!r} has an empty partition",
                expected="at least one labelled row per client",
                received="0 rows",
                fix="give the client data, use fewer clients, or leave it out",
            )
        self.name = name
        self.label = label
        self.features = list(features) if features is not None else None
        self._frame = frame
        self._cache: tuple[int, npt.NDArray[np.float32], npt.NDArray[np.int64]] | None = None

    def stats(self) -> ClientStats:
        try:
            return local_stats(self._frame, label=self.label, features=self.features)
        except (SchemaMismatchError, EmptySourceError) as exc:
            exc.problem = f"client {self.name!r}: {exc.problem}"
            raise

    def _data(self, spec: TaskSpec) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The model's saved preprocessing, run here on this client's own rows (cached per spec)."""
        if self._cache is not None and self._cache[0] == id(spec):
            return self._cache[1], self._cache[2]
        frame = self._frame[self._frame[self.label].notna()]
        try:
            x = spec.preprocessing.transform(frame)
        except SchemaMismatchError as exc:
            exc.problem = f"client {self.name!r}: {exc.problem}"
            raise
        index = {c: i for i, c in enumerate(spec.classes)}
        labels = frame[self.label].astype(str)
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise SchemaMismatchError(
                f"client {self.name!r} has label values the federation does not know",
                expected=", ".join(spec.classes),
                received=", ".join(unknown[:10]),
                fix="use the same label values on every client",
            )
        y = np.array([index[v] for v in labels], dtype=np.int64)
        self._cache = (id(spec), x, y)
        return x, y

    def fit(
        self, global_weights: Weights, spec: TaskSpec, config: FederatedConfig, round_number: int
    ) -> ClientUpdate:
        # one seed per (run seed, round, client) on every engine, so the engines agree exactly
        seed = zlib.crc32(f"{config.seed}/{round_number}/{self.name}".encode())
        x, y = self._data(spec)
        local = train_local(
            global_weights,
            x,
            y,
            epochs=config.local_epochs,
            batch_size=config.batch_size,
            learning_rate=config.rate,
            proximal_mu=config.proximal_mu if config.strategy == "fedprox" else 0.0,
            seed=seed,
        )
        update, norm = clip(flatten(local.weights) - flatten(global_weights), config.clip)
        return ClientUpdate(
            self.name, update, client_weight(local.examples, config), local.examples, local.loss, norm
        )

    def evaluate(self, global_weights: Weights, spec: TaskSpec, config: FederatedConfig) -> dict[str, float]:
        x, y = self._data(spec)
        return {**evaluate(global_weights, x, y), "examples": float(len(y))}
