"""The privacy ledger: every private computation on a dataset adds its (epsilon, delta) to the catalog.

Composition across entries (docs/privacy.md#composition):

- ``basic`` (default): epsilons add up and deltas add up. Always valid, whatever each entry was.
- ``pld``: entries that store their mechanism (``details["mechanism"]``: noise multiplier, sample rate,
  steps; written by DP training) are composed with the PLD accountant at the sum of their deltas;
  the others are added as in basic composition. The smaller of this and the basic total is used, since
  both are valid bounds.

A budget in keel.toml makes :meth:`PrivacyLedger.spend` refuse, before anything is recorded, an entry
that would take the total past it. The check and the insert run in one transaction that holds a
write lock, so two concurrent runs cannot both take the last of a budget.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from keelml.core.catalog import Catalog, utcnow
from keelml.core.catalog_schema import privacy_ledger
from keelml.core.errors import ConflictError, InvalidInputError
from keelml.privacy.budget import Budget, Composition

_SLACK = 1e-9  # float sums of many entries must not refuse a spend that exactly meets the budget


class PrivacyBudgetExceededError(ConflictError):
    """A private computation would take a dataset past its privacy budget (exit 5)."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    dataset: str
    dataset_version: int | None
    kind: str
    run_id: str | None
    epsilon: float
    delta: float
    accountant: str
    details: Mapping[str, Any]
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "dataset": self.dataset, "dataset_version": self.dataset_version,
            "kind": self.kind, "run_id": self.run_id, "epsilon": self.epsilon, "delta": self.delta,
            "accountant": self.accountant, "details": dict(self.details),
            "created_at": self.created_at.isoformat(),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """What a dataset has spent, under which composition rule, and what remains (None: no budget)."""

    dataset: str
    entries: int
    spent_epsilon: float
    spent_delta: float
    composition: Composition
    budget: Budget | None

    @property
    def remaining_epsilon(self) -> float | None:
        return None if self.budget is None else max(0.0, self.budget.epsilon - self.spent_epsilon)

    @property
    def remaining_delta(self) -> float | None:
        return None if self.budget is None else max(0.0, self.budget.delta - self.spent_delta)

    def describe(self) -> str:
        spent = f"spent epsilon {self.spent_epsilon:.4g}, delta {self.spent_delta:.3g} ({self.composition})"
        if self.budget is None:
            return f"{self.dataset}: {spent}; no budget set"
        return (
            f"{self.dataset}: {spent} of epsilon {self.budget.epsilon:g}, delta {self.budget.delta:g}; "
            f"remaining epsilon {self.remaining_epsilon:.4g}, delta {self.remaining_delta:.3g}"
        )

    def to_json(self) -> dict[str, Any]:
        budget = None if self.budget is None else {"epsilon": self.budget.epsilon, "delta": self.budget.delta}
        return {
            "dataset": self.dataset, "entries": self.entries, "composition": self.composition,
            "spent_epsilon": self.spent_epsilon, "spent_delta": self.spent_delta,
            "budget": budget,
            "remaining_epsilon": self.remaining_epsilon, "remaining_delta": self.remaining_delta,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Spend:
    epsilon: float
    delta: float
    accountant: str
    details: Mapping[str, Any]


def dataset_name(dataset: Any) -> tuple[str, int | None]:
    """``"reviews"``, ``"reviews@3"`` or a DatasetRef -> (name, version or None)."""
    if hasattr(dataset, "name") and hasattr(dataset, "version"):
        return str(dataset.name), dataset.version
    raw = str(dataset)
    name, _, version = raw.partition("@")
    if not name or (version and not version.isdigit()):
        raise InvalidInputError(
            f"not a dataset name: {raw!r}",
            expected="NAME or NAME@VERSION",
            received=raw,
            fix="e.g. reviews@2",
        )
    return name, int(version) if version else None


def _validate(epsilon: float, delta: float, kind: str) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not 0 <= epsilon < float("inf"):
        raise InvalidInputError(
            "epsilon must be a finite number >= 0", received=repr(epsilon), fix="pass the run's epsilon"
        )
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 <= delta < 1:
        raise InvalidInputError("delta must be in [0, 1)", received=repr(delta), fix="pass e.g. 1e-5")
    if not kind or len(kind) > 32:
        raise InvalidInputError(
            "kind must be a short name", expected="dp-train, dp-synth, federated, ...", received=repr(kind),
            fix="pass kind='dp-train'",
        )  # fmt: skip


def _mechanisms(details: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    mech = details.get("mechanism")
    phases = [mech] if isinstance(mech, Mapping) else mech
    if not isinstance(phases, list) or not phases:
        return None
    keys = {"noise_multiplier", "sample_rate", "steps"}
    return phases if all(isinstance(p, Mapping) and keys <= set(p) for p in phases) else None


def compose(spends: Sequence[_Spend], composition: Composition) -> tuple[float, float]:
    """Total (epsilon, delta) of the entries under the composition rule."""
    basic = (sum(s.epsilon for s in spends), sum(s.delta for s in spends))
    if composition == "basic":
        return basic
    with_mech = [(s, _mechanisms(s.details)) for s in spends if s.accountant == "pld"]
    composable = [(s, m) for s, m in with_mech if m is not None]
    if len(composable) < 2:
        return basic
    from keelml.privacy.accounting import SEARCH_DISCRETIZATION, dp_sgd_event, make_accountant

    # phases with the same noise and sample rate compose as one longer run: one self-composition each
    steps: dict[tuple[float, float], int] = {}
    for _, phases in composable:
        for p in phases:
            key = (float(p["noise_multiplier"]), float(p["sample_rate"]))
            steps[key] = steps.get(key, 0) + int(p["steps"])
    acc = make_accountant("pld", SEARCH_DISCRETIZATION)  # coarser grid: a valid, slightly larger epsilon
    for (sigma, rate), n in steps.items():
        acc.compose(dp_sgd_event(sigma, rate, n))
    delta_pld = sum(s.delta for s, _ in composable)
    if delta_pld <= 0:
        return basic
    rest = [s for s in spends if all(s is not c for c, _ in composable)]
    eps = float(acc.get_epsilon(delta_pld)) + sum(s.epsilon for s in rest)
    return min(eps, basic[0]), basic[1]


class PrivacyLedger:
    def __init__(self, catalog: Catalog, budgets: Mapping[str, Budget], composition: Composition) -> None:
        self._catalog = catalog
        self._budgets = budgets
        self._composition = composition

    def budget(self, dataset: str) -> Budget | None:
        return self._budgets.get(dataset)

    def _rows(self, conn: Connection, name: str) -> list[Any]:
        query = select(privacy_ledger).where(privacy_ledger.c.dataset == name).order_by(privacy_ledger.c.id)
        return list(conn.execute(query))

    def _status(self, name: str, rows: Sequence[Any], extra: _Spend | None = None) -> BudgetStatus:
        spends = [_Spend(r.epsilon, r.delta, r.accountant, r.details or {}) for r in rows]
        if extra is not None:
            spends.append(extra)
        eps, delta = compose(spends, self._composition)
        return BudgetStatus(name, len(spends), eps, delta, self._composition, self._budgets.get(name))

    def status(self, dataset: Any) -> BudgetStatus:
        name, _ = dataset_name(dataset)
        with self._catalog.begin() as conn:
            return self._status(name, self._rows(conn, name))

    def entries(self, dataset: Any) -> list[LedgerEntry]:
        name, _ = dataset_name(dataset)
        with self._catalog.begin() as conn:
            return [_entry(r) for r in self._rows(conn, name)]

    def datasets(self) -> list[str]:
        with self._catalog.begin() as conn:
            found = {str(r[0]) for r in conn.execute(select(privacy_ledger.c.dataset).distinct())}
        return sorted(found | set(self._budgets))

    def check(
        self, dataset: Any, epsilon: float, delta: float, *, accountant: str = "pld",
        details: Mapping[str, Any] | None = None, conn: Connection | None = None,
    ) -> BudgetStatus:  # fmt: skip
        """The status after spending (epsilon, delta); raises if that would exceed the budget."""
        _validate(epsilon, delta, "check")
        name, _ = dataset_name(dataset)
        if conn is None:
            with self._catalog.begin() as own:
                rows = self._rows(own, name)
        else:
            rows = self._rows(conn, name)
        before = self._status(name, rows)
        after = self._status(name, rows, _Spend(epsilon, delta, accountant, details or {}))
        budget = after.budget
        if budget is not None and (
            after.spent_epsilon > budget.epsilon + _SLACK or after.spent_delta > budget.delta + _SLACK
        ):
            raise PrivacyBudgetExceededError(
                f"a run with epsilon {epsilon:.4g}, delta {delta:.3g} would exceed the privacy budget of "
                f"dataset {name!r}",
                expected=f"at most the remaining budget: epsilon {before.remaining_epsilon:.4g}, "
                f"delta {before.remaining_delta:.3g} (budget epsilon {budget.epsilon:g}, delta "
                f"{budget.delta:g}; spent {before.spent_epsilon:.4g} / {before.spent_delta:.3g} over "
                f"{before.entries} entries, {self._composition} composition)",
                received=f"epsilon {epsilon:.4g}, delta {delta:.3g} "
                f"(total after: {after.spent_epsilon:.4g} / {after.spent_delta:.3g})",
                fix="ask for a smaller epsilon (more noise, fewer epochs), use fresh data, or raise "
                f"[privacy.budget] {name} in keel.toml if the data owner agrees",
            )
        return after

    def spend(
        self, dataset: Any, *, epsilon: float, delta: float, kind: str, run_id: str | None = None,
        accountant: str = "pld", details: Mapping[str, Any] | None = None,
    ) -> LedgerEntry:  # fmt: skip
        """Record a private computation; refuses (and records nothing) if it would exceed the budget."""
        _validate(epsilon, delta, kind)
        name, version = dataset_name(dataset)
        details = dict(details or {})
        with self._catalog.begin() as conn:
            _write_lock(conn, name)
            self.check(name, epsilon, delta, accountant=accountant, details=details, conn=conn)
            values = {
                "dataset": name, "dataset_version": version, "kind": kind, "run_id": run_id,
                "epsilon": float(epsilon), "delta": float(delta), "accountant": accountant,
                "details": details, "created_at": utcnow(),
            }  # fmt: skip
            inserted = conn.execute(privacy_ledger.insert().values(**values)).inserted_primary_key
            assert inserted is not None  # an autoincrement key always comes back
            new_id = inserted[0]
            row = conn.execute(select(privacy_ledger).where(privacy_ledger.c.id == new_id)).one()
        return _entry(row)


def _write_lock(conn: Connection, name: str) -> None:
    """Serialise spends on one dataset: check-then-insert must not interleave with another spend."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"privacy:{name}"})
    else:
        # a write statement as the first statement takes SQLite's write lock for the transaction
        conn.execute(privacy_ledger.delete().where(text("1 = 0")))


def _entry(row: Any) -> LedgerEntry:
    created = row.created_at
    if created.tzinfo is None:  # SQLite drops the zone; the catalog always writes UTC
        created = created.replace(tzinfo=dt.UTC)
    return LedgerEntry(
        int(row.id), row.dataset, row.dataset_version, row.kind, row.run_id, float(row.epsilon),
        float(row.delta), row.accountant, dict(row.details or {}), created,
    )  # fmt: skip
