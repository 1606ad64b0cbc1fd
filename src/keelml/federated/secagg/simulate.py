"""Run a whole SecAgg+ round in one process: every client and the server are separate objects that
exchange only serialised messages, through the same code paths as the Flower integration.

>>> import numpy as np
>>> updates = [np.full(4, float(i)) for i in range(5)]
>>> result = secure_sum(updates, SecAggConfig(), dropped_after_masking={1})
>>> result.total.tolist(), result.survivors, result.unmasked_via_shares
([10.0, 10.0, 10.0, 10.0], (0, 1, 2, 3, 4), (1,))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError
from keelml.federated.secagg.client import SecAggClient
from keelml.federated.secagg.config import SecAggConfig
from keelml.federated.secagg.errors import ThresholdNotMetError
from keelml.federated.secagg.fixedpoint import decode
from keelml.federated.secagg.server import SecAggServer
from keelml.federated.secagg.wire import Phase

Tap = Callable[[Phase, int, bytes], None]


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    """Seconds spent in one phase: by the server, by all clients together, and by the slowest client."""

    phase: str
    server_s: float
    clients_total_s: float
    clients_max_s: float


@dataclass(frozen=True, slots=True)
class SecAggResult:
    """The outcome of one round. ``total`` is the decoded sum of the survivors' updates.

    ``survivors`` are the clients whose update is in ``total`` (their masked input arrived), including
    ``unmasked_via_shares``: clients that vanished after sending it and were unmasked through their
    neighbours' shares. ``dropped`` are the clients whose update is not in ``total``.
    """

    total: npt.NDArray[np.float64]
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    unmasked_via_shares: tuple[int, ...]
    error_bound: float  # max |total - exact sum| per coordinate
    neighbours: int
    threshold: int
    timings: tuple[PhaseTiming, ...]
    server_bytes_received: int
    rejected: tuple[str, ...] = field(default=())

    @property
    def critical_path_s(self) -> float:
        """Round time if clients ran in parallel: per phase, the server plus the slowest client."""
        return sum(t.server_s + t.clients_max_s for t in self.timings)

    @property
    def sequential_s(self) -> float:
        """Round time with every client run one after another in this process."""
        return sum(t.server_s + t.clients_total_s for t in self.timings)


def secure_sum(
    updates: Sequence[npt.NDArray[np.floating]],
    config: SecAggConfig,
    *,
    dropped_after_masking: Collection[int] = (),
    dropped_before_masking: Collection[int] = (),
) -> SecAggResult:
    """Sum ``updates`` (client i holds ``updates[i]``) under SecAgg+.

    ``dropped_before_masking``: clients that share their keys, then vanish before sending their masked
    input (their pairwise masks are removed through their neighbours' shares; their update is not in
    the total). ``dropped_after_masking``: clients that send their masked input, then vanish (their
    self mask is removed through their neighbours' shares; their update is in the total).
    """
    drops: dict[int, Phase] = {c: Phase.MASKED_INPUT for c in dropped_before_masking}
    for c in dropped_after_masking:
        if c in drops:
            raise InvalidInputError(
                f"client {c} is listed as dropped both before and after masking",
                expected="disjoint dropout sets",
                received=str(c),
                fix="list each dropped client once",
            )
        drops[c] = Phase.UNMASK
    return run_round(updates, config, drops=drops)


def run_round(
    updates: Sequence[npt.NDArray[np.floating]],
    config: SecAggConfig,
    *,
    drops: Mapping[int, Phase] | None = None,
    tap: Tap | None = None,
    clients: Mapping[int, SecAggClient] | None = None,
) -> SecAggResult:
    """Drive one round; ``drops[c] = phase`` makes client c vanish when that phase's request arrives.

    ``tap(phase, client, data)`` sees every message the server receives (used to audit its view);
    ``clients`` lets a caller hold on to the client objects (client i answers for ``updates[i]``).
    """
    arrays = [np.asarray(u) for u in updates]
    shape = _check_updates(arrays)
    n = len(arrays)
    drops = dict(drops or {})
    if not set(drops) <= set(range(n)):
        raise InvalidInputError(
            "dropped clients that do not exist",
            expected=f"client indices in [0, {n})",
            received=str(sorted(set(drops) - set(range(n)))),
            fix="use positions in the updates sequence",
        )
    server = SecAggServer(config, list(range(n)))
    clients = dict(clients) if clients is not None else {c: SecAggClient(c) for c in range(n)}
    timings, received = [], 0
    for phase in Phase:
        requests = server.requests()
        deadline = time.perf_counter() + config.phase_timeout_s
        replies: dict[int, bytes] = {}
        spent: list[float] = []
        for cid, data in requests.items():
            if drops.get(cid, Phase.UNMASK + 1) <= phase:
                continue
            started = time.perf_counter()
            update = arrays[cid] if phase == Phase.MASKED_INPUT else None
            reply = clients[cid].handle(data, update)
            spent.append(time.perf_counter() - started)
            if time.perf_counter() > deadline:  # a late reply is a dropout, as over a network
                continue
            if tap is not None:
                tap(phase, cid, reply)
            received += len(reply)
            replies[cid] = reply
        server.collect(replies)
        timings.append(
            PhaseTiming(
                phase.name.lower(), server.server_seconds.get(phase, 0.0), sum(spent), max(spent, default=0)
            )
        )
    total = server.unmask()
    plan = server.plan
    decoded = decode(total, plan)
    survivors = tuple(sorted(server.masked))
    last = timings[-1]
    timings[-1] = PhaseTiming(
        last.phase, server.server_seconds[Phase.UNMASK], last.clients_total_s, last.clients_max_s
    )
    return SecAggResult(
        total=decoded.reshape(shape),
        survivors=survivors,
        dropped=tuple(c for c in range(n) if c not in server.masked),
        unmasked_via_shares=tuple(sorted(server.masked - server.responders)),
        error_bound=plan.error_bound(len(survivors), float(np.abs(decoded).max(initial=0.0))),
        neighbours=plan.neighbours,
        threshold=plan.threshold,
        timings=tuple(timings),
        server_bytes_received=received,
        rejected=tuple(f"client {c}: {err.problem}" for c, err in server.rejections),
    )


def _check_updates(arrays: Sequence[npt.NDArray[np.generic]]) -> tuple[int, ...]:
    if len(arrays) < 3:
        raise InvalidInputError(
            "secure aggregation needs at least 3 client updates",
            expected="3 or more arrays",
            received=str(len(arrays)),
            fix="sample more clients",
        )
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise InvalidInputError(
            "client updates have different shapes",
            expected="one shape for every update",
            received=", ".join(sorted(str(s) for s in shapes)),
            fix="send updates of the same model",
        )
    if not all(np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) for a in arrays):
        raise InvalidInputError("client updates must be numeric arrays", fix="convert them with np.asarray")
    return arrays[0].shape


__all__ = ["PhaseTiming", "SecAggResult", "ThresholdNotMetError", "run_round", "secure_sum"]
