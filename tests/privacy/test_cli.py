from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.privacy import compute_epsilon
from tests.cli.conftest import Result

Keel = Callable[..., Result]


def test_epsilon_and_noise_commands(keel: Keel) -> None:
    result = keel(
        "privacy", "epsilon", "--noise", "1.0", "--sample-rate", "0.01", "--steps", "1000", "--json"
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["epsilon"] == pytest.approx(
        compute_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=1000, delta=1e-5)
    )
    assert data["epsilon_rdp"] > data["epsilon"] and data["neighbouring"] == "add-or-remove-one record"
    text = keel("privacy", "epsilon", "-z", "1.0", "-q", "0.01", "--epochs", "10")
    assert text.code == 0 and "PLD accountant" in text.out and "1000 steps" in text.out
    inverse = keel("privacy", "noise", "--epsilon", "1", "-q", "0.01", "--steps", "1000", "--json")
    assert inverse.code == 0, inverse.err
    found = json.loads(inverse.out)
    assert found["epsilon"] <= 1 and found["epsilon"] == pytest.approx(1, rel=0.01)


def test_unreachable_and_bad_options_exit_4(keel: Keel) -> None:
    result = keel("privacy", "noise", "--epsilon", "0.01", "-q", "1.0", "--steps", "100000")
    assert result.code == 4 and "cannot be reached" in result.err and "fix:" in result.err
    both = keel("privacy", "epsilon", "-z", "1", "-q", "0.01", "--steps", "10", "--epochs", "1")
    assert both.code == 4 and "exactly one" in both.err
    bad = keel("privacy", "epsilon", "-z", "1", "-q", "2", "--steps", "10")
    assert bad.code == 4 and "sample_rate" in bad.err


def test_ledger_and_budget_commands(wsdir: Path, keel: Keel) -> None:
    with (wsdir / "keel.toml").open("a") as fh:
        fh.write("\n[privacy.budget]\nreviews = { epsilon = 8.0, delta = 1e-5 }\n")
    ws = Workspace.open(wsdir)
    ws.privacy.spend("reviews@2", epsilon=3.0, delta=1e-6, kind="dp-train", run_id="abc")
    ws.close()
    ledger = keel("-w", wsdir, "privacy", "ledger", "reviews")
    assert ledger.code == 0 and "dp-train" in ledger.out and "abc" in ledger.out
    assert "remaining epsilon 5" in ledger.out
    data = json.loads(keel("-w", wsdir, "privacy", "ledger", "reviews", "--json").out)
    assert data["entries"][0]["dataset_version"] == 2 and data["status"]["remaining_epsilon"] == 5.0
    budget = json.loads(keel("-w", wsdir, "privacy", "budget", "--json").out)
    assert [b["dataset"] for b in budget] == ["reviews"] and budget[0]["spent_epsilon"] == 3.0
    table = keel("-w", wsdir, "privacy", "budget")
    assert table.code == 0 and "reviews" in table.out and "basic" in table.out
    empty = keel("-w", wsdir, "privacy", "ledger", "other")
    assert empty.code == 0 and "no private computations" in empty.out


def test_invalid_budget_is_exit_6(wsdir: Path, keel: Keel) -> None:
    with (wsdir / "keel.toml").open("a") as fh:
        fh.write("\n[privacy.budget]\nreviews = { epsilon = 0 }\n")
    result = keel("-w", wsdir, "privacy", "budget")
    assert result.code == 6 and "epsilon > 0" in result.err
