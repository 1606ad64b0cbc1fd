"""Decision thresholds for a binary task with a rare class: what a threshold buys in recall and precision.

The argmax of an unweighted classifier on imbalanced data often never predicts the rare class; the
ranking (AUROC) can still be useful at a lower threshold. Choose the threshold on validation rows,
then report it on test rows, never both on the test rows.

>>> import numpy as np
>>> y = np.array([False, False, False, True, True])
>>> s = np.array([0.1, 0.2, 0.35, 0.3, 0.8])
>>> at = threshold_point(y, s, 0.5)
>>> (at.recall, at.precision)
(0.5, 1.0)
>>> best = best_f1_threshold(y, s)
>>> (best.threshold, best.recall, round(best.f1, 3))
(0.3, 1.0, 0.8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError

Flags = npt.NDArray[np.bool_]
Scores = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    """Rare-class precision, recall and F1 when predicting it for ``score >= threshold``."""

    threshold: float
    precision: float
    recall: float
    f1: float
    predicted_rate: float

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "predicted_rate": self.predicted_rate,
        }


def _check(y_rare: Flags, score: Scores) -> None:
    if len(y_rare) == 0 or len(y_rare) != len(score):
        raise InvalidInputError(
            "thresholds need one score per row and at least one row",
            received=f"{len(y_rare)} labels, {len(score)} scores",
            fix="pass the rare-class flags and probabilities of the same rows",
        )


def threshold_point(y_rare: Flags, score: Scores, threshold: float) -> ThresholdPoint:
    """Metrics of the rare class at one threshold on its probability."""
    _check(y_rare, score)
    predicted = score >= threshold
    tp = int((predicted & y_rare).sum())
    n_pred, n_pos = int(predicted.sum()), int(y_rare.sum())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_pos if n_pos else 0.0
    f1 = 2 * tp / (n_pred + n_pos) if n_pred + n_pos else 0.0
    return ThresholdPoint(float(threshold), precision, recall, f1, n_pred / len(score))


def best_f1_threshold(y_rare: Flags, score: Scores) -> ThresholdPoint:
    """The threshold (one of the observed scores) with the highest rare-class F1; ties: the higher one."""
    _check(y_rare, score)
    candidates = np.unique(score)
    points = [threshold_point(y_rare, score, float(t)) for t in candidates]
    return max(points, key=lambda p: (p.f1, p.threshold))
