"""Augmentation and synthetic data for rare classes and rare events (``ws.augment``).

Oversampling (SMOTE, Borderline-SMOTE, ADASYN, SMOTE-NC via imbalanced-learn), a Gaussian-copula
synthesizer of our own (optionally differentially private), text augmentation without downloads, and
fidelity / utility / privacy evaluation. sklearn, imbalanced-learn and scipy are imported only when
a method runs, so ``import keelml`` stays light.
"""

from keelml.augment import api as _api  # noqa: F401  (registers ws.augment)
from keelml.augment.api import Augmenter, AugmentResult
from keelml.augment.columns import TableSpec, UnsupportedColumnError
from keelml.augment.config import METHODS, SYNTHETIC_COLUMN, AugmentConfig
from keelml.augment.copula import GaussianCopula
from keelml.augment.guard import SyntheticLeakError, require_real
from keelml.augment.oversample import TooFewRowsError
from keelml.augment.text_tokens import TextTooShortError

__all__ = [
    "METHODS",
    "SYNTHETIC_COLUMN",
    "AugmentConfig",
    "AugmentResult",
    "Augmenter",
    "GaussianCopula",
    "SyntheticLeakError",
    "TableSpec",
    "TextTooShortError",
    "TooFewRowsError",
    "UnsupportedColumnError",
    "require_real",
]
