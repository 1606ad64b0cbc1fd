"""Synthetic rows never land in a test or validation split: `keel data split` and `keel train`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.augment import SYNTHETIC_COLUMN, AugmentConfig
from keelml.data.splits import SplitConfig, split_dataset
from keelml.train.config import TabularConfig
from keelml.train.tabular import split_indices, synthetic_rows


def test_data_split_keeps_synthetic_rows_in_train(aws: Workspace) -> None:
    result = aws.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", ratio=3.0))
    split = split_dataset(aws, result.ref, SplitConfig(test=0.3, validation=0.2, seed=3))
    parts = {p.name: aws.datasets.read(p.ref) for p in split.parts}
    assert not any(parts["test"].column(SYNTHETIC_COLUMN).to_pylist())
    assert not any(parts["validation"].column(SYNTHETIC_COLUMN).to_pylist())
    assert sum(parts["train"].column(SYNTHETIC_COLUMN).to_pylist()) == 90


def test_training_split_draws_evaluation_rows_from_real_rows_only() -> None:
    y = np.array([0, 1] * 100)
    marked = np.zeros(200, dtype=bool)
    marked[::3] = True
    parts = split_indices(y, TabularConfig(test_fraction=0.2, validation_fraction=0.1), train_only=marked)
    assert not marked[parts["test"]].any() and not marked[parts["validation"]].any()
    assert marked[parts["train"]].sum() == marked.sum()
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(200))
    plain = split_indices(y, TabularConfig())  # without synthetic rows: the same split as before
    assert {k: v.tolist() for k, v in plain.items()} == {
        k: v.tolist() for k, v in split_indices(y, TabularConfig(), train_only=np.zeros(200, bool)).items()
    }
    table = pa.table({"x": [1, 2, 3], SYNTHETIC_COLUMN: [False, None, True]})
    assert synthetic_rows(table).tolist() == [False, False, True]


@pytest.mark.slow
def test_tabular_training_ignores_the_marker_and_tests_on_real_rows(aws: Workspace) -> None:
    result = aws.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", ratio=3.0))
    trained = aws.training.tabular(result.ref, TabularConfig(model="logreg", epochs=2, seed=0))
    assert SYNTHETIC_COLUMN not in trained.result.features
    assert trained.result.sizes["test"] == 60 and trained.result.sizes["validation"] == 30  # of 300 real rows
    assert trained.result.sizes["train"] == 210 + 90
