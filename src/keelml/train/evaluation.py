"""Classification metrics from predicted probabilities: overall, per slice, confusion matrix.

AUROC is reported for binary tasks only (``None`` otherwise, or when a part has one class);
expected calibration error uses equal-width bins over the top-class confidence.

>>> import numpy as np
>>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
>>> m = classification_metrics(np.array([0, 1, 1, 1]), proba, ("no", "yes"))
>>> (m.accuracy, round(m.f1_macro, 3), m.auroc)
(0.75, 0.733, 1.0)
>>> m.confusion
((1, 0), (1, 2))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError

Labels = npt.NDArray[np.int64]
Proba = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ClassificationMetrics:
    rows: int
    accuracy: float
    f1_macro: float
    auroc: float | None
    ece: float
    confusion: tuple[tuple[int, ...], ...]
    classes: tuple[str, ...] = field(default=())

    def scalars(self) -> dict[str, float]:
        out = {"accuracy": self.accuracy, "f1_macro": self.f1_macro, "ece": self.ece}
        if self.auroc is not None:
            out["auroc"] = self.auroc
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            **self.scalars(),
            "auroc": self.auroc,
            "confusion": [list(r) for r in self.confusion],
            "classes": list(self.classes),
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics on the test part, overall and for each slice that has test rows."""

    overall: ClassificationMetrics
    slices: Mapping[str, ClassificationMetrics]

    def to_json(self) -> dict[str, Any]:
        return {"overall": self.overall.to_json(), "slices": {k: v.to_json() for k, v in self.slices.items()}}


def auroc(y_true: npt.NDArray[np.bool_], score: Proba) -> float | None:
    """Mann-Whitney AUROC with tied scores counted half; None if one class is absent.

    >>> auroc(np.array([False, True, True]), np.array([0.1, 0.1, 0.9]))
    0.75
    """
    pos, neg = int(y_true.sum()), int((~y_true).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    i = 0
    while i < len(score):  # average ranks over ties
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y_true].sum() - pos * (pos + 1) / 2) / (pos * neg))


def expected_calibration_error(y_true: Labels, proba: Proba, bins: int = 10) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins.

    >>> expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    0.0
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(float(correct[sel].mean()) - float(confidence[sel].mean()))
    return float(total)


def classification_metrics(y_true: Labels, proba: Proba, classes: tuple[str, ...]) -> ClassificationMetrics:
    if len(y_true) == 0:
        raise InvalidInputError("no rows to evaluate", fix="evaluate on a non-empty test part")
    k = len(classes)
    pred = proba.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, pred), 1)
    f1s = []
    for c in range(k):
        tp = confusion[c, c]
        support, predicted = confusion[c].sum(), confusion[:, c].sum()
        if support == 0 and predicted == 0:
            continue
        f1s.append(2 * tp / (support + predicted))
    return ClassificationMetrics(
        rows=len(y_true),
        accuracy=float((pred == y_true).mean()),
        f1_macro=float(np.mean(f1s)) if f1s else 0.0,
        auroc=auroc(y_true == 1, proba[:, 1]) if k == 2 else None,
        ece=expected_calibration_error(y_true, proba),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        classes=classes,
    )


def evaluate(
    y_true: Labels, proba: Proba, classes: tuple[str, ...], slice_masks: Mapping[str, npt.NDArray[np.bool_]]
) -> Evaluation:
    """Overall metrics plus those of each slice with at least one test row."""
    per_slice = {
        name: classification_metrics(y_true[mask], proba[mask], classes)
        for name, mask in slice_masks.items()
        if mask.any()
    }
    return Evaluation(classification_metrics(y_true, proba, classes), per_slice)
