from __future__ import annotations

import numpy as np
import pytest

from keelml.labeling import cohen_kappa, fleiss_kappa, krippendorff_alpha
from keelml.labeling.agreement import agreement, counts_per_item, majority_vote


def test_cohen_kappa_matches_scikit_learn() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 4, 200))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, a) == pytest.approx(1.0)


def test_fleiss_kappa_on_the_reference_table() -> None:
    # Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-4)


def test_krippendorff_alpha_on_the_reference_example_with_missing_ratings() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: 0.743
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3]
    c = [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]
    ratings = np.array([[-1 if v is None else v - 1 for v in row] for row in zip(a, b, c, d, strict=True)])
    assert krippendorff_alpha(ratings) == pytest.approx(0.743, abs=5e-4)


def test_perfect_agreement_gives_one_everywhere() -> None:
    truth = np.arange(30) % 3
    ratings = np.stack([truth, truth, truth], axis=1)
    report = agreement(ratings, ("a", "b", "c"), 3)
    assert report.cohen_mean == pytest.approx(1.0)
    assert report.fleiss == pytest.approx(1.0)
    assert report.alpha == pytest.approx(1.0)
    assert report.method == "majority"
    assert np.array_equal(report.consensus, truth)


def test_majority_vote_and_counts_skip_missing_ratings() -> None:
    ratings = np.array([[0, 0, 1], [2, -1, -1], [-1, -1, -1]])
    assert counts_per_item(ratings, 3).tolist() == [[2, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert majority_vote(ratings, 3).tolist() == [0, 2, -1]


def test_crowdlab_consensus_flags_the_careless_annotator() -> None:
    rng = np.random.default_rng(0)
    n, k = 300, 3
    truth = rng.integers(0, k, n)
    good = [np.where(rng.random(n) < 0.9, truth, rng.integers(0, k, n)) for _ in range(3)]
    careless = rng.integers(0, k, n)
    ratings = np.stack([*good, careless], axis=1)
    ratings[rng.random(ratings.shape) < 0.3] = -1  # not everyone labels every row
    ratings[(ratings < 0).all(axis=1), 0] = truth[(ratings < 0).all(axis=1)]
    pred_probs = np.full((n, k), 0.1)
    pred_probs[np.arange(n), truth] = 0.8
    report = agreement(ratings, ("g1", "g2", "g3", "careless"), k, pred_probs)
    assert report.method == "crowdlab"
    quality = {q.annotator: q.quality for q in report.per_annotator}
    assert quality["careless"] < min(quality["g1"], quality["g2"], quality["g3"]) - 0.2
    assert (report.consensus == truth).mean() > 0.95
    assert -0.1 < report.alpha < 0.7  # the careless annotator drags agreement down


def test_no_ratings_is_a_clear_error(explains) -> None:
    with pytest.raises(ValueError) as info:
        agreement(np.full((3, 2), -1), ("a", "b"), 2)
    explains(info.value, "no ratings")
