"""Experiment tracking and the model registry (``ws.models``) on MLflow; gates for promotion.

mlflow is imported only when a run, the registry or a model is used.
"""

from keelml.tracking import registry as _registry  # noqa: F401  (registers ws.models)
from keelml.tracking.gates import GateResult, GatesConfig, evaluate_gates
from keelml.tracking.registry import ModelRegistry, ModelVersionInfo, Promotion, PromotionRefusedError

__all__ = [
    "GateResult",
    "GatesConfig",
    "ModelRegistry",
    "ModelVersionInfo",
    "Promotion",
    "PromotionRefusedError",
    "evaluate_gates",
]
