"""Univariate drift: decisions, multiple testing, and bad input as findings (never a crash or a false 'no drift')."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keelml.core.errors import ConfigError, EmptySourceError
from keelml.monitor import FeatureDrift, FeatureDriftConfig, adjust
from keelml.monitor.stats import categorical_test, numeric_test


def _ref(rng: np.random.Generator, n: int = 300) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=n), "c": rng.choice(list("abc"), n)}


@pytest.mark.parametrize("numeric", ["ks", "psi", "wasserstein", "jensen_shannon", "hellinger"])
def test_each_numeric_test_finds_a_mean_shift(numeric: str) -> None:
    rng = np.random.default_rng(1)
    det = FeatureDrift(
        _ref(rng), FeatureDriftConfig(numeric=numeric, categorical="psi" if numeric == "psi" else "chi2")
    )
    det.update({"x": rng.normal(1.0, 1.0, 200), "c": rng.choice(list("abc"), 200)})
    r = det.report()
    assert r.status == "drift"
    x = next(f for f in r.features if f.name == "x")
    assert x.drift and x.p_value is not None and x.p_value < 0.01


def test_empty_window_is_undetermined_not_no_drift() -> None:
    det = FeatureDrift(_ref(np.random.default_rng(0)))
    assert det.report().status == "undetermined"
    det.update({"x": np.array([]), "c": np.array([], dtype=str)})
    r = det.report()
    assert r.status == "undetermined" and not r.drift
    assert any("no rows" in f for f in r.findings)


def test_missing_feature_is_a_finding() -> None:
    rng = np.random.default_rng(0)
    det = FeatureDrift(_ref(rng))
    det.update({"x": rng.normal(size=100)})
    r = det.report()
    assert r.status == "undetermined"
    assert any("'c' is missing" in f for f in r.findings)


def test_all_nan_column_is_a_finding_and_a_missing_share_drift() -> None:
    rng = np.random.default_rng(0)
    det = FeatureDrift(_ref(rng))
    det.update({"x": np.full(50, np.nan), "c": rng.choice(list("abc"), 50)})
    r = det.report()
    assert r.status == "drift"  # the share of missing values went from 0 to 1
    assert any("all 50 values" in f for f in r.findings)
    x = next(f for f in r.features if f.name == "x")
    assert x.p_value is None and not x.drift  # the values themselves could not be tested


def test_new_categories_are_drift_by_default_and_a_finding_on_request() -> None:
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=100), "c": np.array(["a", "b", "zzz"] * 30 + ["c"] * 10)}
    det = FeatureDrift(_ref(rng))
    det.update(batch)
    assert det.report().drift
    soft = FeatureDrift(_ref(np.random.default_rng(0)), FeatureDriftConfig(new_categories="finding"))
    soft.update(batch)
    assert any("zzz" in f for f in soft.report().findings)


def test_window_keeps_only_the_last_rows() -> None:
    rng = np.random.default_rng(0)
    det = FeatureDrift(_ref(rng), FeatureDriftConfig(window_size=100))
    det.update({"x": rng.normal(3, 1, 100), "c": rng.choice(list("abc"), 100)})
    det.update({"x": rng.normal(size=100), "c": rng.choice(list("abc"), 100)})
    assert det.report().n_current == 100
    assert det.report().status == "no_drift"


def test_pandas_frame_and_state_round_trip() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(_ref(rng))
    det = FeatureDrift(ref)
    det.update(pd.DataFrame({"x": [0.1, np.nan, 0.3], "c": ["a", None, "b"]}))
    again = FeatureDrift.from_state(json.loads(json.dumps(det.to_state())))
    assert again.report() == det.report()


def test_benjamini_hochberg_rejects_at_least_what_bonferroni_does() -> None:
    p = np.random.default_rng(0).uniform(0, 0.05, 20)
    assert (adjust(p, "benjamini_hochberg") <= adjust(p, "bonferroni")).all()


def test_permutation_calibrated_threshold_is_reported() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    r = numeric_test("hellinger", a, b, rng=rng, n_permutations=200, alpha=0.05)
    assert (
        r.threshold is not None and (r.statistic > r.threshold) == (r.p_value <= 0.05)
    ) or r.p_value > 0.04
    c = categorical_test("chi2", np.array(["a"] * 10), np.array(["a"] * 5), rng=rng)
    assert c.p_value == 1.0


def test_bad_configs_and_references_say_how_to_fix() -> None:
    with pytest.raises(ConfigError, match="alpha"):
        FeatureDriftConfig(alpha=0)
    with pytest.raises(ConfigError, match="n_permutations"):
        FeatureDriftConfig(n_permutations=5)
    with pytest.raises(EmptySourceError, match="no rows"):
        FeatureDrift({"x": np.array([])})
    with pytest.raises(ConfigError, match="not a table"):
        FeatureDrift([1, 2, 3])  # type: ignore[arg-type]


def test_a_jump_in_missing_values_is_drift_even_if_the_rest_looks_the_same() -> None:
    rng = np.random.default_rng(0)
    det = FeatureDrift(_ref(rng))
    x = rng.normal(size=200)
    x[:80] = np.nan
    det.update({"x": x, "c": rng.choice(list("abc"), 200)})
    r = det.report()
    assert r.drift
    share = next(f for f in r.features if f.name == "x (missing share)")
    assert share.drift and share.test == "fisher_exact"
    again = FeatureDrift.from_state(json.loads(json.dumps(det.to_state())))
    assert again.report() == r
