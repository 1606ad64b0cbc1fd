"""River wrappers: calibration, findings for uncalibrated thresholds and non-finite values, state replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
from river.drift.binary import DDM

from keelml.core.errors import ConfigError
from keelml.monitor import ADWINDetector, ConceptDriftConfig, DDMDetector, PageHinkleyDetector
from keelml.monitor.calibration import ddm_max_statistic


def test_simulated_ddm_statistic_matches_river() -> None:
    # the calibration replays river's recursion: a threshold just under a stream's max fires, just over does not
    stream = (np.random.default_rng(3).random(400) < 0.3).astype(float)
    top = float(ddm_max_statistic(stream[None, :], warm_start=30)[0])
    for threshold, fires in ((top * 0.999, True), (top * 1.001, False)):
        ddm = DDM(warm_start=30, drift_threshold=threshold)
        seen = False
        for v in stream:
            ddm.update(v)
            seen |= ddm.drift_detected
        assert seen == fires


def test_default_thresholds_say_they_are_uncalibrated() -> None:
    det = DDMDetector()
    det.update(np.zeros(50))
    assert any("calibrated_for" in f for f in det.report().findings)
    det = ADWINDetector()
    det.update(np.zeros(50))
    assert not any("calibrated_for" in f for f in det.report().findings)


def test_non_finite_values_are_skipped_as_a_finding() -> None:
    det = PageHinkleyDetector(ConceptDriftConfig.calibrated_for(0.2, 200, trials=200))
    det.update(np.array([np.nan, np.inf]))
    r = det.report()
    assert r.status == "undetermined" and any("non-finite" in f for f in r.findings)


def test_state_replays_the_stream() -> None:
    rng = np.random.default_rng(0)
    det = ADWINDetector()
    det.update(np.r_[rng.random(400) < 0.1, rng.random(400) < 0.6].astype(float))
    again = ADWINDetector.from_state(json.loads(json.dumps(det.to_state())))
    assert again.report() == det.report() and det.report().drift


def test_calibration_rejects_bad_rates() -> None:
    with pytest.raises(ConfigError, match="error_rate"):
        ConceptDriftConfig.calibrated_for(0.0, 100)
    with pytest.raises(ConfigError, match="thresholds"):
        ConceptDriftConfig(ph_threshold=-1)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_low_error_rate_calibrates_without_nan() -> None:
    # At a 3% error rate about 4 in 10 null streams start error-free; river's DDM then alarms at the next
    # error whatever the threshold (statistic inf). The quantile used to interpolate inf - inf: a NaN
    # threshold (and a RuntimeWarning) that never alarms. Now: inf is reported, and calibration starts
    # DDM later, where an error-free start is rare enough.
    from keelml.monitor.calibration import ddm_threshold

    assert ddm_threshold(0.03, 600, 0.05, warm_start=30, trials=200) == np.inf
    cfg = ConceptDriftConfig.calibrated_for(0.03, 600, 0.05, trials=200)
    assert cfg.warm_start > 30 and np.isfinite(cfg.drift_threshold) and np.isfinite(cfg.ph_threshold)
    rng = np.random.default_rng(0)
    null = [(rng.random(600) < 0.03).astype(float) for _ in range(100)]
    alarms = 0
    for stream in null:
        det = DDMDetector(cfg)
        det.update(stream)
        alarms += det.report().drift
    assert alarms <= 12  # alpha 0.05 over 100 streams, with room for 3 standard errors

    short = ConceptDriftConfig.calibrated_for(0.01, 80, 0.05, trials=200)  # too short to start later
    det = DDMDetector(short)
    det.update(null[0][:80])
    assert short.drift_threshold == np.inf and det.report().status == "undetermined"
    assert any("no finite threshold" in f for f in det.report().findings)
