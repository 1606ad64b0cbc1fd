"""``ws.privacy``: the privacy ledger of a workspace and the accounting helpers, as one accessor.

Other capabilities use it at run time (never by import): training asks ``check`` before a private
run and calls ``spend`` after it succeeded; federated runs do the same.

>>> import tempfile, keelml
>>> ws = keelml.Workspace.init(tempfile.mkdtemp())
>>> ws.privacy.spend("reviews", epsilon=1.5, delta=1e-6, kind="dp-train").epsilon
1.5
>>> ws.privacy.remaining("reviews").spent_epsilon
1.5
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from keelml.core.workspace import Workspace, workspace_accessor
from keelml.privacy import accounting
from keelml.privacy.accounting import AccountantName
from keelml.privacy.budget import Budget, PrivacySettings
from keelml.privacy.ledger import BudgetStatus, LedgerEntry, PrivacyLedger


class Privacy:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    @cached_property
    def settings(self) -> PrivacySettings:
        """The validated ``[privacy]`` section of keel.toml."""
        return PrivacySettings.from_mapping((self._ws.config.model_extra or {}).get("privacy"))

    @cached_property
    def ledger(self) -> PrivacyLedger:
        return PrivacyLedger(self._ws.catalog, self.settings.budgets, self.settings.composition)

    # -- ledger ---------------------------------------------------------------------------------

    def spend(
        self, dataset: Any, *, epsilon: float, delta: float, kind: str, run_id: str | None = None,
        accountant: str = "pld", details: Mapping[str, Any] | None = None,
    ) -> LedgerEntry:  # fmt: skip
        """Record a private computation on ``dataset``; raises PrivacyBudgetExceededError (recording
        nothing) if it would exceed the dataset's budget."""
        return self.ledger.spend(
            dataset, epsilon=epsilon, delta=delta, kind=kind, run_id=run_id, accountant=accountant,
            details=details,
        )  # fmt: skip

    def check(
        self, dataset: Any, epsilon: float, delta: float, *, accountant: str = "pld",
        details: Mapping[str, Any] | None = None,
    ) -> BudgetStatus:  # fmt: skip
        """The status after a spend of (epsilon, delta), or PrivacyBudgetExceededError; records nothing."""
        return self.ledger.check(dataset, epsilon, delta, accountant=accountant, details=details)

    def remaining(self, dataset: Any) -> BudgetStatus:
        """Spent and remaining budget of ``dataset`` (``remaining_epsilon`` is None without a budget)."""
        return self.ledger.status(dataset)

    def entries(self, dataset: Any) -> list[LedgerEntry]:
        return self.ledger.entries(dataset)

    def budget(self, dataset: str) -> Budget | None:
        return self.ledger.budget(dataset)

    def datasets(self) -> list[str]:
        """Datasets with a budget or with ledger entries."""
        return self.ledger.datasets()

    # -- accounting (the same functions as keelml.privacy.compute_epsilon / noise_for_epsilon) ------

    def compute_epsilon(
        self, *, noise_multiplier: float, sample_rate: float, steps: int, delta: float,
        accountant: AccountantName = "pld",
    ) -> float:  # fmt: skip
        return accounting.compute_epsilon(
            noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta,
            accountant=accountant,
        )  # fmt: skip

    def noise_for_epsilon(
        self, *, target_epsilon: float, sample_rate: float, steps: int, delta: float,
        accountant: AccountantName = "pld",
    ) -> float:  # fmt: skip
        return accounting.noise_for_epsilon(
            target_epsilon=target_epsilon, sample_rate=sample_rate, steps=steps, delta=delta,
            accountant=accountant,
        )  # fmt: skip


@workspace_accessor("privacy")
def _privacy(ws: Workspace) -> Privacy:
    return Privacy(ws)
