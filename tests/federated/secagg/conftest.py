from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keelml.federated.secagg import SecAggClient, SecAggConfig, SecAggServer
from keelml.federated.secagg.wire import Phase


class Round:
    """A server and its clients driven phase by phase, so a test can interfere between phases."""

    def __init__(
        self, updates: Sequence[npt.NDArray[np.float64]], config: SecAggConfig | None = None
    ) -> None:
        self.updates = list(updates)
        self.server = SecAggServer(config or SecAggConfig(full_graph=True), list(range(len(updates))))
        self.clients = {c: SecAggClient(c) for c in range(len(updates))}
        self.requests: dict[int, bytes] = {}
        self.replies: dict[int, bytes] = {}

    def ask(self) -> dict[int, bytes]:
        self.requests = self.server.requests()
        return self.requests

    def answer(self, skip: frozenset[int] = frozenset()) -> dict[int, bytes]:
        phase = self.server.phase
        self.replies = {
            c: self.clients[c].handle(data, self.updates[c] if phase == Phase.MASKED_INPUT else None)
            for c, data in self.requests.items()
            if c not in skip
        }
        return self.replies

    def step(self, skip: frozenset[int] = frozenset()) -> None:
        self.ask()
        self.server.collect(self.answer(skip))

    def run_to(self, phase: Phase) -> None:
        while self.server.phase < phase:
            self.step()


def vectors(n: int, d: int, seed: int = 0, scale: float = 1.0) -> list[npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=d) for _ in range(n)]
