"""Standard tabular preprocessing, fitted on the training part and saved with the model.

Numeric columns: missing values become the training median, then standard scaling. Other columns:
one-hot over the most frequent training categories, with one extra column for anything else
(unseen or missing), so serving never fails on a new category.

>>> import pandas as pd
>>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "c": ["a", "b", "a", "z"]})
>>> pre = Preprocessor.fit(df, max_categories=1)
>>> pre.output_names
('x', 'c=a', 'c=<other>')
>>> [round(float(v), 2) for v in pre.transform(df)[0]]
[-1.41, 1.0, 0.0]
>>> Preprocessor.from_json(pre.to_json()) == pre
True

With ``fixed_range`` (the columns' known range), numeric columns are scaled to [-1, 1] by those fixed
numbers, missing values become the midpoint, and no statistic of the rows is read:

>>> fixed = Preprocessor.fit(df, max_categories=1, fixed_range=(0.0, 4.0))
>>> [round(float(v), 2) for v in fixed.transform(df)[:, 0]]
[-0.5, 0.0, 0.5, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.core.errors import InvalidInputError

OTHER = "<other>"


@dataclass(frozen=True, slots=True)
class NumericColumn:
    name: str
    median: float
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class CategoricalColumn:
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Preprocessor:
    numeric: tuple[NumericColumn, ...]
    categorical: tuple[CategoricalColumn, ...]

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        *,
        max_categories: int = 20,
        fixed_range: tuple[float, float] | None = None,
    ) -> Preprocessor:
        if frame.shape[1] == 0:
            raise InvalidInputError(
                "no feature columns to train on",
                expected="at least one column besides the label (and id / time columns)",
                received="none",
                fix="add feature columns to the dataset, or list them with features = [...]",
            )
        numeric: list[NumericColumn] = []
        categorical: list[CategoricalColumn] = []
        for name in frame.columns:
            col = frame[name]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and fixed_range:
                mid, half = (fixed_range[0] + fixed_range[1]) / 2, (fixed_range[1] - fixed_range[0]) / 2
                numeric.append(NumericColumn(str(name), mid, mid, half))  # same format, data-independent
            elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                values = col.astype("float64")
                median = float(values.median()) if values.notna().any() else 0.0
                filled = values.fillna(median)
                std = float(filled.std(ddof=0))
                numeric.append(
                    NumericColumn(str(name), median, float(filled.mean()), std if std > 0 else 1.0)
                )
            else:
                counts = col.dropna().astype(str).value_counts()
                top = sorted(counts.index[:max_categories].tolist(), key=lambda v: (-counts[v], v))
                categorical.append(CategoricalColumn(str(name), tuple(top)))
        return cls(tuple(numeric), tuple(categorical))

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.numeric) + tuple(c.name for c in self.categorical)

    @property
    def output_names(self) -> tuple[str, ...]:
        names = [c.name for c in self.numeric]
        for c in self.categorical:
            names.extend([f"{c.name}={v}" for v in c.categories] + [f"{c.name}={OTHER}"])
        return tuple(names)

    def transform(self, frame: pd.DataFrame) -> npt.NDArray[np.float32]:
        missing = [n for n in self.input_names if n not in frame.columns]
        if missing:
            raise InvalidInputError(
                "the data lacks columns the model was trained on",
                expected=", ".join(self.input_names),
                received=f"missing {', '.join(missing)}",
                fix="pass rows with every training feature column",
            )
        parts: list[npt.NDArray[Any]] = []
        for num in self.numeric:
            values = pd.to_numeric(frame[num.name], errors="coerce").astype("float64").fillna(num.median)
            parts.append(((values.to_numpy() - num.mean) / num.std)[:, None])
        for cat in self.categorical:
            text = frame[cat.name].astype("string").fillna(OTHER).to_numpy(dtype=object)
            index = {v: i for i, v in enumerate(cat.categories)}
            codes = np.array([index.get(v, len(cat.categories)) for v in text], dtype=np.int64)
            onehot = np.zeros((len(frame), len(cat.categories) + 1))
            onehot[np.arange(len(frame)), codes] = 1.0
            parts.append(onehot)
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(frame), 0), np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "numeric": [[c.name, c.median, c.mean, c.std] for c in self.numeric],
            "categorical": [[c.name, list(c.categories)] for c in self.categorical],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessor:
        return cls(
            tuple(NumericColumn(str(n), float(m), float(mu), float(s)) for n, m, mu, s in data["numeric"]),
            tuple(CategoricalColumn(str(n), tuple(str(v) for v in cats)) for n, cats in data["categorical"]),
        )
