"""A private run needs no validation rows (no early stopping): a small validation_fraction trains on them,
and the test rows stay the same (docs/privacy.md, "Utility: how to get it")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keelml import privacy
from keelml.train.config import TabularConfig
from keelml.train.private import PrivateTraining
from keelml.train.tabular import labels_of, split_indices, train_tabular
from tests.train.conftest import loans


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_shrinking_validation_keeps_the_test_rows_and_moves_the_rest_to_training(seed: int) -> None:
    y = np.repeat(np.arange(10), 180)
    standard = split_indices(y, TabularConfig(seed=seed))
    small = split_indices(y, TabularConfig(seed=seed, validation_fraction=0.01))
    assert np.array_equal(standard["test"], small["test"])
    assert set(standard["train"]) < set(small["train"])
    assert set(small["validation"]) < set(standard["validation"])
    assert len(small["validation"]) == 20 and len(small["train"]) == len(standard["train"]) + 160


def test_a_private_run_accounts_for_the_rows_it_trains_on() -> None:
    table = loans(400)
    kw: dict[str, Any] = {"dp_noise_multiplier": 1.0, "epochs": 1, "batch_size": 32, "hidden": (8,)}
    runs = {
        fraction: train_tabular(
            table,
            TabularConfig(validation_fraction=fraction, **kw),
            label="label",
            exclude=["id"],
            private=PrivateTraining(privacy),
        )
        for fraction in (0.1, 0.01)
    }
    standard, small = runs[0.1], runs[0.01]
    assert standard.sizes["test"] == small.sizes["test"]
    assert small.sizes["train"] > standard.sizes["train"]
    for run in runs.values():
        assert run.privacy is not None and run.privacy.train_rows == run.sizes["train"]
    # the same test rows are scored: the split draws them before the validation rows
    _, y, _ = labels_of(table, "label")
    parts = [split_indices(y, r.model.config)["test"] for r in runs.values()]
    assert np.array_equal(parts[0], parts[1])
