"""Every registered detector passes the conformance suite."""

from __future__ import annotations

import pytest

from keelml.monitor import REGISTRY
from keelml.testing.detectors import DetectorCheckError, check_case

CASES = [case for cls in REGISTRY.values() for case in cls.conformance_cases()]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_detector_conforms(case) -> None:
    check_case(case)


def test_suite_catches_a_detector_that_always_alarms() -> None:
    from dataclasses import replace

    import numpy as np

    base = REGISTRY["FeatureDrift"].conformance_cases()[0]
    noisy = replace(base, null_batch=base.shifted_batch)
    with pytest.raises(DetectorCheckError, match="stationary windows"):
        check_case(noisy)
    assert np.isfinite(base.alpha)


def _mmd_case(cls):
    from dataclasses import replace

    base = REGISTRY["MMDDetector"].conformance_cases()[0]

    def make(rng):
        det = base.make(rng)
        return cls(det._ref, det.config)

    return replace(base, name=cls.__name__, make=make)


def test_suite_catches_a_detector_that_writes_into_its_input() -> None:
    from keelml.monitor import MMDDetector

    class Scribbler(MMDDetector):
        def update(self, batch):
            batch[0, 0] = 99.0
            super().update(batch)

    with pytest.raises(DetectorCheckError, match="modified the batch"):
        check_case(_mmd_case(Scribbler))


def test_suite_catches_a_detector_whose_state_forgets_the_window() -> None:
    from keelml.monitor import MMDDetector

    class Forgetful(MMDDetector):
        def to_state(self):
            state = super().to_state()
            state["current"] = []
            return state

    with pytest.raises(DetectorCheckError, match="diverges on the next update"):
        check_case(_mmd_case(Forgetful))


def test_suite_catches_a_reset_that_keeps_the_window() -> None:
    from keelml.monitor import MMDDetector

    class Sticky(MMDDetector):
        def reset(self):
            kept = getattr(self, "_cur", None)
            super().reset()
            if kept is not None:
                self._cur = kept

    with pytest.raises(DetectorCheckError, match="after reset"):
        check_case(_mmd_case(Sticky))


def test_check_detector_wants_declared_cases() -> None:
    from keelml.testing.detectors import check_detector

    with pytest.raises(DetectorCheckError, match="conformance_cases"):
        check_detector(int)
