"""ws.datasets: add, append, write_version, log and list; refused appends change nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from keelml import DatasetRef, Workspace
from keelml.core.errors import DuplicateIdError, SchemaConflictError
from keelml.data.digest import table_digest


def test_add_append_log_and_list(ws: Workspace, make_table, tmp_path: Path) -> None:
    v1 = ws.datasets.add("d", make_table(10), id="id", label="label")
    assert v1 == DatasetRef("d", 1, table_digest(make_table(10)))
    v2 = ws.datasets.append("d", make_table(5, start=10))
    csv = tmp_path / "more.csv"
    csv.write_text("id,x,n,label\n100,1.5,3,cat\n101,2.5,-4,dog\n")
    v3 = ws.datasets.append("d", csv)
    log = ws.datasets.log("d")
    assert [v.ref for v in log] == [v1, v2, v3]
    assert [(v.operation, v.rows, v.parent) for v in log] == [
        ("add", 10, None),
        ("append", 15, 1),
        ("append", 17, 2),
    ]
    assert log[0].source == "python:arrow"
    assert log[2].source == str(csv.resolve())
    assert log[1].to_json()["version"] == 2
    assert ws.datasets.ref("d") == ws.datasets.ref("d@latest") == v3
    ws.datasets.add("other", make_table(3))
    listing = {info.name: info for info in ws.datasets.list()}
    assert set(listing) == {"d", "other"}
    d = listing["d"]
    assert (d.latest, d.rows, d.columns, d.versions, d.label, d.id, d.time) == (
        v3,
        17,
        4,
        3,
        "label",
        "id",
        None,
    )
    # every version stays readable as it was
    assert ws.datasets.read(v1).sort_by("id").equals(make_table(10))
    assert ws.datasets.read("d@2").num_rows == 15


def test_append_conforms_column_order_and_safe_casts(ws: Workspace, make_table) -> None:
    ws.datasets.add("d", make_table(5), id="id")
    more = make_table(3, start=5)
    reordered = more.select(["label", "n", "x", "id"]).cast(
        pa.schema([("label", pa.string()), ("n", pa.int32()), ("x", pa.float64()), ("id", pa.int32())])
    )
    ref = ws.datasets.append("d", reordered)
    table = ws.datasets.read(ref)
    assert table.schema == ws.datasets.read("d@1").schema
    assert table.sort_by("id").equals(pa.concat_tables([make_table(5), more]))
    assert ref.digest == table_digest(table)


def test_append_to_a_time_column_parses_strings(local_ws: Workspace) -> None:
    local_ws.datasets.add("d", pa.table({"t": ["2024-01-01T00:00:00"], "v": [1]}), time="t")
    ref = local_ws.datasets.append("d", pa.table({"t": ["2024-01-02T00:00:00"], "v": [2]}))
    assert local_ws.datasets.read(ref).schema.field("t").type == pa.timestamp("us")


def _unchanged(ws: Workspace) -> tuple[object, ...]:
    """What a refused append must leave alone: the log, the latest rows and Delta's own head."""
    uri = ws.datasets.dataset("d").table_uri
    latest = ws.datasets.ref("d")
    return (
        [v.ref for v in ws.datasets.log("d")],
        ws.datasets.read(latest).sort_by("id"),
        ws.datasets.profile(latest).to_json(),
        DeltaTable(uri).version(),
        sorted(p.name for p in Path(uri).rglob("*") if p.is_file()),
        {(e.src, e.dst) for e in ws.catalog.lineage.graph("dataset:d@1", "downstream").edges},
    )


def _assert_same(after: tuple[object, ...], before: tuple[object, ...]) -> None:
    for i, (a, b) in enumerate(zip(after, before, strict=True)):
        assert a.equals(b) if isinstance(a, pa.Table) else a == b, f"part {i} changed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (lambda t: t.drop_columns(["n"]), ["missing n"]),
        (lambda t: t.append_column("extra", pa.array([1] * t.num_rows)), ["extra extra"]),
        (lambda t: t.rename_columns(["id", "x", "N", "label"]), ["missing n", "extra N"]),
        (
            lambda t: t.set_column(1, "x", pa.array(["not a number"] * t.num_rows)),
            ["incompatible types", "x: double -> string"],
        ),
        (
            lambda t: t.set_column(2, "n", pa.array([0.5] * t.num_rows)),
            ["incompatible types", "n: int64 -> double"],
        ),
    ],
    ids=["missing-column", "extra-column", "renamed-column", "string-for-double", "lossy-float-for-int"],
)
def test_schema_conflict_on_append_changes_nothing(
    ws: Workspace, make_table, change, needles: list[str], explains
) -> None:
    ws.datasets.add("d", make_table(6), id="id", label="label")
    ws.datasets.append("d", make_table(4, start=6))
    before = _unchanged(ws)
    with pytest.raises(SchemaConflictError) as info:
        ws.datasets.append("d", change(make_table(3, start=50)))
    assert isinstance(info.value, ValueError)
    assert info.value.exit_code == 5
    explains(info.value, "does not match the schema of d@2", "id:int64", *needles)
    _assert_same(_unchanged(ws), before)
    # and the dataset still takes a good append as the next version
    assert ws.datasets.append("d", make_table(2, start=60)).version == 3


def test_duplicate_ids_within_an_append_change_nothing(ws: Workspace, make_table, explains) -> None:
    ws.datasets.add("d", make_table(5), id="id")
    before = _unchanged(ws)
    dup = pa.concat_tables([make_table(2, start=10), make_table(1, start=10)])
    with pytest.raises(DuplicateIdError) as info:
        ws.datasets.append("d", dup)
    explains(info.value, "has repeated values", "10")
    _assert_same(_unchanged(ws), before)


def test_ids_already_in_the_dataset_change_nothing(ws: Workspace, make_table, explains) -> None:
    ws.datasets.add("d", make_table(5), id="id")
    ws.datasets.append("d", make_table(5, start=5))
    before = _unchanged(ws)
    overlapping = make_table(4, start=8)  # ids 8, 9 exist (in d@2), 10, 11 are new
    with pytest.raises(DuplicateIdError) as info:
        ws.datasets.append("d", overlapping)
    explains(info.value, "2 appended ids already exist in d@2", "[8, 9]")
    _assert_same(_unchanged(ws), before)
    assert ws.datasets.append("d", make_table(2, start=10)).version == 3


def test_append_without_an_id_column_allows_repeated_rows(local_ws: Workspace) -> None:
    local_ws.datasets.add("d", pa.table({"a": [1, 2]}))
    ref = local_ws.datasets.append("d", pa.table({"a": [1, 2]}))
    assert ref.version == 2
    assert sorted(local_ws.datasets.read(ref).column("a").to_pylist()) == [1, 1, 2, 2]
    assert ref.digest == table_digest(pa.table({"a": [1, 1, 2, 2]}))


def test_re_add_replaces_the_rows_and_keeps_the_roles(ws: Workspace, make_table) -> None:
    ws.datasets.add("d", make_table(10), id="id", label="label")
    ref = ws.datasets.add("d", make_table(4, start=100))
    assert ref.version == 2
    assert ws.datasets.read(ref).sort_by("id").equals(make_table(4, start=100))
    record = ws.datasets.dataset("d")
    assert (record.id_column, record.label_column) == ("id", "label")
    assert ws.datasets.profile(ref).label == "label"


def test_write_version_records_operation_source_and_parents(ws: Workspace, make_table) -> None:
    ws.datasets.add("d", make_table(6), id="id", label="label")
    other = ws.datasets.add("other", make_table(2, start=50))
    derived = ws.datasets.read("d").filter(pa.compute.greater(pa.compute.field("id"), 2))
    ref = ws.datasets.write_version("d", derived, operation="split", source="split:train", parents=(other,))
    info = ws.datasets.version(ref)
    assert (info.operation, info.source, info.rows, info.parent) == ("split", "split:train", 3, 1)
    edges = {(e.src, e.relation) for e in ws.catalog.lineage.graph(ref.node_id, "upstream").edges}
    assert edges == {("dataset:d@1", "split"), (other.node_id, "split")}


def test_write_version_checks_the_id_column(ws: Workspace, make_table) -> None:
    ws.datasets.add("d", make_table(4), id="id")
    with pytest.raises(DuplicateIdError):
        ws.datasets.write_version("d", pa.concat_tables([make_table(2), make_table(2)]), operation="augment")
    assert len(ws.datasets.log("d")) == 1


def test_concurrent_appends_are_serialised(local_ws: Workspace, make_table) -> None:
    local_ws.datasets.add("d", make_table(10), id="id")
    errors: list[BaseException] = []
    refs: list[DatasetRef] = []

    def append(start: int) -> None:
        try:
            refs.append(local_ws.datasets.append("d", make_table(50, start=start)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(1000 * (i + 1),)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.version for r in refs) == [2, 3, 4]
    latest = local_ws.datasets.read("d")
    assert latest.num_rows == 160
    assert table_digest(latest) == local_ws.datasets.ref("d").digest
