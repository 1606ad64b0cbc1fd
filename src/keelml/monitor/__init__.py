"""Monitoring: drift detectors under one protocol (see docs/monitoring.md).

``import keelml`` registers ``ws.monitor`` and loads nothing else from here; the names below load on
first use (all detector modules at once, so ``REGISTRY`` is complete), and scipy, scikit-learn and
river only when a test runs.

>>> from keelml.monitor import REGISTRY
>>> "FeatureDrift" in REGISTRY
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keelml.core.lazy import lazy_names
from keelml.core.workspace import Workspace, workspace_accessor

if TYPE_CHECKING:
    from keelml.monitor.api import Monitoring

_HOME = {
    "Monitoring": "api",
    "ProfileInfo": "api",
    "ADWINDetector": "concept",
    "ConceptDriftConfig": "concept",
    "DDMDetector": "concept",
    "PageHinkleyDetector": "concept",
    "AlertRule": "config",
    "MonitorSpec": "config",
    "BBSDDetector": "multivariate",
    "DomainClassifierDetector": "multivariate",
    "MMDDetector": "multivariate",
    "MultivariateConfig": "multivariate",
    "CBPE": "performance",
    "CBPEConfig": "performance",
    "PerformanceEstimate": "performance",
    "Profile": "profile",
    "build_profile": "profile",
    "ProfileDrift": "profile_drift",
    "REGISTRY": "protocol",
    "ConformanceCase": "protocol",
    "Detector": "protocol",
    "DriftReport": "protocol",
    "FeatureResult": "protocol",
    "adjust": "protocol",
    "permutation_p_value": "protocol",
    "CheckResult": "results",
    "FiredAlert": "results",
    "MonitorRun": "results",
    "WindowResult": "results",
    "FeatureDrift": "univariate",
    "FeatureDriftConfig": "univariate",
}
_MODULES = (
    "api",
    "concept",
    "config",
    "multivariate",
    "performance",
    "profile",
    "profile_drift",
    "protocol",
    "results",
    "univariate",
)


__getattr__ = lazy_names(__name__, _HOME, load_first=_MODULES)  # every detector module: REGISTRY complete


@workspace_accessor("monitor")
def _monitor(ws: Workspace) -> Monitoring:
    from keelml.monitor.api import Monitoring

    return Monitoring(ws)


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
