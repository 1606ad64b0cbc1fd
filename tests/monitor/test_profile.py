"""Reference profiles: sketches merge exactly where they should, and tests against a profile are sound."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from keelml.monitor import ProfileDrift, build_profile
from keelml.monitor.compare import categorical_vs_sketch, numeric_vs_sketch
from keelml.monitor.frame import Frame
from keelml.monitor.profile import Profile
from keelml.monitor.sketch import CategoricalSketch, NumericSketch
from keelml.monitor.univariate import FeatureDriftConfig


def test_partitioned_profile_merges_to_the_whole() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=20_000), "c": rng.choice(list("abcd"), 20_000)})
    df.loc[::97, "x"] = np.nan
    whole = build_profile(Frame(df), sample_size=300)
    parts = build_profile(Frame(df), sample_size=300, partition_rows=3_000)
    assert parts.partitions == 7 and whole.partitions == 1
    wx, px = whole.columns["x"], parts.columns["x"]
    assert isinstance(wx, NumericSketch) and isinstance(px, NumericSketch)
    assert (wx.count, wx.missing) == (px.count, px.missing)
    assert px.mean == pytest.approx(wx.mean, abs=1e-12) and px.std == pytest.approx(wx.std, rel=1e-9)
    assert abs(px.quantile(0.9) - np.nanquantile(df["x"], 0.9)) < 0.02
    assert parts.columns["c"].counts == whole.columns["c"].counts  # type: ignore[union-attr]
    assert len(parts.sample) == 300
    again = Profile.from_payload(parts.to_payload())
    assert again.rows == 20_000 and again.columns["x"].count == px.count  # type: ignore[union-attr]


def test_sample_of_merged_partitions_is_uniform() -> None:
    # bottom-k by random priority: rows of the first and last partition are equally likely to be kept
    df = pd.DataFrame({"i": np.arange(10_000, dtype=float)})
    prof = build_profile(Frame(df), sample_size=2000, partition_rows=1000)
    kept = prof.sample["i"].to_numpy()
    share_first = np.mean(kept < 5000)
    assert 0.45 < share_first < 0.55


def test_ks_against_an_exact_sketch_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=3000), rng.normal(0.1, 1, size=700)
    sk = NumericSketch.empty()
    sk.update(ref)
    got = numeric_vs_sketch("ks", sk, cur, rng=rng)
    want = ks_2samp(ref, cur, method="asymp")
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=0.05)


@pytest.mark.parametrize("test", ["psi", "jensen_shannon", "hellinger", "wasserstein"])
def test_binned_tests_against_a_sketch_find_a_shift_and_not_noise(test: str) -> None:
    rng = np.random.default_rng(2)
    sk = NumericSketch.empty()
    sk.update(rng.normal(size=50_000))
    assert numeric_vs_sketch(test, sk, rng.normal(0.4, 1, 500), rng=rng).p_value < 0.01
    assert numeric_vs_sketch(test, sk, rng.normal(0, 1, 500), rng=rng).p_value > 0.01


def test_categorical_test_reports_new_categories() -> None:
    rng = np.random.default_rng(3)
    sk = CategoricalSketch.empty()
    sk.update(rng.choice(["a", "b"], 1000).astype(object))
    res, new = categorical_vs_sketch("chi2", sk, np.array(["a", "b", "z", "z"]), rng=rng)
    assert new == ["z"] and res.p_value < 0.05


def test_profile_drift_flags_bad_input_clearly() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    det = ProfileDrift(build_profile(Frame(df)), FeatureDriftConfig(seed=0))
    det.update({"x": np.full(50, np.nan), "c": rng.choice(["a", "b"], 50)})
    r = det.report()
    assert r.status == "drift"  # the missing share moved from 0 to 1
    assert any("all 50 values in the window are missing" in f for f in r.findings)
    det.reset()
    det.update({"x": np.zeros(0), "c": np.zeros(0, dtype=object)})
    assert det.report().status == "undetermined"
    assert any("no rows" in f for f in det.report().findings)


def test_window_cost_does_not_grow_with_the_reference() -> None:
    rng = np.random.default_rng(5)
    window = {"x": rng.normal(size=5000)}
    timings = []
    for n in (20_000, 1_000_000):
        prof = build_profile(Frame(pd.DataFrame({"x": rng.normal(size=n)})), sample_size=100)
        det = ProfileDrift(prof, FeatureDriftConfig(seed=0))
        det.update(window)  # warm-up (imports)
        runs = []
        for _ in range(3):  # thread CPU time, best of 3: preemption and steal on a shared VM do not count
            start = time.thread_time()
            for _ in range(5):
                det.reset()
                det.update(window)
            runs.append(time.thread_time() - start)
        timings.append(min(runs))
    assert timings[1] < 3 * timings[0] + 0.05, timings
