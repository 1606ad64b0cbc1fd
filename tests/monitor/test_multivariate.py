"""Multivariate detectors: power on a correlation shift, bad input, state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keelml.core.errors import EmptySourceError, InvalidInputError
from keelml.monitor import BBSDDetector, DomainClassifierDetector, MMDDetector, MultivariateConfig


def test_mmd_finds_a_correlation_shift_that_marginals_miss() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 2))
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    cur = rng.multivariate_normal(np.zeros(2), cov, size=300)
    det = MMDDetector(ref, MultivariateConfig(n_permutations=200))
    det.update(cur)
    r = det.report()
    assert r.drift and r.p_value is not None and r.threshold is not None and r.statistic is not None
    assert r.statistic > r.threshold


def test_domain_classifier_reports_auc_and_p_value() -> None:
    rng = np.random.default_rng(0)
    det = DomainClassifierDetector(rng.normal(size=(200, 3)), MultivariateConfig(n_permutations=100))
    det.update(rng.normal(size=(200, 3)) + np.array([1.0, 0, 0]))
    r = det.report()
    assert r.drift and r.statistic is not None and r.statistic > 0.6


def test_bbsd_corrects_across_classes() -> None:
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(4), size=300)
    det = BBSDDetector(ref, MultivariateConfig(correction="bonferroni"))
    det.update(rng.dirichlet(np.ones(4), size=300))
    r = det.report()
    assert len(r.features) == 4
    assert all(f.adjusted_p_value == min(1.0, 4 * f.p_value) for f in r.features if f.p_value is not None)


def test_nan_rows_and_tiny_windows_are_findings() -> None:
    rng = np.random.default_rng(0)
    det = MMDDetector(rng.normal(size=(50, 2)))
    det.update(np.array([[np.nan, 1.0]]))
    r = det.report()
    assert r.status == "undetermined"
    assert any("NaN" in f for f in r.findings) and any("at least 2" in f for f in r.findings)
    det.update(np.empty((0, 2)))
    assert det.report().status == "undetermined"


def test_wrong_width_and_empty_reference_say_how_to_fix() -> None:
    rng = np.random.default_rng(0)
    det = BBSDDetector(rng.dirichlet(np.ones(3), size=20))
    with pytest.raises(InvalidInputError, match="columns"):
        det.update(rng.dirichlet(np.ones(4), size=20))
    with pytest.raises(EmptySourceError, match="reference"):
        MMDDetector(np.empty((0, 3)))
    with pytest.raises(InvalidInputError, match="not a table"):
        det.update(np.zeros((2, 2, 2)))


def test_reference_is_subsampled_and_survives_state() -> None:
    rng = np.random.default_rng(0)
    det = MMDDetector(rng.normal(size=(500, 2)), MultivariateConfig(max_reference=100))
    det.update(rng.normal(size=(30, 2)))
    assert det.report().n_reference == 100
    again = MMDDetector.from_state(json.loads(json.dumps(det.to_state())))
    assert again.report() == det.report()
