"""Query strategies: plain, vectorised functions over model outputs, registered by name.

Uncertainty (one pass over the probabilities, O(n x classes)): ``least_confidence``, ``margin``,
``entropy``; Bayesian: ``bald`` (mutual information over Monte-Carlo samples, e.g. MC dropout);
diversity: ``kcenter`` (greedy core-set on embeddings); batch mode: ``hybrid`` (the most uncertain
``factor x budget`` rows by margin, then k-center among them for diversity); and ``random``.

>>> import numpy as np
>>> probs = np.array([[0.98, 0.01, 0.01], [0.4, 0.35, 0.25], [0.6, 0.39, 0.01]])
>>> margin_scores(probs).round(2).tolist()
[-0.97, -0.05, -0.21]
>>> entropy_scores(probs).argmax(), least_confidence_scores(probs).argmax()
(np.int64(1), np.int64(1))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keelml.core.errors import InvalidInputError
from keelml.labeling.protocol import (
    FloatArray,
    Indices,
    ModelOutputs,
    Output,
    ScoreStrategy,
    register_strategy,
    top_k,
)

_EPS = 1e-12


def least_confidence_scores(probs: FloatArray) -> FloatArray:
    """1 - the top class probability."""
    return np.asarray(1.0 - probs.max(axis=1), dtype=np.float64)


def margin_scores(probs: FloatArray) -> FloatArray:
    """Minus the gap between the two most likely classes (small gap = high score)."""
    if probs.shape[1] < 2:
        return np.zeros(probs.shape[0])
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return np.asarray(top2[:, 0] - top2[:, 1], dtype=np.float64)


def entropy_scores(probs: FloatArray) -> FloatArray:
    """Shannon entropy of the predicted distribution (nats)."""
    p = np.clip(probs, _EPS, 1.0)
    return np.asarray(-(p * np.log(p)).sum(axis=1), dtype=np.float64)


def bald_scores(mc_probs: FloatArray) -> FloatArray:
    """BALD: mutual information between the label and the model parameters, from samples x n x classes.

    H(mean over samples of p) - mean over samples of H(p). Zero when all samples agree.

    >>> same = np.tile(np.array([[[0.5, 0.5]]]), (4, 1, 1))
    >>> split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    >>> float(bald_scores(same)[0]), round(float(bald_scores(split)[0]), 4)
    (0.0, 0.6931)
    """
    mean = mc_probs.mean(axis=0)
    p = np.clip(mc_probs, _EPS, 1.0)
    expected = -(p * np.log(p)).sum(axis=2).mean(axis=0)
    return np.asarray(np.maximum(entropy_scores(mean) - expected, 0.0), dtype=np.float64)


def _sq_norms(x: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("ij,ij->i", x, x), dtype=np.float64)


def kcenter_greedy(
    points: FloatArray,
    budget: int,
    rng: np.random.Generator,
    centers: FloatArray | None = None,
    chunk: int = 4096,
) -> Indices:
    """Greedy k-center (core-set, Sener & Savarese 2018): repeatedly take the point farthest from
    every center so far; ``centers`` are the labeled rows. O(budget x n x d) time, O(n) memory.

    >>> pts = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> sorted(kcenter_greedy(pts, 2, np.random.default_rng(0), centers=np.zeros((1, 2))).tolist())
    [2, 3]
    """
    x = np.ascontiguousarray(points, dtype=np.float64)
    n = x.shape[0]
    norms = _sq_norms(x)
    min_d = np.full(n, np.inf)
    if centers is not None and len(centers):
        c = np.asarray(centers, dtype=np.float64)
        c_norms = _sq_norms(c)
        for start in range(0, len(c), chunk):
            block = c[start : start + chunk]
            d = norms[:, None] - 2.0 * x @ block.T + c_norms[None, start : start + chunk]
            np.minimum(min_d, d.min(axis=1), out=min_d)
    picked = np.empty(budget, dtype=np.intp)
    for i in range(budget):
        best = min_d.max()
        ties = np.flatnonzero(min_d == best)
        j = int(ties[rng.integers(len(ties))]) if len(ties) > 1 else int(ties[0])
        picked[i] = j
        d = norms - 2.0 * (x @ x[j]) + norms[j]
        np.minimum(min_d, d, out=min_d)
        min_d[j] = -np.inf
    return picked


def _random(outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> Indices:
    return rng.choice(outputs.n, size=budget, replace=False).astype(np.intp)


@dataclass(frozen=True)
class RandomStrategy:
    """Uniform sampling without replacement: the baseline every strategy must beat."""

    name: str = "random"
    requires: frozenset[Output] = frozenset()

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> Indices:
        return _random(outputs, budget, rng)


@dataclass(frozen=True)
class KCenterStrategy:
    """Core-set by greedy k-center on ``embeddings`` (labeled rows, if given, are the first centers)."""

    name: str = "kcenter"
    requires: frozenset[Output] = frozenset({"embeddings"})

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> Indices:
        assert outputs.embeddings is not None
        return kcenter_greedy(outputs.embeddings, budget, rng, outputs.labeled_embeddings)


@dataclass(frozen=True)
class HybridStrategy:
    """Batch mode: the ``factor x budget`` most uncertain rows (by margin), then k-center among them
    on the embeddings (or on the probabilities when no embeddings are given), so one batch does not
    spend its budget on near-duplicates.
    """

    name: str = "hybrid"
    factor: float = 5.0
    requires: frozenset[Output] = field(default_factory=lambda: frozenset({"probs"}))

    def __post_init__(self) -> None:
        if not self.factor >= 1.0:
            raise InvalidInputError(
                "the hybrid strategy's candidate factor must be at least 1",
                expected="factor >= 1 (candidates = factor x budget)",
                received=repr(self.factor),
                fix="use e.g. factor=5",
            )

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> Indices:
        assert outputs.probs is not None
        n_candidates = min(outputs.n, max(budget, int(np.ceil(self.factor * budget))))
        candidates = top_k(margin_scores(outputs.probs), n_candidates, rng)
        if n_candidates == budget:
            return candidates
        space = outputs.embeddings if outputs.embeddings is not None else outputs.probs
        centers = outputs.labeled_embeddings if outputs.embeddings is not None else None
        chosen = kcenter_greedy(space[candidates], budget, rng, centers)
        return candidates[chosen]


register_strategy(RandomStrategy())
register_strategy(ScoreStrategy("least_confidence", lambda o: least_confidence_scores(_probs(o))))
register_strategy(ScoreStrategy("margin", lambda o: margin_scores(_probs(o))))
register_strategy(ScoreStrategy("entropy", lambda o: entropy_scores(_probs(o))))
register_strategy(ScoreStrategy("bald", lambda o: bald_scores(_mc(o)), requires=frozenset({"mc_probs"})))
register_strategy(KCenterStrategy())
register_strategy(HybridStrategy())


def _probs(outputs: ModelOutputs) -> FloatArray:
    assert outputs.probs is not None
    return outputs.probs


def _mc(outputs: ModelOutputs) -> FloatArray:
    assert outputs.mc_probs is not None
    return outputs.mc_probs
