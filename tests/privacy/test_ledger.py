from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.core.errors import ConfigError, ConflictError, InvalidInputError
from keelml.privacy import PrivacyBudgetExceededError, compute_epsilon


def _with_budget(ws: Workspace, text: str) -> Workspace:
    with (ws.root / "keel.toml").open("a") as fh:
        fh.write(text)
    return Workspace.open(ws.root)


BUDGET = "\n[privacy.budget]\nreviews = { epsilon = 8.0, delta = 1e-5 }\n"


def test_spend_until_refused_then_nothing_recorded(ws: Workspace, explains: Callable[..., str]) -> None:
    ws = _with_budget(ws, BUDGET)
    ws.privacy.spend("reviews@1", epsilon=3.0, delta=2e-6, kind="dp-train", run_id="r1")
    ws.privacy.spend("reviews", epsilon=3.0, delta=2e-6, kind="federated")
    status = ws.privacy.remaining("reviews")
    assert status.spent_epsilon == pytest.approx(6.0) and status.remaining_epsilon == pytest.approx(2.0)
    assert status.remaining_delta == pytest.approx(6e-6)
    with pytest.raises(PrivacyBudgetExceededError) as info:
        ws.privacy.check("reviews", 2.5, 1e-6)
    with pytest.raises(ConflictError) as info:
        ws.privacy.spend("reviews", epsilon=2.5, delta=1e-6, kind="dp-train")
    explains(info.value, "would exceed", "remaining budget: epsilon 2", "reviews")
    assert len(ws.privacy.entries("reviews")) == 2  # the refused spend left no trace
    # exactly the remaining budget is allowed
    ws.privacy.spend("reviews", epsilon=2.0, delta=1e-6, kind="dp-train")
    entries = ws.privacy.entries("reviews")
    assert [e.kind for e in entries] == ["dp-train", "federated", "dp-train"]
    assert entries[0].dataset_version == 1 and entries[0].run_id == "r1"
    assert entries[0].created_at.tzinfo is not None
    # delta runs out too
    with pytest.raises(PrivacyBudgetExceededError):
        ws.privacy.spend("reviews", epsilon=0.0, delta=1e-5, kind="dp-train")


def test_datasets_without_budget_are_recorded_not_refused(ws: Workspace) -> None:
    ws.privacy.spend("other", epsilon=50.0, delta=1e-3, kind="dp-synth", details={"note": "x"})
    status = ws.privacy.remaining("other")
    assert status.budget is None and status.remaining_epsilon is None and status.spent_epsilon == 50.0
    assert ws.privacy.entries("other")[0].details == {"note": "x"}
    assert "no budget set" in status.describe()


def test_pld_composition_of_identical_mechanisms_is_tighter(local_ws: Workspace) -> None:
    ws = _with_budget(
        local_ws,
        '\n[privacy]\ncomposition = "pld"\n' + BUDGET.replace("[privacy.budget]", "[privacy.budget]"),
    )
    mech = {"noise_multiplier": 2.0, "sample_rate": 0.01, "steps": 1000}
    one = compute_epsilon(**mech, delta=1e-6)  # type: ignore[arg-type]
    for _ in range(3):
        ws.privacy.spend("reviews", epsilon=one, delta=1e-6, kind="dp-train", details={"mechanism": mech})
    status = ws.privacy.remaining("reviews")
    composed = compute_epsilon(noise_multiplier=2.0, sample_rate=0.01, steps=3000, delta=3e-6)
    assert composed <= status.spent_epsilon <= composed * 1.01  # a coarser grid: a valid upper bound
    assert status.spent_epsilon < 3 * one  # tighter than basic composition
    # an entry without a mechanism is added on top
    ws.privacy.spend("reviews", epsilon=0.5, delta=0.0, kind="dp-synth")
    assert ws.privacy.remaining("reviews").spent_epsilon == pytest.approx(composed + 0.5, rel=1e-2)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("\n[privacy.budget]\nreviews = { epsilon = -1.0 }\n", "epsilon > 0"),
        ("\n[privacy.budget]\nreviews = { eps = 1.0 }\n", "privacy.budget.reviews"),
        ("\n[privacy.budget]\nreviews = { epsilon = 'a' }\n", "must be a number"),
        ("\n[privacy]\ncomposition = 'advanced'\n", "composition"),
        ("\n[privacy]\nbudgets = 1\n", "unknown keys"),
    ],
)
def test_bad_budgets_are_config_errors(
    local_ws: Workspace, text: str, needle: str, explains: Callable[..., str]
) -> None:
    ws = _with_budget(local_ws, text)
    with pytest.raises(ConfigError) as info:
        ws.privacy.remaining("reviews")
    explains(info.value, needle)


@pytest.mark.parametrize(
    "bad",
    [
        {"epsilon": -1.0, "delta": 0.0, "kind": "dp-train"},
        {"epsilon": 1.0, "delta": 1.0, "kind": "dp-train"},
        {"epsilon": 1.0, "delta": 0.0, "kind": ""},
        {"epsilon": float("nan"), "delta": 0.0, "kind": "dp-train"},
    ],
)
def test_bad_spends_are_refused(
    local_ws: Workspace, bad: dict[str, object], explains: Callable[..., str]
) -> None:
    with pytest.raises(InvalidInputError) as info:
        local_ws.privacy.spend("reviews", **bad)
    explains(info.value)
    assert local_ws.privacy.entries("reviews") == []


def test_ledger_survives_reopening(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    ws.privacy.spend("reviews", epsilon=1.0, delta=1e-6, kind="dp-train")
    ws.close()
    again = Workspace.open(tmp_path / "w")
    assert again.privacy.remaining("reviews").entries == 1
    assert again.privacy.datasets() == ["reviews"]
