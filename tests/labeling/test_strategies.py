from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from keelml.labeling import (
    BudgetTooLargeError,
    EmptyPoolError,
    ModelOutputs,
    ScoreStrategy,
    bald_scores,
    entropy_scores,
    get_strategy,
    kcenter_greedy,
    margin_scores,
    register_strategy,
    select,
    strategy_names,
)
from keelml.labeling.protocol import _REGISTRY, Output, UnknownStrategyError, top_k
from keelml.testing.strategies import StrategyCheckError, check_strategy


@pytest.mark.parametrize("name", strategy_names())
def test_every_registered_strategy_passes_the_conformance_suite(name: str) -> None:
    check_strategy(get_strategy(name))


def test_all_issue_strategies_are_registered() -> None:
    assert {"random", "least_confidence", "margin", "entropy", "bald", "kcenter", "hybrid"} <= set(
        strategy_names()
    )


@dataclass(frozen=True)
class _Repeats:
    name: str = "repeats"
    requires: frozenset[Output] = frozenset({"probs"})

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(budget, dtype=np.intp)


@dataclass(frozen=True)
class _Mutates:
    name: str = "mutates"
    requires: frozenset[Output] = frozenset({"probs"})

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> np.ndarray:
        assert outputs.probs is not None
        outputs.probs[:, 0] = 0.0
        return np.arange(budget, dtype=np.intp)


@dataclass(frozen=True)
class _Unseeded:
    name: str = "unseeded"
    requires: frozenset[Output] = frozenset()

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> np.ndarray:
        return np.random.default_rng().choice(outputs.n, budget, replace=False)


@dataclass(frozen=True)
class _Undeclared:
    name: str = "undeclared"
    requires: frozenset[Output] = frozenset()

    def select(self, outputs: ModelOutputs, budget: int, rng: np.random.Generator) -> np.ndarray:
        assert outputs.embeddings is not None
        return np.arange(budget, dtype=np.intp)


@pytest.mark.parametrize(
    ("strategy", "needle"),
    [
        (_Repeats(), "same row twice"),
        (_Mutates(), "modified outputs.probs"),
        (_Unseeded(), "different rows for the same seed"),
        (_Undeclared(), "read only the outputs named in `requires`"),
    ],
)
def test_the_conformance_suite_names_the_broken_rule_and_the_fix(strategy: object, needle: str) -> None:
    with pytest.raises(StrategyCheckError, match="fix:") as info:
        check_strategy(strategy)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_a_new_strategy_is_a_few_lines_and_is_selectable_by_name() -> None:
    s = register_strategy(ScoreStrategy("second_class", lambda o: np.sort(o.probs, axis=1)[:, -2]))
    try:
        check_strategy(s)
        probs = np.array([[0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.6, 0.3, 0.1]])
        assert select("second_class", ModelOutputs(probs=probs), 1).tolist() == [1]
    finally:
        _REGISTRY.pop("second_class")


def test_uncertainty_scores_rank_the_obvious_cases() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [0.34, 0.33, 0.33], [0.5, 0.5, 0.0], [0.8, 0.1, 0.1]])
    assert margin_scores(probs).argmax() == 2  # a tie between the top two classes
    assert entropy_scores(probs).argmax() == 1  # nearly uniform
    assert entropy_scores(probs).argmin() == 0
    assert select("margin", ModelOutputs(probs=probs), 2).tolist() == [2, 1]
    assert select("least_confidence", ModelOutputs(probs=probs), 1).tolist() == [1]


def test_bald_is_zero_when_samples_agree_and_high_when_they_disagree() -> None:
    agree = np.tile(np.array([[0.5, 0.5], [0.9, 0.1]]), (6, 1, 1))
    disagree = np.stack([np.array([[1.0, 0.0], [0.9, 0.1]]), np.array([[0.0, 1.0], [0.9, 0.1]])] * 3)
    assert np.allclose(bald_scores(agree), 0.0)
    scores = bald_scores(disagree)
    assert scores[0] > 0.6 and scores[1] == pytest.approx(0.0, abs=1e-9)
    # entropy would rank the agreeing 50/50 row first; BALD ranks the disputed one first
    mixed = np.concatenate([agree[:, :1], disagree[:, :1]], axis=1)
    assert select("bald", ModelOutputs(mc_probs=mixed), 1).tolist() == [1]


def test_kcenter_covers_the_space_and_starts_from_the_labeled_rows() -> None:
    rng = np.random.default_rng(0)
    clusters = np.concatenate([rng.normal(c, 0.05, size=(50, 2)) for c in ((0, 0), (5, 0), (0, 5), (5, 5))])
    picked = kcenter_greedy(clusters, 4, rng)
    assert sorted(set(picked // 50)) == [0, 1, 2, 3]
    # with cluster 0 already labeled, the first three picks are the three other clusters
    first = kcenter_greedy(clusters, 3, rng, centers=np.array([[0.0, 0.0]]))
    assert sorted(first // 50) == [1, 2, 3]


def test_hybrid_spreads_a_batch_over_distinct_uncertain_regions() -> None:
    # 30 near-identical, most uncertain rows (one region), 100 in another uncertain region, 800 confident
    rng = np.random.default_rng(1)
    emb = np.concatenate(
        [rng.normal(0, 0.01, (30, 2)), rng.normal(10, 0.01, (100, 2)), rng.normal(5, 3, (800, 2))]
    )
    probs = np.concatenate(
        [np.full((30, 2), 0.5), np.tile([0.52, 0.48], (100, 1)), np.tile([0.99, 0.01], (800, 1))]
    )
    outputs = ModelOutputs(probs=probs, embeddings=emb)
    margin_pick = select("margin", outputs, 10)
    hybrid_pick = select("hybrid", outputs, 10)
    assert (margin_pick < 30).all()  # margin spends the whole batch on one region
    region = np.where(hybrid_pick < 30, 0, np.where(hybrid_pick < 130, 1, 2))
    assert set(region) == {0, 1}  # hybrid covers both uncertain regions, never the confident rows


def test_top_k_breaks_ties_at_random_but_reproducibly() -> None:
    scores = np.zeros(1000)
    a = top_k(scores, 5, np.random.default_rng(0))
    b = top_k(scores, 5, np.random.default_rng(0))
    c = top_k(scores, 5, np.random.default_rng(1))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_empty_pool_is_a_clear_error(explains) -> None:
    with pytest.raises(EmptyPoolError) as info:
        select("margin", ModelOutputs(probs=np.empty((0, 3))), 1)
    explains(info.value, "pool is empty", "0 rows")


def test_budget_larger_than_the_pool_is_a_clear_error(explains) -> None:
    with pytest.raises(BudgetTooLargeError) as info:
        select("margin", ModelOutputs(probs=np.full((5, 2), 0.5)), 6)
    explains(info.value, "budget of 6", "pool of 5", "--budget 5")
    with pytest.raises(ValueError, match="positive integer"):
        select("margin", ModelOutputs(probs=np.full((5, 2), 0.5)), 0)


def test_missing_outputs_and_unknown_names_are_explained(explains) -> None:
    with pytest.raises(ValueError) as info:
        select("bald", ModelOutputs(probs=np.full((5, 2), 0.5)), 2)
    explains(info.value, "'bald' needs model outputs", "mc_probs", "mc_dropout_probs")
    with pytest.raises(KeyError) as key_info:
        select("marginn", ModelOutputs(probs=np.full((5, 2), 0.5)), 2)
    assert isinstance(key_info.value, UnknownStrategyError)
    explains(key_info.value, "no query strategy named 'marginn'", "margin")


def test_model_outputs_are_checked_on_construction(explains) -> None:
    with pytest.raises(ValueError) as info:
        ModelOutputs(probs=np.full((5, 2), 0.5), embeddings=np.zeros((4, 3)))
    explains(info.value, "number of pool rows", "probs: 5", "embeddings: 4")
    with pytest.raises(ValueError, match="2-d float array"):
        ModelOutputs(probs=np.zeros(5))
    with pytest.raises(ValueError, match="widths"):
        ModelOutputs(embeddings=np.zeros((4, 3)), labeled_embeddings=np.zeros((2, 2)))
