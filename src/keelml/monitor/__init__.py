"""Monitoring: drift detectors under one protocol (see docs/monitoring.md).

Not loaded by ``import keelml``; scipy, scikit-learn and river are imported only when a test runs.

>>> from keelml.monitor import REGISTRY
>>> "FeatureDrift" in REGISTRY
True
"""

from keelml.monitor.api import Monitoring, ProfileInfo
from keelml.monitor.concept import ADWINDetector, ConceptDriftConfig, DDMDetector, PageHinkleyDetector
from keelml.monitor.config import AlertRule, MonitorSpec
from keelml.monitor.multivariate import (
    BBSDDetector,
    DomainClassifierDetector,
    MMDDetector,
    MultivariateConfig,
)
from keelml.monitor.performance import CBPE, CBPEConfig, PerformanceEstimate
from keelml.monitor.profile import Profile, build_profile
from keelml.monitor.profile_drift import ProfileDrift
from keelml.monitor.protocol import (
    REGISTRY,
    ConformanceCase,
    Detector,
    DriftReport,
    FeatureResult,
    adjust,
    permutation_p_value,
)
from keelml.monitor.results import CheckResult, FiredAlert, MonitorRun, WindowResult
from keelml.monitor.univariate import FeatureDrift, FeatureDriftConfig

__all__ = [
    "CBPE",
    "REGISTRY",
    "ADWINDetector",
    "AlertRule",
    "BBSDDetector",
    "CBPEConfig",
    "CheckResult",
    "ConceptDriftConfig",
    "ConformanceCase",
    "DDMDetector",
    "Detector",
    "DomainClassifierDetector",
    "DriftReport",
    "FeatureDrift",
    "FeatureDriftConfig",
    "FeatureResult",
    "FiredAlert",
    "MMDDetector",
    "MonitorRun",
    "MonitorSpec",
    "Monitoring",
    "MultivariateConfig",
    "PageHinkleyDetector",
    "PerformanceEstimate",
    "Profile",
    "ProfileDrift",
    "ProfileInfo",
    "WindowResult",
    "adjust",
    "build_profile",
    "permutation_p_value",
]
