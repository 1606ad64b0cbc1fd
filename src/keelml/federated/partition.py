"""Splitting rows across simulated clients: IID, Dirichlet label skew, or one group per column value.

>>> import numpy as np
>>> y = np.array([0, 1] * 50)
>>> [len(p) for p in partition_rows(y, Partition("iid"), 4, seed=0)]
[25, 25, 25, 25]
>>> parts = partition_rows(y, Partition("by", column="g"), 2, groups=np.array(["a", "b"] * 50))
>>> [sorted(set(y[p].tolist())) for p in parts]
[[0], [1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keelml.core.errors import EmptySourceError, InvalidInputError
from keelml.federated.config import Partition

Indices = npt.NDArray[np.int64]
MIN_ROWS = 2  # a client needs a row to train on and more than one to make a batch meaningful


def partition_rows(
    y: npt.NDArray[np.int64],
    spec: Partition,
    clients: int,
    *,
    seed: int = 0,
    groups: Sequence[object] | npt.NDArray[np.object_] | None = None,
) -> list[Indices]:
    """Row indices of each client; every client gets at least ``MIN_ROWS`` rows or this raises."""
    if len(y) < clients * MIN_ROWS:
        raise EmptySourceError(
            f"{len(y)} rows cannot give {clients} clients {MIN_ROWS} rows each",
            expected=f"at least {clients * MIN_ROWS} labelled rows",
            received=f"{len(y)} rows",
            fix="use fewer --clients or more data",
        )
    rng = np.random.default_rng(seed)
    if spec.kind == "iid":
        return [np.sort(p).astype(np.int64) for p in np.array_split(rng.permutation(len(y)), clients)]
    if spec.kind == "dirichlet":
        assert spec.alpha is not None
        return _dirichlet(y, spec.alpha, clients, rng)
    if groups is None:
        raise InvalidInputError(
            f"partition {spec} needs the values of column {spec.column!r}",
            received="no column values",
            fix="pass the column's values as groups=",
        )
    return _by_group(np.asarray(groups, dtype=object), spec, clients)


def _dirichlet(
    y: npt.NDArray[np.int64], alpha: float, clients: int, rng: np.random.Generator
) -> list[Indices]:
    """Per class, shares drawn from Dirichlet(alpha); redrawn (up to 100 times) until no client is empty."""
    for _ in range(100):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for cls in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == cls))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= MIN_ROWS:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise InvalidInputError(
        f"dirichlet:{alpha:g} left a client with fewer than {MIN_ROWS} rows in 100 draws",
        expected="a larger alpha, fewer clients or more rows",
        received=f"alpha={alpha:g}, clients={clients}, rows={len(y)}",
        fix="raise ALPHA (e.g. dirichlet:0.5) or lower --clients",
    )


def _by_group(values: npt.NDArray[np.object_], spec: Partition, clients: int) -> list[Indices]:
    """Each distinct value goes whole to one client; the largest groups first, each to the smallest client."""
    present = values[[v is not None and v == v for v in values]]  # v == v drops NaN
    names, counts = np.unique(present.astype(str), return_counts=True)
    if len(names) < clients:
        raise InvalidInputError(
            f"column {spec.column!r} has {len(names)} distinct values, too few for {clients} clients",
            expected=f"at least {clients} distinct values",
            received=", ".join(names[:10].tolist()) or "none",
            fix=f"pass --clients {len(names)} or less, or partition by another column",
        )
    as_text = np.array([str(v) for v in values], dtype=object)
    parts: list[list[int]] = [[] for _ in range(clients)]
    for name in names[np.argsort(-counts, kind="stable")]:
        smallest = min(range(clients), key=lambda c: len(parts[c]))
        parts[smallest].extend(np.flatnonzero(as_text == name).tolist())
    short = [i for i, p in enumerate(parts) if len(p) < MIN_ROWS]
    if short:
        raise EmptySourceError(
            f"partition {spec} leaves client(s) {short} with fewer than {MIN_ROWS} rows",
            received=f"sizes {[len(p) for p in parts]}",
            fix="use fewer --clients",
        )
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
