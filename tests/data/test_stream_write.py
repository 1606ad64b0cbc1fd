"""ws.datasets.add_batches: one version from a stream of batches, committed once, nothing on failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from keelml import DatasetRef, Workspace
from keelml.core.errors import DuplicateIdError, EmptySourceError, SchemaConflictError
from keelml.data import delta
from keelml.data.digest import table_digest


def _stream(table: pa.Table, size: int, fail_after: int | None = None) -> Iterator[pa.RecordBatch]:
    for i, batch in enumerate(table.to_batches(max_chunksize=size)):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("the source died mid-stream")
        yield batch


def _files(ws: Workspace) -> list[Path]:
    return sorted((ws.storage_root / "datasets").rglob("*.parquet"))


def test_a_stream_makes_the_same_version_as_add(ws: Workspace, make_table) -> None:
    table = make_table(1000)
    ref = ws.datasets.add_batches("d", _stream(table, 64), label="label", id="id", source_name="test")
    assert ref == DatasetRef("d", 1, table_digest(table))
    assert ws.datasets.read(ref).sort_by("id").equals(table)
    info = ws.datasets.version(ref)
    assert (info.operation, info.rows, info.source) == ("add", 1000, "test")
    dataset = ws.datasets.dataset("d")
    assert (dataset.label_column, dataset.id_column) == ("label", "id")
    # the profile is a whole-table add's: exactly from one batch, up to its sketches from many
    other = ws.datasets.add("whole", table, label="label", id="id")
    one = ws.datasets.add_batches("one", iter(table.to_batches()), label="label", id="id")
    assert ws.datasets.profile(one).to_json() == ws.datasets.profile(other).to_json()
    merged, whole = ws.datasets.profile(ref).to_json(), ws.datasets.profile(other).to_json()
    assert merged["rows"] == whole["rows"] == 1000
    for a, b in zip(merged["columns"], whole["columns"], strict=True):
        assert (a["name"], a["moments"]["min"], a["moments"]["max"]) == (
            b["name"],
            b["moments"]["min"],
            b["moments"]["max"],
        )
    # the same rows again: the latest version is returned and no file is left behind
    before = _files(ws)
    assert ws.datasets.add_batches("d", _stream(table, 100)) == ref
    assert _files(ws) == before
    # different rows: a new version replacing the rows, roles kept
    v2 = ws.datasets.add_batches("d", _stream(make_table(10, start=5000), 3))
    assert (v2.version, ws.datasets.version(v2).parent) == (2, 1)
    assert ws.datasets.read(v2).num_rows == 10
    assert ws.datasets.read(ref).num_rows == 1000  # the old version stays readable


def test_a_failure_mid_stream_leaves_no_version_and_no_file(ws: Workspace, make_table) -> None:
    table = make_table(500)
    with pytest.raises(RuntimeError, match="mid-stream"):
        ws.datasets.add_batches("d", _stream(table, 50, fail_after=4))
    assert ws.catalog.find_dataset("d") is None
    assert _files(ws) == []
    # an existing dataset: the failed stream changes nothing
    ref = ws.datasets.add("d", table)
    before = _files(ws)
    delta_version = DeltaTable(ws.datasets.dataset("d").table_uri).version()
    with pytest.raises(RuntimeError):
        ws.datasets.add_batches("d", _stream(make_table(500, start=900), 50, fail_after=3))
    assert [v.ref for v in ws.datasets.log("d")] == [ref]
    assert _files(ws) == before
    assert DeltaTable(ws.datasets.dataset("d").table_uri).version() == delta_version


def test_bad_streams_are_refused(ws: Workspace, make_table, explains) -> None:
    with pytest.raises(EmptySourceError) as empty:
        ws.datasets.add_batches("d", iter([]))
    explains(empty.value, "no rows")
    table = make_table(40)
    twice = pa.concat_tables([table, table.slice(0, 3)])
    with pytest.raises(DuplicateIdError) as dup:
        ws.datasets.add_batches("d", _stream(twice, 7), id="id")
    explains(dup.value, "repeated")
    other = pa.table({"a": [1]})
    with pytest.raises(SchemaConflictError) as conflict:
        ws.datasets.add_batches("d", iter([*table.to_batches(), *other.to_batches()]))
    explains(conflict.value, "schema")
    assert ws.catalog.find_dataset("d") is None and _files(ws) == []
    # a later batch whose types cast safely to the first batch's is conformed
    narrow = table.slice(0, 5).cast(
        table.schema.set(table.schema.get_field_index("n"), pa.field("n", pa.int32()))
    )
    ref = ws.datasets.add_batches("d", iter([*table.slice(5).to_batches(), *narrow.to_batches()]))
    assert ref.digest == table_digest(table)


def test_files_roll_over_and_statistics_match_a_whole_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta, "FILE_ROWS", 100)
    monkeypatch.setattr(delta, "ROW_GROUP_ROWS", 32)
    table = pa.table(
        {
            "i": pa.array(range(250), pa.int64()),
            "s": pa.array([None if i < 120 else "x" * (i % 70) for i in range(250)]),
            "f": pa.array([float("inf") if i == 130 else i / 2 for i in range(250)]),
        }
    )
    batches = table.to_batches(max_chunksize=45)
    actions = delta.write_stream_files(str(tmp_path / "t"), iter(batches))
    assert [json.loads(a.stats)["numRecords"] for a in actions] == [100, 100, 50]
    groups = {100: [32, 32, 32, 4], 50: [32, 18]}  # full row groups, whatever the batch size
    for action, start in zip(actions, (0, 100, 200), strict=True):
        meta = pq.ParquetFile(tmp_path / "t" / action.path).metadata
        rows = meta.num_rows
        assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == groups[rows]
        assert json.loads(action.stats) == delta._file_stats(table.slice(start, 100))
    # committed once, the files are the version
    version = delta.commit_files(
        str(tmp_path / "t"), actions, table.schema, "error", recorded_version=None, metadata={}
    )
    assert delta.read(str(tmp_path / "t"), version).equals(table)
    delta.discard_files(str(tmp_path / "t"), actions)
    assert not list((tmp_path / "t").glob("*.parquet"))


def test_files_that_end_on_a_row_group_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FILE_ROWS is a multiple of ROW_GROUP_ROWS (2^21 and 2^17): a file can close with nothing pending."""
    monkeypatch.setattr(delta, "FILE_ROWS", 64)
    monkeypatch.setattr(delta, "ROW_GROUP_ROWS", 32)
    table = pa.table({"i": pa.array(range(200), pa.int64())})
    actions = delta.write_stream_files(str(tmp_path / "t"), iter(table.to_batches(max_chunksize=16)))
    assert [json.loads(a.stats)["numRecords"] for a in actions] == [64, 64, 64, 8]
    version = delta.commit_files(
        str(tmp_path / "t"), actions, table.schema, "error", recorded_version=None, metadata={}
    )
    assert delta.read(str(tmp_path / "t"), version).equals(table)
