"""Diffs between versions: by id or by content, reading only the files that differ."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError
from keelml.data import delta


def _table(ws: Workspace, spec: str) -> pa.Table:
    return ws.datasets.read(spec).sort_by("id")


def test_diff_by_id_after_append(ws: Workspace, make_table) -> None:
    v1 = ws.datasets.add("d", make_table(20), id="id", label="label")
    v2 = ws.datasets.append("d", make_table(7, start=20))
    diff = ws.datasets.diff(v1, v2)
    assert diff.matched_by == "id"
    assert (diff.added, diff.removed, diff.changed) == (7, 0, 0)
    assert diff.sample_added == tuple(range(20, 27))
    assert diff.schema.empty
    assert not diff.identical
    back = ws.datasets.diff("d@2", "d@1")
    assert (back.added, back.removed, back.changed) == (0, 7, 0)
    assert back.sample_removed == tuple(range(20, 27))


def test_diff_by_id_after_write_version_with_changed_rows(ws: Workspace, make_table) -> None:
    v1 = ws.datasets.add("d", make_table(30), id="id", label="label")
    table = _table(ws, "d@1")
    # change the label of ids 3 and 17, drop ids 0..4 except 3, add ids 100 and 101
    label = pc.if_else(pc.is_in(table.column("id"), pa.array([3, 17])), "changed", table.column("label"))
    table = table.set_column(3, "label", label)
    table = table.filter(pc.invert(pc.is_in(table.column("id"), pa.array([0, 1, 2, 4]))))
    table = pa.concat_tables([table, make_table(2, start=100)])
    v2 = ws.datasets.write_version("d", table, operation="relabel")
    diff = ws.datasets.diff(v1, v2)
    assert (diff.added, diff.removed, diff.changed) == (2, 4, 2)
    assert diff.sample_added == (100, 101)
    assert diff.sample_removed == (0, 1, 2, 4)
    assert diff.sample_changed == (3, 17)
    as_json = diff.to_json()
    assert as_json["rows"] == {"added": 2, "removed": 4, "changed": 2}
    assert (as_json["a"], as_json["b"]) == ("d@1", "d@2")


def test_content_diff_without_an_id_column(ws: Workspace) -> None:
    v1 = ws.datasets.add("d", pa.table({"a": [1, 2, 2, 3], "b": ["x", "y", "y", "z"]}))
    v2 = ws.datasets.write_version(
        "d", pa.table({"a": [2, 3, 3, 4], "b": ["y", "z", "z", "w"]}), operation="edit"
    )
    diff = ws.datasets.diff(v1, v2)
    assert diff.matched_by == "content"
    # multisets: v1 = {1x, 2y, 2y, 3z}, v2 = {2y, 3z, 3z, 4w}
    assert (diff.added, diff.removed, diff.changed) == (2, 2, 0)
    v3 = ws.datasets.append("d", pa.table({"a": [9], "b": ["q"]}))
    assert (ws.datasets.diff(v2, v3).added, ws.datasets.diff(v2, v3).removed) == (1, 0)


def test_diff_of_a_version_with_itself_is_empty(ws: Workspace, make_table) -> None:
    v1 = ws.datasets.add("d", make_table(5), id="id")
    diff = ws.datasets.diff(v1, "d@latest")
    assert diff.identical
    assert (diff.added, diff.removed, diff.changed, diff.files_read) == (0, 0, 0, 0)


def test_diff_reads_only_the_files_that_differ(local_ws: Workspace, make_table) -> None:
    local_ws.datasets.add("d", make_table(50), id="id")
    for i in range(1, 5):
        last = local_ws.datasets.append("d", make_table(10, start=40 + 10 * i))
    record = local_ws.catalog.get_version("d", last.version)
    total = len(delta.files(local_ws.datasets.dataset("d").table_uri, record.delta_version))
    assert total >= 5
    diff = local_ws.datasets.diff(f"d@{last.version - 1}", last)
    assert diff.added == 10
    assert diff.files_read < total
    assert diff.files_read == 1
    first_to_last = local_ws.datasets.diff("d@1", last)
    assert first_to_last.added == 40
    assert first_to_last.files_read == total - 1


def test_schema_changes_are_reported(ws: Workspace, make_table) -> None:
    v1 = ws.datasets.add("d", make_table(10), id="id")
    table = _table(ws, "d@1").drop_columns(["n"])
    table = table.append_column("score", pa.array([0.5] * 10))
    table = table.set_column(1, "x", pc.cast(table.column("x"), pa.float32()))
    v2 = ws.datasets.write_version("d", table, operation="reshape")
    diff = ws.datasets.diff(v1, v2)
    assert diff.schema.added == ("score",)
    assert diff.schema.removed == ("n",)
    assert diff.schema.retyped == (("x", "double", "float"),)
    assert not diff.schema.empty
    # compared on the columns both versions share with the same type: id and label
    assert (diff.added, diff.removed, diff.changed) == (0, 0, 0)
    assert diff.to_json()["schema"] == {
        "added": ["score"],
        "removed": ["n"],
        "retyped": [["x", "double", "float"]],
    }


def test_diff_needs_two_versions_of_one_dataset(local_ws: Workspace, make_table, explains) -> None:
    local_ws.datasets.add("a", make_table(3))
    local_ws.datasets.add("b", make_table(3))
    with pytest.raises(InvalidInputError) as info:
        local_ws.datasets.diff("a@1", "b@1")
    explains(info.value, "one dataset", "a and b")
