"""Augmentation and synthetic data for rare classes and rare events (``ws.augment``).

Oversampling (SMOTE, Borderline-SMOTE, ADASYN, SMOTE-NC via imbalanced-learn), a Gaussian-copula
synthesizer of our own (optionally differentially private), text augmentation without downloads, and
fidelity / utility / privacy evaluation. Nothing heavy (pandas, sklearn, imbalanced-learn, scipy) is
imported by ``import keelml``: the public names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keelml.core.lazy import lazy_names
from keelml.core.workspace import Workspace, workspace_accessor

if TYPE_CHECKING:
    from keelml.augment.api import Augmenter, AugmentResult
    from keelml.augment.columns import TableSpec, UnsupportedColumnError
    from keelml.augment.config import METHODS, SYNTHETIC_COLUMN, AugmentConfig
    from keelml.augment.copula import GaussianCopula
    from keelml.augment.guard import SyntheticLeakError, require_real
    from keelml.augment.oversample import TooFewRowsError
    from keelml.augment.text_tokens import TextTooShortError

_HOME = {
    "Augmenter": "api", "AugmentResult": "api", "TableSpec": "columns", "UnsupportedColumnError": "columns",
    "METHODS": "config", "SYNTHETIC_COLUMN": "config", "AugmentConfig": "config", "GaussianCopula": "copula",
    "SyntheticLeakError": "guard", "require_real": "guard", "TooFewRowsError": "oversample",
    "TextTooShortError": "text_tokens",
}  # fmt: skip


__getattr__ = lazy_names(__name__, _HOME)


@workspace_accessor("augment")
def _augment(ws: Workspace) -> Augmenter:
    from keelml.augment.api import Augmenter

    return Augmenter(ws)


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
