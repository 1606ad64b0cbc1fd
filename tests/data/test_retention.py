"""Delta's own log clean-up must never break time travel to a version that a pin protects."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from keelml import Workspace
from keelml.data.digest import table_digest

# Delta expires log entries by file age; make every log file 25 years old so that clean-up with
# Delta's default 30-day retention would remove them all (see the control test below).
LONG_AGO = 978_307_200  # 2001-01-01


def _age_log(uri: str) -> None:
    log = Path(uri) / "_delta_log"
    for entry in log.iterdir():
        os.utime(entry, (LONG_AGO, LONG_AGO))


def _checkpoint_and_clean(uri: str) -> None:
    table = DeltaTable(uri)
    table.create_checkpoint()
    table.cleanup_metadata()


def test_control_plain_delta_table_loses_old_versions(tmp_path: Path) -> None:
    # Without our table settings the same procedure removes the log of version 0: this is what
    # the keelml test below guards against, and shows that the procedure really cleans up.
    uri = str(tmp_path / "plain")
    write_deltalake(uri, pa.table({"a": [0]}))
    for i in range(1, 4):
        write_deltalake(uri, pa.table({"a": [i]}), mode="append")
    _age_log(uri)
    _checkpoint_and_clean(uri)
    with pytest.raises(Exception):  # noqa: B017 - deltalake raises its own TableNotFoundError here
        DeltaTable(uri, version=0).to_pyarrow_table()


def test_pinned_version_survives_checkpoint_and_log_cleanup(ws: Workspace, make_table) -> None:
    first = make_table(10)
    v1 = ws.datasets.add("d", first, id="id", label="label")
    ws.catalog.lineage.pin(v1.node_id, "model m@1 was trained on it")
    for i in range(1, 6):
        ws.datasets.append("d", make_table(5, start=10 * i))
    schema_change = ws.datasets.read("d").append_column("extra", pa.array([1.0] * 35))
    ws.datasets.write_version("d", schema_change, operation="augment")
    uri = ws.datasets.dataset("d").table_uri
    v1_delta = ws.catalog.get_version("d", 1).delta_version

    config = DeltaTable(uri).metadata().configuration
    assert config.get("delta.enableExpiredLogCleanup") == "false"

    _age_log(uri)
    _checkpoint_and_clean(uri)

    assert any(p.name.endswith(".checkpoint.parquet") for p in (Path(uri) / "_delta_log").iterdir())
    old = DeltaTable(uri, version=v1_delta).to_pyarrow_table()
    assert old.num_rows == 10
    assert table_digest(old) == v1.digest
    assert v1.node_id in ws.catalog.lineage.protected()
    read = ws.datasets.read("d@1")
    assert read.sort_by("id").equals(first)
    assert table_digest(read) == v1.digest
    # the table still takes writes after the checkpoint
    assert ws.datasets.append("d", _extra_rows()).version == 8


def _extra_rows() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1000], pa.int64()),
            "x": [1.0],
            "n": pa.array([1], pa.int64()),
            "label": ["cat"],
            "extra": [2.0],
        }
    )
