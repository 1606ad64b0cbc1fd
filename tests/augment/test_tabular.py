from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.augment import SYNTHETIC_COLUMN, AugmentConfig, TooFewRowsError, UnsupportedColumnError
from keelml.core.errors import InvalidInputError

from .conftest import mixed_table


def numeric_table() -> pa.Table:
    return mixed_table().drop_columns(["colour"])


@pytest.mark.parametrize("method", ["smote", "borderline-smote", "adasyn"])
def test_numeric_oversamplers_write_marked_rows_near_the_target(aws: Workspace, method: str) -> None:
    aws.datasets.add("numbers", numeric_table(), label="label", id="id")
    result = aws.augment.run("numbers", AugmentConfig(target="rare", method=method, ratio=1.0))  # type: ignore[arg-type]
    table = aws.datasets.read(result.ref)
    synthetic = table.filter(table.column(SYNTHETIC_COLUMN))
    assert result.synthetic_rows == synthetic.num_rows > 0
    assert result.target_rows == 30 and result.fitted_rows == 24  # 20% holdout of each class
    assert set(synthetic.column("label").to_pylist()) == {"rare"}
    assert table.num_rows == 300 + synthetic.num_rows
    assert len(set(table.column("id").to_pylist())) == table.num_rows  # new ids, no clash
    assert synthetic.schema.field("count").type == pa.int64()
    x1 = np.array(synthetic.column("x1").to_pylist())
    rare_x1 = np.array(
        table.filter(pa.array(np.array(table.column("label").to_pylist()) == "rare")).column("x1")
    )
    assert x1.mean() > 1.0 and rare_x1.min() - 1e-9 <= x1.min()  # interpolated between rare rows


def test_smote_nc_and_copula_handle_mixed_tables(aws: Workspace) -> None:
    for method in ("smote-nc", "copula"):
        result = aws.augment.run("mixed@1", AugmentConfig(target="rare", method=method))  # type: ignore[arg-type]
        assert result.synthetic_rows == 270 - 30  # balanced with the largest class by default
        table = aws.datasets.read(result.ref)
        colours = set(table.filter(table.column(SYNTHETIC_COLUMN)).column("colour").to_pylist())
        assert colours <= {"red", "blue"} and colours


def test_slice_target_takes_labels_from_the_nearest_real_row(aws: Workspace) -> None:
    result = aws.augment.run("mixed@1", AugmentConfig(target="x1 > 2.5", method="smote-nc", k_neighbors=2))
    assert result.target_kind == "slice"
    table = aws.datasets.read(result.ref)
    synthetic = table.filter(table.column(SYNTHETIC_COLUMN))
    assert synthetic.num_rows == result.target_rows  # a slice doubles by default
    assert set(synthetic.column("label").to_pylist()) <= {"rare", "common"}
    copula = aws.augment.run("mixed@1", AugmentConfig(target="x1 > 0", method="copula", ratio=0.5))
    labels = aws.datasets.read(copula.ref).filter(pa.array([False] * 300 + [True] * copula.synthetic_rows))
    assert set(labels.column("label").to_pylist()) == {"rare", "common"}  # the copula models the label


def test_smote_with_one_example_names_k_neighbors_and_the_count(
    aws: Workspace, explains: Callable[..., str]
) -> None:
    table = numeric_table().slice(29)  # one 'rare' row left
    aws.datasets.add("one", table, label="label", id="id")
    with pytest.raises(TooFewRowsError) as info:
        aws.augment.run("one", AugmentConfig(target="rare", method="smote", holdout=0.0))
    explains(info.value, "k_neighbors + 1 = 6", "has 1", "--k-neighbors")
    before = len(aws.datasets.log("one"))
    with pytest.raises(TooFewRowsError):
        aws.augment.run("one", AugmentConfig(target="rare", method="copula", holdout=0.0))
    assert len(aws.datasets.log("one")) == before  # nothing written


def test_unsupported_columns_are_named(aws: Workspace, explains: Callable[..., str]) -> None:
    with pytest.raises(UnsupportedColumnError) as info:
        aws.augment.run("mixed", AugmentConfig(target="rare", method="smote"))
    explains(info.value, "SMOTE interpolates numbers", "colour", "smote-nc")
    stamps = mixed_table().append_column("seen", pa.array([dt.datetime(2024, 1, 1)] * 300))
    aws.datasets.add("stamped", stamps, label="label", id="id")
    with pytest.raises(UnsupportedColumnError) as info:
        aws.augment.run("stamped", AugmentConfig(target="rare", method="copula"))
    explains(info.value, "'seen'", "timestamp", "time column")
    with pytest.raises(UnsupportedColumnError) as info:
        aws.augment.run("reviews", AugmentConfig(target="great", method="copula", ratio=1.0))
    explains(info.value, "free text", "text-token")
    aws.datasets.add("numbers", numeric_table(), label="label", id="id")
    with pytest.raises(UnsupportedColumnError) as info:
        aws.augment.run("numbers", AugmentConfig(target="rare", method="smote-nc"))
    explains(info.value, "every feature column is numeric", "--method smote")


def test_missing_numbers_and_the_largest_class(aws: Workspace, explains: Callable[..., str]) -> None:
    table = numeric_table()
    x1 = table.column("x1").to_pylist()
    x1[3] = None
    aws.datasets.add("holes", table.set_column(1, "x1", pa.array(x1, pa.float64())), label="label", id="id")
    with pytest.raises(UnsupportedColumnError) as info:
        aws.augment.run("holes", AugmentConfig(target="rare", method="smote"))
    explains(info.value, "x1 (1 missing)", "copula")
    assert (
        aws.augment.run("holes", AugmentConfig(target="rare", method="copula", ratio=1.0)).synthetic_rows
        == 30
    )
    with pytest.raises(InvalidInputError) as info:
        aws.augment.run("mixed", AugmentConfig(target="common", method="copula"))
    explains(info.value, "already the largest class", "--ratio")


def test_new_version_points_at_its_source(aws: Workspace) -> None:
    aws.datasets.add("mixed", mixed_table(seed=1), label="label", id="id")  # mixed@2, unrelated rows
    result = aws.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", ratio=1.0))
    assert (result.source.version, result.ref.version) == (1, 3)
    info = aws.datasets.version(result.ref)
    assert info.operation == "augment"
    upstream = aws.catalog.lineage.graph(result.ref.node_id, "upstream")
    assert "dataset:mixed@1" in upstream.children(result.ref.node_id)
    manifest = aws.augment.manifest(result.ref)
    assert manifest.source == result.source and manifest.synthetic_rows == 30


def test_augment_and_ledger_on_each_catalog_backend(ws: Workspace) -> None:
    ws.datasets.add("mixed", mixed_table(), label="label", id="id")
    result = ws.augment.run("mixed", AugmentConfig(target="rare", method="copula", ratio=1.0, dp_epsilon=3.0))
    assert result.ledger and [e.kind for e in ws.privacy.entries("mixed")] == ["dp-synth"]
    upstream = ws.catalog.lineage.graph(result.ref.node_id, "upstream")
    assert "dataset:mixed@1" in upstream.children(result.ref.node_id)
    assert ws.augment.manifest(result.ref).epsilon == 3.0
