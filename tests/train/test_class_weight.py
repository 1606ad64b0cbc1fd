"""Balanced class weights for a rare class, and the decision-threshold report."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from keelml.core.errors import InvalidInputError
from keelml.train.config import TabularConfig
from keelml.train.tabular import train_tabular
from keelml.train.thresholds import best_f1_threshold, threshold_point


def rare(n: int = 600, seed: int = 0) -> pa.Table:
    """About 8 % "bad", weakly separable: unweighted training predicts "good" almost always."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    bad = rng.random(n) < 1 / (1 + np.exp(-(1.2 * x - 3.2)))
    return pa.table({"x": x, "noise": rng.normal(size=n), "label": np.where(bad, "bad", "good")})


def _predicted_bad(class_weight: str) -> int:
    config = TabularConfig(model="logreg", epochs=30, learning_rate=0.05, class_weight=class_weight)  # type: ignore[arg-type]
    result = train_tabular(rare(), config, label="label")
    confusion = np.array(result.evaluation.overall.confusion)  # rows true, columns predicted; "bad" = 0
    return int(confusion[:, 0].sum())


def test_balanced_weights_make_the_rare_class_predicted() -> None:
    assert _predicted_bad("balanced") > _predicted_bad("none") + 5


def test_class_weight_is_validated_and_digest_neutral_when_off() -> None:
    with pytest.raises(InvalidInputError, match="unknown class weighting"):
        TabularConfig(class_weight="heavy")  # type: ignore[arg-type]
    assert "class_weight" not in TabularConfig().to_json()
    weighted = TabularConfig.from_mapping({"class_weight": "balanced"})
    assert TabularConfig.from_mapping(weighted.to_json()) == weighted


def test_threshold_chosen_on_one_part_is_reported_on_another() -> None:
    y = np.array([False] * 8 + [True] * 2)
    score = np.array([0.05, 0.1, 0.1, 0.2, 0.2, 0.3, 0.35, 0.4, 0.38, 0.6])
    best = best_f1_threshold(y, score)
    assert best.threshold == 0.38 and best.recall == 1.0
    assert threshold_point(y, score, 0.5).recall == 0.5
    with pytest.raises(InvalidInputError):
        threshold_point(y, score[:3], 0.5)
