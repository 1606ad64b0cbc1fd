"""Slower end-to-end DP runs: LoRA text fine-tuning and the CLI with card, gate and ledger."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from keelml import Workspace
from keelml.train.config import TextConfig
from keelml.train.text import TextClassifier
from tests.cli.conftest import Result
from tests.train.conftest import loans
from tests.train.test_text import make_tiny_base, reviews

pytestmark = pytest.mark.slow


def test_private_lora_trains_only_adapter_and_head(tmp_path: Path) -> None:
    base = make_tiny_base(tmp_path / "tiny")
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add("reviews", reviews(160), label="score")
    config = TextConfig(text="review", base=str(base), epochs=2, batch_size=16, learning_rate=5e-2,
                        max_length=16, dp_epsilon=8.0)  # fmt: skip
    trained = ws.training.text("reviews", config)
    result = trained.result
    assert result.privacy is not None and result.privacy.epsilon <= 8.0
    assert result.trainable_parameters < result.total_parameters / 2  # adapter + head only
    assert result.steps == result.privacy.steps
    (entry,) = ws.privacy.entries("reviews")
    assert entry.details["task"] == "text"
    model = TextClassifier.from_bytes(ws.artifacts.read_bytes(trained.artifact))
    assert len(model.predict_proba(["great tasty coffee"])) == 1


def test_cli_private_training_card_gate_and_ledger(tmp_path: Path, keel: Callable[..., Result]) -> None:
    root = tmp_path / "ws"
    assert keel("init", root).code == 0
    pq.write_table(loans(400), tmp_path / "loans.parquet")
    assert (
        keel(
            "-w", root, "data", "add", "loans", tmp_path / "loans.parquet", "--label", "label", "--id", "id"
        ).code
        == 0
    )
    with (root / "keel.toml").open("a") as fh:
        fh.write(
            "\n[privacy.budget]\nloans = { epsilon = 4.0, delta = 1e-4 }\n\n[gates]\nmax_privacy_epsilon = 3.5\n"
        )
    args = ("-w", root, "train", "tabular", "--data", "loans", "--name", "loan-dp", "--epochs", "2")
    result = keel(*args, "--dp-epsilon", "3", "--max-grad-norm", "1.0")
    assert result.code == 0, result.err
    assert re.search(r"differential privacy: epsilon (2\.9\d\d|3\.000)", result.out), result.out
    assert "privacy ledger of loans" in result.out
    card = keel("-w", root, "models", "card", "loan-dp@1")
    assert card.code == 0 and re.search(r"DP-SGD: epsilon (2\.9\d\d|3\.000)", card.out), card.out
    assert "max privacy epsilon" in card.out
    ledger = json.loads(keel("-w", root, "privacy", "ledger", "loans", "--json").out)
    assert len(ledger["entries"]) == 1 and ledger["entries"][0]["run_id"]
    # a second run would exceed the budget: refused with exit 5 before training, nothing recorded
    again = keel(*args, "--dp-epsilon", "3")
    assert again.code == 5 and "remaining budget" in again.err
    assert len(json.loads(keel("-w", root, "privacy", "ledger", "loans", "--json").out)["entries"]) == 1
    both = keel(*args, "--dp-epsilon", "1", "--noise-multiplier", "1")
    assert both.code == 4 and "not both" in both.err
