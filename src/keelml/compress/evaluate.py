"""Accuracy of a candidate on the parent's test rows, overall and per slice, with the parent's metric names.

>>> import numpy as np
>>> y = np.array([0, 1, 1, 0])
>>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
>>> score(y, proba, {"first_two": np.array([True, True, False, False])}).metrics()
{'test_accuracy': 0.75, 'test_f1_macro': 0.7333333333333334, 'slice_first_two_accuracy': 1.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa


class SliceLike(Protocol):
    """What evaluation needs of a slice (``keelml.data.slices.Slice`` is one)."""

    @property
    def name(self) -> str: ...

    def mask(self, table: pa.Table) -> Any: ...


@dataclass(frozen=True, slots=True)
class Accuracy:
    accuracy: float
    f1_macro: float
    slices: Mapping[str, float]

    def metrics(self) -> dict[str, float]:
        out = {"test_accuracy": self.accuracy, "test_f1_macro": self.f1_macro}
        out.update({f"slice_{k}_accuracy": v for k, v in self.slices.items()})
        return out


def _f1_macro(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], k: int) -> float:
    scores = []
    for c in range(k):
        tp = int(((pred == c) & (y == c)).sum())
        support, predicted = int((y == c).sum()), int((pred == c).sum())
        if support or predicted:
            scores.append(2 * tp / (support + predicted))
    return float(np.mean(scores)) if scores else 0.0


def score(
    y: npt.NDArray[np.int64], proba: npt.NDArray[np.float64], masks: Mapping[str, npt.NDArray[np.bool_]]
) -> Accuracy:
    pred = proba.argmax(axis=1)
    per_slice = {name: float((pred[m] == y[m]).mean()) for name, m in masks.items() if m.any()}
    return Accuracy(float((pred == y).mean()), _f1_macro(y, pred, proba.shape[1]), per_slice)


def slice_masks(table: pa.Table, slices: Sequence[SliceLike]) -> dict[str, npt.NDArray[np.bool_]]:
    return {s.name: np.asarray(s.mask(table).to_numpy(zero_copy_only=False), dtype=bool) for s in slices}


def evaluate_model(
    model: Any, table: pa.Table, y: npt.NDArray[np.int64], slices: Sequence[SliceLike] = ()
) -> Accuracy:
    """Score a torch-backed classifier (anything with ``predict_proba(table)``) on ``table``."""
    return score(y, np.asarray(model.predict_proba(table), dtype=np.float64), slice_masks(table, slices))
