"""Utility: train on real, augmented or synthetic rows; test on held-out real rows only.

The model is deliberately plain (logistic regression on standardised numbers and one-hot
categories, or on TF-IDF for text) so that differences come from the data, not the model.
Metrics are for the rare class (one-vs-rest): AUPRC (average precision), recall at a fixed
precision, recall at the 0.5 threshold, expected calibration error (10 bins) and Brier score.

>>> import numpy as np
>>> scores = rare_class_scores(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), precision=0.5)
>>> scores["auprc"], scores["recall_at_precision"]
(1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.augment.columns import Encoder, TableSpec
from keelml.augment.guard import require_real

ECE_BINS = 10


@dataclass(frozen=True, slots=True)
class Utility:
    trained_on: str  # "real", "augmented", "synthetic", ...
    train_rows: int
    test_rows: int
    auprc: float
    recall_at_precision: float  # best recall among thresholds whose precision >= ``precision``
    precision: float
    recall: float  # at the 0.5 threshold
    ece: float
    brier: float

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def rare_class_scores(
    y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], *, precision: float
) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if y.sum() == 0:
        nan = float("nan")
        return {"auprc": nan, "recall_at_precision": nan, "recall": nan, "ece": nan, "brier": nan}
    prec, rec, _ = precision_recall_curve(y, p)
    reachable = rec[prec >= precision]
    edges = np.linspace(0, 1, ECE_BINS + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, ECE_BINS - 1)
    ece = sum(
        abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
        for b in range(ECE_BINS)
        if (which == b).any()
    )
    return {
        "auprc": round(float(average_precision_score(y, p)), 6),
        "recall_at_precision": round(float(reachable.max()) if len(reachable) else 0.0, 6),
        "recall": round(float(((p >= 0.5) & (y == 1)).sum() / y.sum()), 6),
        "ece": round(float(ece), 6),
        "brier": round(float(np.mean((p - y) ** 2)), 6),
    }


class Model:
    """Logistic regression on encoded rows (tabular) or TF-IDF (text), optionally class-weighted."""

    def __init__(
        self, spec: TableSpec | None, text: str | None, *, balanced: bool = False, seed: int = 0
    ) -> None:
        self.spec, self.text, self.balanced, self.seed = spec, text, balanced, seed
        self._encode: Any = None
        self._model: Any = None

    def fit(self, frame: pd.DataFrame, y: npt.NDArray[np.int64]) -> Model:
        from sklearn.linear_model import LogisticRegression

        if self.text is not None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(min_df=2, ngram_range=(1, 2), max_features=20000)
            vectorizer.fit(frame[self.text].fillna(""))
            self._encode = lambda f: vectorizer.transform(f[self.text].fillna(""))
        else:
            assert self.spec is not None
            encoder = Encoder.fit(frame, self.spec)
            self._encode = encoder.transform
        self._model = LogisticRegression(
            max_iter=3000, class_weight="balanced" if self.balanced else None, random_state=self.seed
        ).fit(self._encode(frame), y)
        return self

    def proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(self._model.predict_proba(self._encode(frame))[:, 1], dtype=np.float64)


def utility(
    trained_on: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    label: str,
    rare: str,
    spec: TableSpec | None,
    text: str | None = None,
    precision: float = 0.5,
    weighting: Literal["none", "balanced"] = "none",
    seed: int = 0,
) -> Utility:
    """Fit on ``train`` (any rows), score the rare class on ``test`` (real rows only: checked)."""
    require_real(test, "the test rows")
    y_train = np.asarray(train[label].astype(str) == rare, dtype=np.int64)
    y_test = np.asarray(test[label].astype(str) == rare, dtype=np.int64)
    if len(np.unique(y_train)) < 2:
        nan = float("nan")
        return Utility(trained_on, len(train), len(test), nan, nan, precision, nan, nan, nan)
    model = Model(spec, text, balanced=weighting == "balanced", seed=seed).fit(train, y_train)
    scores = rare_class_scores(y_test, model.proba(test), precision=precision)
    return Utility(
        trained_on,
        len(train),
        len(test),
        scores["auprc"],
        scores["recall_at_precision"],
        precision,
        scores["recall"],
        scores["ece"],
        scores["brier"],
    )
