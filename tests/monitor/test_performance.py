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
