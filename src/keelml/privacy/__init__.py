"""Differential privacy: accounting (dp-accounting, imported lazily), the privacy ledger (``ws.privacy``).

DP-SGD itself runs inside training (``keel train ... --dp-epsilon``), which reaches this capability
through ``ws.privacy`` at run time.
"""

from keelml.privacy.accounting import (
    NEIGHBOURING,
    GaussianAccountant,
    UnreachableEpsilonError,
    compute_epsilon,
    noise_for_epsilon,
)
from keelml.privacy.api import Privacy
from keelml.privacy.budget import Budget, PrivacySettings
from keelml.privacy.ledger import BudgetStatus, LedgerEntry, PrivacyBudgetExceededError

__all__ = [
    "NEIGHBOURING",
    "Budget",
    "BudgetStatus",
    "GaussianAccountant",
    "LedgerEntry",
    "Privacy",
    "PrivacyBudgetExceededError",
    "PrivacySettings",
    "UnreachableEpsilonError",
    "compute_epsilon",
    "noise_for_epsilon",
]
