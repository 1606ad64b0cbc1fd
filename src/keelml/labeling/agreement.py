"""Inter-annotator agreement, per-annotator quality and consensus labels.

Ratings are a matrix ``items x annotators`` of class codes with ``-1`` where an annotator did not
label an item. Cohen's kappa is computed for each pair of annotators on the items both labeled;
Fleiss' kappa on the items with at least two ratings (the usual generalisation to a varying number
of raters per item); Krippendorff's alpha (nominal) uses every pairable rating and allows missing
ones. Consensus labels and annotator quality come from cleanlab's multi-annotator method (CROWDLAB)
when out-of-sample predicted probabilities are given, else from majority vote.

>>> import numpy as np
>>> r = np.array([[0, 0], [1, 1], [0, 1], [1, 1]])
>>> round(cohen_kappa(r[:, 0], r[:, 1]), 3), round(krippendorff_alpha(r), 3)
(0.5, 0.533)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from keelml.core.errors import InvalidInputError

IntArray = NDArray[np.int64]


def cohen_kappa(a: IntArray, b: IntArray) -> float:
    """Cohen's kappa of two raters on the same items (nan when chance agreement is 1)."""
    a, b = np.asarray(a), np.asarray(b)
    k = int(max(a.max(initial=0), b.max(initial=0))) + 1
    if len(a) == 0:
        return float("nan")
    observed = float((a == b).mean())
    expected = float((np.bincount(a, minlength=k) / len(a)) @ (np.bincount(b, minlength=k) / len(b)))
    return float("nan") if expected >= 1.0 else (observed - expected) / (1.0 - expected)


def counts_per_item(ratings: IntArray, n_classes: int) -> IntArray:
    """items x classes: how many annotators gave each class to each item."""
    counts = np.zeros((ratings.shape[0], n_classes), dtype=np.int64)
    rows, cols = np.nonzero(ratings >= 0)
    np.add.at(counts, (rows, ratings[rows, cols]), 1)
    return counts


def fleiss_kappa(counts: IntArray) -> float:
    """Fleiss' kappa from an items x classes count table (items with < 2 ratings are ignored).

    >>> table = np.array([[0,0,0,0,14],[0,2,6,4,2],[0,0,3,5,6],[0,3,9,2,0],[2,2,8,1,1],
    ...                   [7,7,0,0,0],[3,2,6,3,0],[2,5,3,2,2],[6,5,2,1,0],[0,2,2,3,7]])
    >>> round(fleiss_kappa(table), 3)
    0.21
    """
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if len(counts) == 0:
        return float("nan")
    p_item = ((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))).mean()
    p_class = counts.sum(axis=0) / m.sum()
    p_chance = float((p_class**2).sum())
    return float("nan") if p_chance >= 1.0 else float((p_item - p_chance) / (1.0 - p_chance))


def krippendorff_alpha(ratings: IntArray) -> float:
    """Krippendorff's alpha for nominal data from items x annotators codes (-1 = missing).

    >>> r = np.array([[0, 0, -1, 0], [1, 1, 2, 1], [2, 2, 2, 2], [2, 2, 2, 2], [1, 1, 1, 1],
    ...               [0, 1, 2, 3], [3, 3, 3, 3], [0, 0, 1, 0], [1, 1, 1, 1], [-1, 4, 4, 4],
    ...               [-1, -1, 0, 0], [-1, 2, -1, -1]])
    >>> round(krippendorff_alpha(r), 3)
    0.743
    """
    ratings = np.asarray(ratings)
    if ratings.size == 0:
        return float("nan")
    counts = counts_per_item(ratings, int(ratings.max(initial=0)) + 1).astype(np.float64)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    n = m.sum()
    if n < 2:
        return float("nan")
    # coincidences within items: o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1)
    weighted = counts / (m - 1)[:, None]
    o = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = o.sum(axis=0)
    disagree_observed = o.sum() - np.trace(o)
    disagree_expected = (n_c.sum() ** 2 - (n_c**2).sum()) / (n - 1)
    if disagree_expected == 0:
        return float("nan")
    return float(1.0 - disagree_observed / disagree_expected)


def majority_vote(ratings: IntArray, n_classes: int) -> IntArray:
    """The most frequent class per item; ties go to the smallest code; -1 where nobody labeled."""
    counts = counts_per_item(ratings, n_classes)
    out = counts.argmax(axis=1)
    out[counts.sum(axis=1) == 0] = -1
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True)
class AnnotatorQuality:
    annotator: str
    labeled: int
    agreement_with_consensus: float
    quality: float | None  # CROWDLAB annotator quality (None with majority vote)


@dataclass(frozen=True)
class Agreement:
    """Agreement statistics, per-annotator quality and the consensus of a set of ratings."""

    items: int
    annotators: tuple[str, ...]
    ratings: int
    multiply_labeled: int
    cohen_pairs: tuple[tuple[str, str, int, float], ...]  # (a, b, shared items, kappa)
    cohen_mean: float
    fleiss: float
    alpha: float
    per_annotator: tuple[AnnotatorQuality, ...]
    consensus: IntArray
    consensus_quality: NDArray[np.float64]
    method: Literal["crowdlab", "majority"]


def _nan_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def agreement(
    ratings: IntArray, annotators: tuple[str, ...], n_classes: int, pred_probs: Any = None
) -> Agreement:
    """All statistics for ``ratings`` (items x annotators, -1 = missing)."""
    ratings = np.asarray(ratings, dtype=np.int64)
    if ratings.ndim != 2 or ratings.shape[1] != len(annotators) or not (ratings >= 0).any():
        raise InvalidInputError(
            "no ratings to compare",
            expected="an items x annotators matrix with at least one rating",
            received=f"shape {ratings.shape} for {len(annotators)} annotators",
            fix="import labels with `keel label import` first",
        )
    pairs = []
    for i, j in combinations(range(len(annotators)), 2):
        both = (ratings[:, i] >= 0) & (ratings[:, j] >= 0)
        if both.sum() >= 2:
            kappa = cohen_kappa(ratings[both, i], ratings[both, j])
            pairs.append((annotators[i], annotators[j], int(both.sum()), kappa))
    counts = counts_per_item(ratings, n_classes)
    consensus, quality, annotator_quality, method = _consensus(ratings, n_classes, pred_probs)
    per = []
    for j, name in enumerate(annotators):
        mine = ratings[:, j] >= 0
        agree = float((ratings[mine, j] == consensus[mine]).mean()) if mine.any() else float("nan")
        q = None if annotator_quality is None else float(annotator_quality[j])
        per.append(AnnotatorQuality(name, int(mine.sum()), agree, q))
    return Agreement(
        items=int((ratings >= 0).any(axis=1).sum()),
        annotators=annotators,
        ratings=int((ratings >= 0).sum()),
        multiply_labeled=int(((ratings >= 0).sum(axis=1) >= 2).sum()),
        cohen_pairs=tuple(pairs),
        cohen_mean=_nan_mean([p[3] for p in pairs]),
        fleiss=fleiss_kappa(counts),
        alpha=krippendorff_alpha(ratings),
        per_annotator=tuple(per),
        consensus=consensus,
        consensus_quality=quality,
        method=method,
    )


def _consensus(
    ratings: IntArray, n_classes: int, pred_probs: Any
) -> tuple[IntArray, NDArray[np.float64], NDArray[np.float64] | None, Literal["crowdlab", "majority"]]:
    votes = majority_vote(ratings, n_classes)
    counts = counts_per_item(ratings, n_classes)
    share = counts.max(axis=1) / np.maximum(counts.sum(axis=1), 1)
    if pred_probs is None:
        return votes, share.astype(np.float64), None, "majority"
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    frame = pd.DataFrame(np.where(ratings >= 0, ratings, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = get_label_quality_multiannotator(frame, np.asarray(pred_probs), verbose=False)
    labels = result["label_quality"]
    stats = result["annotator_stats"].reindex(frame.columns)
    return (
        labels["consensus_label"].to_numpy(dtype=np.int64),
        labels["consensus_quality_score"].to_numpy(dtype=np.float64),
        stats["annotator_quality"].to_numpy(dtype=np.float64),
        "crowdlab",
    )
