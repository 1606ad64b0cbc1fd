"""The one small protocol every query strategy follows, the outputs it reads, and the registry.

A strategy reads :class:`ModelOutputs` (predicted probabilities, Monte-Carlo samples, embeddings)
and returns the indices of the rows to label next, most informative first. Scoring strategies are a
function from outputs to one score per row, wrapped in :class:`ScoreStrategy`::

    >>> import numpy as np
    >>> s = ScoreStrategy("max_prob_gap", lambda o: -np.abs(o.probs[:, 0] - o.probs[:, 1]))
    >>> s.select(ModelOutputs(probs=np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])), 1,
    ...          np.random.default_rng(0)).tolist()
    [1]

:func:`register_strategy` makes a strategy available by name (CLI, simulation) and puts it under the
conformance suite in :mod:`keelml.testing.strategies`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from keelml.core.errors import InvalidInputError, NotFoundError

Output: TypeAlias = Literal["probs", "mc_probs", "embeddings"]
FloatArray: TypeAlias = NDArray[np.floating]
Indices: TypeAlias = NDArray[np.intp]


class EmptyPoolError(InvalidInputError):
    """There are no unlabeled rows to choose from."""


class BudgetTooLargeError(InvalidInputError):
    """More rows were asked for than the pool holds."""


class UnknownStrategyError(NotFoundError, KeyError):
    """No strategy registered under that name."""

    def __str__(self) -> str:
        return InvalidInputError.__str__(self)


def _check(array: FloatArray | None, name: str, ndim: int) -> FloatArray | None:
    if array is None:
        return None
    arr = np.asarray(array)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.floating):
        raise InvalidInputError(
            f"model outputs: {name} has the wrong shape or type",
            expected=f"a {ndim}-d float array",
            received=f"{arr.ndim}-d {arr.dtype} of shape {arr.shape}",
            fix=f"pass {name} as a numpy float array of {ndim} dimensions",
        )
    return arr


@dataclass(frozen=True, eq=False)
class ModelOutputs:
    """What a model says about the pool: ``probs`` (n x classes), ``mc_probs`` (samples x n x classes),
    ``embeddings`` (n x d) and, for diversity, ``labeled_embeddings`` (m x d) of the rows already
    labeled. Only what a strategy ``requires`` must be given; shapes are checked on construction.
    """

    probs: FloatArray | None = None
    mc_probs: FloatArray | None = None
    embeddings: FloatArray | None = None
    labeled_embeddings: FloatArray | None = None

    def __post_init__(self) -> None:
        probs = _check(self.probs, "probs", 2)
        mc = _check(self.mc_probs, "mc_probs", 3)
        emb = _check(self.embeddings, "embeddings", 2)
        lab = _check(self.labeled_embeddings, "labeled_embeddings", 2)
        for name, value in (
            ("probs", probs),
            ("mc_probs", mc),
            ("embeddings", emb),
            ("labeled_embeddings", lab),
        ):
            object.__setattr__(self, name, value)
        counts = {
            name: rows
            for name, rows in (
                ("probs", None if probs is None else probs.shape[0]),
                ("mc_probs", None if mc is None else mc.shape[1]),
                ("embeddings", None if emb is None else emb.shape[0]),
            )
            if rows is not None
        }
        if len(set(counts.values())) > 1:
            raise InvalidInputError(
                "model outputs disagree on the number of pool rows",
                expected="the same number of rows in every output",
                received=", ".join(f"{k}: {v}" for k, v in counts.items()),
                fix="compute every output on the same pool rows, in the same order",
            )
        if emb is not None and lab is not None and emb.shape[1] != lab.shape[1]:
            raise InvalidInputError(
                "embeddings and labeled_embeddings have different widths",
                expected=f"{emb.shape[1]} columns in both",
                received=f"{lab.shape[1]} columns in labeled_embeddings",
                fix="embed the labeled and the pool rows with the same model",
            )

    @property
    def n(self) -> int:
        """The number of pool rows."""
        if self.probs is not None:
            return int(self.probs.shape[0])
        if self.mc_probs is not None:
            return int(self.mc_probs.shape[1])
        if self.embeddings is not None:
            return int(self.embeddings.shape[0])
        return 0

    def available(self) -> frozenset[Output]:
        names: tuple[Output, ...] = ("probs", "mc_probs", "embeddings")
        return frozenset(n for n in names if getattr(self, n) is not None)


@runtime_checkable
class Strategy(Protocol):
    """Picks rows to label. ``select`` returns ``budget`` distinct row indices, most informative
    first; it is deterministic given the generator's state, reads only the outputs it ``requires``
    and never modifies them. Budget and requirements are checked by :func:`select` before the call.
    """

    @property
    def name(self) -> str: ...

    @property
    def requires(self) -> frozenset[Output]: ...

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> Indices: ...


def top_k(scores: FloatArray, k: int, rng: np.random.Generator) -> Indices:
    """Indices of the ``k`` highest scores, highest first; ties broken at random. O(n) + O(k log k).

    >>> top_k(np.array([0.1, 0.9, 0.5]), 2, np.random.default_rng(0)).tolist()
    [1, 2]
    """
    n = scores.shape[0]
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    perm = rng.permutation(n)
    shuffled = np.nan_to_num(np.asarray(scores, dtype=np.float64)[perm], nan=-np.inf)
    part = np.argpartition(-shuffled, k - 1)[:k] if k < n else np.arange(n)
    order = part[np.argsort(-shuffled[part], kind="stable")]
    return perm[order].astype(np.intp)


@dataclass(frozen=True)
class ScoreStrategy:
    """A strategy from a vectorised score (higher = label sooner): the usual way to add one."""

    name: str
    score: Callable[[ModelOutputs], FloatArray]
    requires: frozenset[Output] = field(default_factory=lambda: frozenset({"probs"}))

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> Indices:
        return top_k(self.score(outputs), budget, rng)


_REGISTRY: dict[str, Strategy] = {}


def register_strategy(strategy: Strategy) -> Strategy:
    """Make ``strategy`` available by its name (and subject to the conformance suite)."""
    _REGISTRY[strategy.name] = strategy
    return strategy


def strategy_names() -> list[str]:
    return sorted(_REGISTRY)


def get_strategy(name: str | Strategy) -> Strategy:
    if not isinstance(name, str):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownStrategyError(
            f"no query strategy named {name!r}",
            expected=f"one of {', '.join(strategy_names())}",
            received=name,
            fix="pick one of those, or register your own with keelml.labeling.register_strategy",
        ) from None


def select(
    strategy: str | Strategy, outputs: ModelOutputs, budget: int, *, seed: int | np.random.Generator = 0
) -> Indices:
    """Check the budget and the strategy's inputs, then return the rows to label next.

    >>> probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]])
    >>> select("margin", ModelOutputs(probs=probs), 2).tolist()
    [1, 2]
    """
    chosen = get_strategy(strategy)
    n = outputs.n
    if n == 0:
        raise EmptyPoolError(
            "the pool is empty: there is nothing left to label",
            expected="at least one unlabeled row",
            received="0 rows",
            fix="append new unlabeled rows, or stop: every row has a label",
        )
    if not isinstance(budget, int | np.integer) or budget < 1:
        raise InvalidInputError(
            "the labeling budget must be a positive integer",
            expected="an integer >= 1",
            received=repr(budget),
            fix="ask for e.g. --budget 100",
        )
    if budget > n:
        raise BudgetTooLargeError(
            f"a budget of {budget} is larger than the pool of {n} unlabeled rows",
            expected=f"a budget between 1 and {n}",
            received=str(budget),
            fix=f"ask for at most {n} rows (--budget {n})",
        )
    missing = chosen.requires - outputs.available()
    if missing:
        raise InvalidInputError(
            f"strategy {chosen.name!r} needs model outputs that were not given",
            expected=", ".join(sorted(chosen.requires)),
            received=", ".join(sorted(outputs.available())) or "nothing",
            fix=f"compute {', '.join(sorted(missing))} for the pool"
            + (
                " (mc_probs: a torch model with dropout, see mc_dropout_probs)"
                if "mc_probs" in missing
                else ""
            ),
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    picked = np.asarray(chosen.select(outputs, int(budget), rng), dtype=np.intp)
    return picked
