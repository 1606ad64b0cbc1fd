"""One shape for what is monitored: features, the model's outputs, ground truth where known, latency.

A request-log table (``core.request_log``: ``in.<field>``, ``proba.<class>``, ``label`` = prediction) and a
dataset version with predictions (plain feature columns, ``proba.<class>``, a prediction column and a
target column) both become a :class:`Frame`.

>>> import pandas as pd
>>> f = Frame.from_table(pd.DataFrame({"x": [1.0, 2.0], "proba.a": [0.9, 0.2], "proba.b": [0.1, 0.8],
...                                    "y": ["a", "b"]}), target="y")
>>> f.classes, f.prediction.tolist(), f.correct().tolist()
(('a', 'b'), ['a', 'b'], [1.0, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from keelml.core.errors import ColumnNotFoundError
from keelml.core.request_log import INPUT_PREFIX, PROBA_PREFIX

Array = np.ndarray[Any, Any]
LOG_COLUMNS = ("prediction_id", "ts", "model", "model_version", "latency_ms", "label", "score")


@dataclass(frozen=True)
class Frame:
    """Rows to monitor. ``truth`` holds the true label as a string, or None where no label arrived."""

    features: pd.DataFrame
    classes: tuple[str, ...] = ()
    proba: Array | None = None
    prediction: Array | None = None
    truth: Array | None = None
    latency_ms: Array | None = None
    ts: Array | None = None
    ids: Array | None = None

    def __len__(self) -> int:
        return len(self.features)

    @classmethod
    def from_table(
        cls,
        table: Any,
        *,
        target: str | None = None,
        prediction: str | None = "prediction",
        features: tuple[str, ...] = (),
    ) -> Frame:
        """A dataset table (pyarrow or pandas) whose rows carry the model's outputs (``proba.<class>``)."""
        df = (
            table.to_pandas()
            if hasattr(table, "to_pandas") and not isinstance(table, pd.DataFrame)
            else table
        )
        df = df.reset_index(drop=True)
        log_like = any(str(c).startswith(INPUT_PREFIX) for c in df.columns)
        if log_like:
            return cls._from_log(df, features)
        proba_cols = [c for c in df.columns if str(c).startswith(PROBA_PREFIX)]
        classes = tuple(str(c)[len(PROBA_PREFIX) :] for c in proba_cols)
        proba = df[proba_cols].to_numpy(dtype=float) if proba_cols else None
        if target is not None and target not in df.columns:
            raise ColumnNotFoundError(
                f"target column {target!r} is not in the data",
                expected="the column with the true label",
                received=", ".join(map(str, df.columns[:20])),
                fix="set `target` in [monitor.<model>] to a column of the reference dataset",
            )
        pred: Array | None = None
        if prediction is not None and prediction in df.columns:
            pred = df[prediction].astype(str).to_numpy(dtype=object)
        elif proba is not None:
            pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        reserved = {target, prediction, *proba_cols}
        names = list(features) or [c for c in df.columns if c not in reserved]
        truth = None if target is None else _labels(df[target])
        return cls(df[[c for c in names if c in df.columns]].copy(), classes, proba, pred, truth)

    @classmethod
    def _from_log(cls, df: pd.DataFrame, features: tuple[str, ...]) -> Frame:
        inputs = {c: str(c)[len(INPUT_PREFIX) :] for c in df.columns if str(c).startswith(INPUT_PREFIX)}
        feats = df[list(inputs)].rename(columns=inputs)
        if features:
            feats = feats[[f for f in features if f in feats.columns]]
        proba_cols = [c for c in df.columns if str(c).startswith(PROBA_PREFIX)]
        classes = tuple(str(c)[len(PROBA_PREFIX) :] for c in proba_cols)

        def col(name: str, dtype: Any) -> Array | None:
            return df[name].to_numpy(dtype=dtype) if name in df.columns else None

        truth = _labels(df["truth"]) if "truth" in df.columns else None
        return cls(
            feats.reset_index(drop=True),
            classes,
            df[proba_cols].to_numpy(dtype=float) if proba_cols else None,
            None if "label" not in df.columns else df["label"].astype(str).to_numpy(dtype=object),
            truth,
            col("latency_ms", float),
            None if "ts" not in df.columns else pd.to_datetime(df["ts"], utc=True).to_numpy(),
            col("prediction_id", object),
        )

    def take(self, index: Array) -> Frame:
        def pick(a: Array | None) -> Array | None:
            return None if a is None else a[index]

        return replace(
            self,
            features=self.features.iloc[index].reset_index(drop=True),
            proba=pick(self.proba),
            prediction=pick(self.prediction),
            truth=pick(self.truth),
            latency_ms=pick(self.latency_ms),
            ts=pick(self.ts),
            ids=pick(self.ids),
        )

    def labelled(self) -> Array:
        """Boolean mask of rows whose true label is known."""
        if self.truth is None:
            return np.zeros(len(self), dtype=bool)
        return np.array([t is not None for t in self.truth], dtype=bool)

    def correct(self) -> Array:
        """1.0 where the prediction equals the truth, 0.0 where not, NaN where unlabelled."""
        out = np.full(len(self), np.nan)
        if self.truth is None or self.prediction is None:
            return out
        mask = self.labelled()
        out[mask] = (self.prediction[mask].astype(str) == self.truth[mask].astype(str)).astype(float)
        return out


def _labels(series: pd.Series) -> Array:
    values = series.to_numpy(dtype=object)
    return np.array([None if pd.isna(v) else _label_str(v) for v in values], dtype=object)


def _label_str(value: Any) -> str:
    # 1.0 and 1 name the same class; proba.<class> columns are written from str(class)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
