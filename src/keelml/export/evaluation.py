"""Accuracy of a model (torch or exported) on the parent's test split, overall and per slice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa


class SliceLike(Protocol):
    @property
    def name(self) -> str: ...

    def mask(self, table: pa.Table) -> Any: ...

    def columns(self) -> set[str]: ...


class Predictor(Protocol):
    def predict_proba(self, rows: Any) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True)
class TestSplit:
    """The test rows of a model's training split, their labels and slice masks."""

    table: pa.Table
    labels: tuple[str, ...]
    masks: Mapping[str, npt.NDArray[np.bool_]]

    @classmethod
    def of(cls, table: pa.Table, label: str, slices: Sequence[SliceLike] = ()) -> TestSplit:
        masks = {
            s.name: np.asarray(s.mask(table).to_numpy(zero_copy_only=False), dtype=bool)
            for s in slices
            if s.columns() <= set(table.column_names)
        }
        return cls(table, tuple(str(v) for v in table[label].to_pylist()), masks)


def accuracies(
    predictor: Predictor, classes: Sequence[str], split: TestSplit, rows: Any = None, batch_size: int = 64
) -> dict[str, float]:
    """``test_accuracy`` and ``slice_NAME_accuracy`` (slices with at least one row)."""
    data = split.table if rows is None else rows
    probs = [predictor.predict_proba(data.slice(i, batch_size)) for i in range(0, data.num_rows, batch_size)]
    predicted = np.asarray(classes)[np.vstack(probs).argmax(axis=1)] if probs else np.array([], dtype=str)
    correct = predicted == np.asarray(split.labels)
    out = {"test_accuracy": float(correct.mean()) if len(correct) else float("nan")}
    for name, mask in split.masks.items():
        if mask.any():
            out[f"slice_{name}_accuracy"] = float(correct[mask].mean())
    return out
