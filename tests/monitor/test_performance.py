"""CBPE: estimated accuracy tracks the real one on digits under a covariate shift; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keelml.core.errors import EmptySourceError, InvalidInputError
from keelml.monitor import CBPE, CBPEConfig


def _digits_model() -> tuple[object, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_rest, y_tr, y_rest = train_test_split(x / 16.0, y, test_size=0.6, random_state=0)
    x_ref, x_cur, y_ref, y_cur = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0)
    model = LogisticRegression(max_iter=2000).fit(x_tr, y_tr)
    return model, x_ref, y_ref, x_cur, y_cur


def test_cbpe_estimate_follows_accuracy_under_a_covariate_shift() -> None:
    # the window over-represents hard inputs (low confidence): P(correct | confidence) is unchanged,
    # which is the assumption CBPE makes; under heavy pixel noise it does not hold (docs/monitoring.md)
    model, x_ref, y_ref, x_cur, y_cur = _digits_model()
    det = CBPE(model.predict_proba(x_ref), y_ref)  # type: ignore[attr-defined]
    probs = model.predict_proba(x_cur)  # type: ignore[attr-defined]
    hard = np.argsort(probs.max(axis=1))[:150]
    det.update(probs[hard])
    est = det.estimate()
    assert est is not None
    true_acc = float((probs[hard].argmax(axis=1) == y_cur[hard]).mean())
    assert est.low <= true_acc <= est.high
    assert est.high < est.reference_accuracy
    assert det.report().drift


def test_cbpe_bad_input_and_state() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([3, 1], size=100)
    with pytest.raises(EmptySourceError, match="labelled"):
        CBPE(probs, np.zeros(3))
    det = CBPE(probs, (rng.random(100) > probs[:, 0]).astype(int), CBPEConfig(window_size=50))
    with pytest.raises(InvalidInputError, match="probability"):
        det.update(np.ones(4))
    det.update(np.full((1, 2), np.nan))
    assert det.report().status == "undetermined" and det.estimate() is None
    det.update(rng.dirichlet([3, 1], size=80))
    assert det.report().n_current == 50
    again = CBPE.from_state(json.loads(json.dumps(det.to_state())))
    assert again.report() == det.report() and again.estimate() == det.estimate()


def _labelled(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    probs = rng.dirichlet([6.0, 1.0, 1.0], size=n)
    labels = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    return probs, labels


def test_cbpe_p_value_is_the_held_out_permutation_p_value() -> None:
    # recompute the test by brute force: the same half split of the reference, the same calibration
    # map (fit on one half), its values on the other half against the window, every permutation counted
    from itertools import combinations

    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(1)
    probs, labels = _labelled(rng, 12)
    window = rng.dirichlet([6.0, 1.0, 1.0], size=4)
    det = CBPE(probs, labels, CBPEConfig(n_permutations=5000, seed=3))
    det.update(window)
    order = np.random.default_rng(3).permutation(12)
    fit, held = np.sort(order[:6]), np.sort(order[6:])
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(float)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(conf[fit], correct[fit])
    pooled = np.r_[iso.predict(conf[held]), iso.predict(window.max(axis=1))]
    observed = pooled[:6].mean() - pooled[6:].mean()
    drops = [pooled[list(s)].mean() - np.delete(pooled, list(s)).mean() for s in combinations(range(10), 6)]
    exact = float(np.mean(np.array(drops) >= observed - 1e-12))
    p = det.report().p_value
    assert p is not None and abs(p - exact) < 0.02  # 5000 random permutations vs all 210 splits


def test_cbpe_false_alarm_rate_is_alpha_under_no_shift() -> None:
    # the one-sided z-test on the in-sample calibrated reference alarmed about 3.4% at alpha 0.05 on
    # digits (conservative: the isotonic map is biased upwards on new rows); held out, the rate is alpha
    alarms, pvals = 0, []
    for t in range(300):
        rng = np.random.default_rng([7, t])
        probs, labels = _labelled(rng, 200)
        det = CBPE(probs, labels, CBPEConfig(n_permutations=100, seed=t))
        det.update(rng.dirichlet([6.0, 1.0, 1.0], size=100))
        alarms += det.report().drift
        pvals.append(det.report().p_value)
    assert 0.02 <= alarms / 300 <= 0.09
    assert 0.44 <= float(np.mean(pvals)) <= 0.56  # p-values about uniform
