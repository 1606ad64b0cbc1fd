"""Agreement report for a dataset's annotations, with consensus labels.

The out-of-sample probabilities CROWDLAB needs come from the default model (logistic regression on
the dataset's features) by stratified cross-validation over the annotated rows, fitted to their
majority-vote labels. With too few rows per class, or a single annotator, consensus is majority vote.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from keelml.core.errors import InvalidInputError
from keelml.labeling.agreement import Agreement, agreement, majority_vote
from keelml.labeling.models import Featurizer, infer_features
from keelml.labeling.suggest import DatasetView


def _nan_to_none(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


@dataclass(frozen=True)
class AgreementReport:
    dataset: str
    classes: tuple[str, ...]
    item_ids: tuple[str, ...]
    stats: Agreement

    @property
    def consensus(self) -> dict[str, str]:
        return {
            i: self.classes[c] for i, c in zip(self.item_ids, self.stats.consensus, strict=True) if c >= 0
        }

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "dataset": self.dataset,
            "items": s.items,
            "annotators": list(s.annotators),
            "ratings": s.ratings,
            "multiply_labeled": s.multiply_labeled,
            "cohen_kappa_mean": _nan_to_none(s.cohen_mean),
            "cohen_kappa_pairs": [
                {"a": a, "b": b, "shared": n, "kappa": _nan_to_none(k)} for a, b, n, k in s.cohen_pairs
            ],
            "fleiss_kappa": _nan_to_none(s.fleiss),
            "krippendorff_alpha": _nan_to_none(s.alpha),
            "method": s.method,
            "per_annotator": [
                {
                    "annotator": q.annotator,
                    "labeled": q.labeled,
                    "agreement_with_consensus": _nan_to_none(q.agreement_with_consensus),
                    "quality": None if q.quality is None else _nan_to_none(q.quality),
                }
                for q in s.per_annotator
            ],
        }


def ratings_matrix(annotations: pa.Table) -> tuple[np.ndarray[Any, Any], list[str], list[str], list[str]]:
    """items x annotators codes (-1 missing; each annotator's latest label), item ids, annotators, classes."""
    frame = annotations.select(["item_id", "label", "annotator", "annotated_at"]).to_pandas()
    frame["order"] = np.arange(len(frame))
    latest = frame.sort_values(["annotated_at", "order"]).groupby(["item_id", "annotator"]).tail(1)
    items = sorted(latest["item_id"].unique())
    annotators = sorted(latest["annotator"].unique())
    classes = sorted(latest["label"].unique())
    matrix = np.full((len(items), len(annotators)), -1, dtype=np.int64)
    ii = {v: i for i, v in enumerate(items)}
    aa = {v: i for i, v in enumerate(annotators)}
    cc = {v: i for i, v in enumerate(classes)}
    for item, label, who in zip(latest["item_id"], latest["label"], latest["annotator"], strict=True):
        matrix[ii[item], aa[who]] = cc[label]
    return matrix, items, annotators, classes


def _out_of_sample_probs(view: DatasetView, items: list[str], y: np.ndarray[Any, Any], k: int) -> Any:
    counts = np.bincount(y, minlength=k)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    exclude = {view.id_column, view.label_column} | ({view.time_column} if view.time_column else set())
    featurizer = Featurizer(infer_features(view.table, exclude))
    x = featurizer.fit_transform(view.table)
    row_of = {v: i for i, v in enumerate(view.id_texts_list)}
    rows = np.array([row_of[i] for i in items])
    folds = StratifiedKFold(int(min(5, present.min())), shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(
            LogisticRegression(max_iter=500), x[rows], y, cv=folds, method="predict_proba"
        )
    full = np.full((len(items), k), 1e-3)
    full[:, np.unique(y)] += probs
    return full / full.sum(axis=1, keepdims=True)


def agreement_report(view: DatasetView, annotations: pa.Table, *, use_model: bool = True) -> AgreementReport:
    if annotations.num_rows == 0:
        raise InvalidInputError(
            f"{view.ref.name} has no annotations",
            expected="labels imported with `keel label import`",
            received="none",
            fix=f"import a labeled batch: keel label import {view.ref.name} batch.csv --annotator ID",
        )
    matrix, items, annotators, classes = ratings_matrix(annotations)
    probs = None
    if use_model and len(annotators) >= 2 and ((matrix >= 0).sum(axis=1) >= 2).any():
        probs = _out_of_sample_probs(view, items, majority_vote(matrix, len(classes)), len(classes))
    stats = agreement(matrix, tuple(annotators), len(classes), probs)
    return AgreementReport(view.ref.name, tuple(classes), tuple(items), stats)
