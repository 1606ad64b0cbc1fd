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
