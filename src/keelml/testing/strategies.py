"""Conformance checks for query strategies (:class:`keelml.labeling.Strategy`).

>>> from keelml.labeling import get_strategy
>>> check_strategy(get_strategy("margin"))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keelml.labeling.protocol import ModelOutputs, Strategy

OUTPUTS = ("probs", "mc_probs", "embeddings")


class StrategyCheckError(AssertionError):
    """A strategy broke the protocol; the message says which rule and how to fix it."""


def _fail(strategy: Any, rule: str, fix: str) -> StrategyCheckError:
    name = getattr(strategy, "name", type(strategy).__name__)
    return StrategyCheckError(f"strategy {name!r}: {rule}\n  fix: {fix}")


def _outputs(n: int, classes: int, seed: int, only: frozenset[str] | None = None) -> ModelOutputs:
    rng = np.random.default_rng(seed)
    full = {
        "probs": rng.dirichlet(np.ones(classes), size=n),
        "mc_probs": rng.dirichlet(np.ones(classes), size=(5, n)),
        "embeddings": rng.normal(size=(n, 6)),
    }
    keep = {k: v for k, v in full.items() if only is None or k in only} or {"probs": full["probs"]}
    labeled = rng.normal(size=(7, 6)) if "embeddings" in keep else None
    return ModelOutputs(**keep, labeled_embeddings=labeled)


def _copy(outputs: ModelOutputs) -> dict[str, Any]:
    names = (*OUTPUTS, "labeled_embeddings")
    return {k: None if getattr(outputs, k) is None else getattr(outputs, k).copy() for k in names}


def _run(strategy: Strategy, outputs: ModelOutputs, budget: int, seed: int) -> np.ndarray[Any, Any]:
    try:
        picked = strategy.select(outputs, budget, np.random.default_rng(seed))
    except Exception as exc:
        raise _fail(
            strategy,
            f"select(outputs with {sorted(outputs.available())}, budget={budget}) raised "
            f"{type(exc).__name__}: {exc}",
            "read only the outputs named in `requires`, and handle any budget from 1 to outputs.n",
        ) from exc
    arr = np.asarray(picked)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise _fail(
            strategy, f"returned {arr.dtype} of shape {arr.shape}", "return a 1-d integer index array"
        )
    if len(arr) != budget:
        raise _fail(
            strategy, f"returned {len(arr)} rows for a budget of {budget}", "return exactly `budget` rows"
        )
    if len(np.unique(arr)) != len(arr):
        raise _fail(
            strategy,
            "returned the same row twice",
            "pick without replacement (e.g. keelml.labeling.protocol.top_k)",
        )
    if len(arr) and (arr.min() < 0 or arr.max() >= outputs.n):
        raise _fail(strategy, f"returned indices outside [0, {outputs.n})", "index rows of the pool outputs")
    return arr


def check_strategy(strategy: Strategy) -> None:
    """Run every protocol rule against ``strategy``; raise :class:`StrategyCheckError` on the first break."""
    name = getattr(strategy, "name", None)
    if not isinstance(name, str) or not name:
        raise _fail(strategy, "has no name", "give the strategy a non-empty `name` attribute")
    requires = getattr(strategy, "requires", None)
    if not isinstance(requires, frozenset) or not requires <= set(OUTPUTS):
        raise _fail(strategy, f"requires={requires!r}", f"set `requires` to a frozenset drawn from {OUTPUTS}")
    if not isinstance(strategy, Strategy):
        raise _fail(strategy, "does not follow the Strategy protocol", "define name, requires and select()")
    outputs = _outputs(120, 4, seed=1)
    before = _copy(outputs)
    for budget in (1, 17, 120):
        _run(strategy, outputs, budget, seed=3)
    after = _copy(outputs)
    for key, value in before.items():
        if value is not None and not np.array_equal(value, after[key]):
            raise _fail(
                strategy, f"modified outputs.{key}", "work on copies; never write into the model outputs"
            )
    if not np.array_equal(_run(strategy, outputs, 10, seed=5), _run(strategy, outputs, 10, seed=5)):
        raise _fail(
            strategy, "gave different rows for the same seed", "draw randomness only from the `rng` argument"
        )
    _run(strategy, _outputs(50, 3, seed=2, only=requires), 5, seed=0)
    for classes in (2, 10):
        _run(strategy, _outputs(30, classes, seed=4), 30, seed=0)
    _run(strategy, _outputs(1, 3, seed=6), 1, seed=0)
    ties = ModelOutputs(
        probs=np.full((40, 3), 1 / 3),
        mc_probs=np.full((4, 40, 3), 1 / 3),
        embeddings=np.zeros((40, 6)),
        labeled_embeddings=np.zeros((2, 6)),
    )
    _run(strategy, ties, 12, seed=0)
