from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keelml.core.errors import ColumnNotFoundError, EmptySourceError
from keelml.federated.client import FederatedClient
from keelml.federated.preprocessing import ClientStats, SchemaMismatchError, local_stats, merge_stats
from keelml.train.preprocess import Preprocessor
from tests.federated.conftest import customers


def test_merged_statistics_equal_the_pooled_ones_and_transform_like_train() -> None:
    frame = customers(300)
    frame.loc[::7, "x"] = np.nan
    frame.loc[::11, "plan"] = None
    parts = [frame.iloc[i::3] for i in range(3)]
    stats = [
        ClientStats.from_json(local_stats(p, label="label", features=["x", "z", "plan"]).to_json())
        for p in parts
    ]
    spec = merge_stats(stats, max_categories=2)
    x = frame["x"].dropna()
    name, fill, mean, std = spec.preprocessing.numeric[0]
    assert name == "x" and fill == pytest.approx(x.mean()) and mean == pytest.approx(x.mean())
    assert std == pytest.approx(x.std(ddof=0))
    pooled = Preprocessor.fit(frame[["x", "z", "plan"]], max_categories=2)
    assert spec.preprocessing.categorical[0] == ("plan", pooled.categorical[0].categories)
    assert spec.classes == ("churn", "stay")
    # the saved file's preprocessing: train's Preprocessor reads the same JSON and computes the same matrix
    train_pre = Preprocessor.from_json(spec.preprocessing.to_json())
    np.testing.assert_array_equal(train_pre.transform(frame), spec.preprocessing.transform(frame))
    assert train_pre.output_names == spec.preprocessing.output_names


def test_schema_mismatch_between_clients_names_the_columns(explains) -> None:  # type: ignore[no-untyped-def]
    a = local_stats(customers(20), label="label", features=["x", "plan"])
    other = customers(20, seed=1).assign(plan=lambda d: np.arange(len(d)))  # numeric where others are text
    b = local_stats(other, label="label", features=["x", "plan"])
    with pytest.raises(SchemaMismatchError) as info:
        merge_stats([a, b], max_categories=5)
    explains(info.value, "client 1", "plan (categorical)", "plan (numeric)")


def test_a_client_without_a_feature_column_or_label_gets_a_clear_error(explains) -> None:  # type: ignore[no-untyped-def]
    frame = customers(20)
    with pytest.raises(SchemaMismatchError) as info:
        FederatedClient("c7", frame.drop(columns="z"), label="label", features=["x", "z"]).stats()
    explains(info.value, "client 'c7'", "missing z")
    with pytest.raises(ColumnNotFoundError):
        FederatedClient("c8", frame.drop(columns="label"), label="label").stats()


def test_empty_partitions_are_refused(explains) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EmptySourceError) as info:
        FederatedClient("c0", customers(10).iloc[:0], label="label")
    explains(info.value, "client 'c0'", "empty partition")
    unlabelled = customers(10).assign(label=None)
    with pytest.raises(EmptySourceError) as info:
        FederatedClient("c1", unlabelled, label="label").stats()
    explains(info.value, "no labelled rows")


def test_a_single_class_federation_is_refused() -> None:
    frame = customers(40)
    frame["label"] = "stay"
    with pytest.raises(EmptySourceError, match="1 label class"):
        merge_stats([local_stats(frame, label="label")], max_categories=5)


def test_local_stats_reveal_only_aggregates() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0], "c": ["u", "v", "u"], "label": ["a", "b", "a"]})
    data = local_stats(frame, label="label").to_json()
    assert data == {
        "rows": 3,
        "labels": {"a": 2, "b": 1},
        "columns": {"x": ["numeric", 3, 7.0, 21.0, {}], "c": ["categorical", 3, 0.0, 0.0, {"u": 2, "v": 1}]},
    }
