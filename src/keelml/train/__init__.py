"""Training (``ws.training``): tabular classifiers now; torch is imported only when training runs."""

from keelml.train import api as _api  # noqa: F401  (registers ws.training)
from keelml.train.api import TrainedModel, Training
from keelml.train.config import TabularConfig

__all__ = ["TabularConfig", "TrainedModel", "Training"]
