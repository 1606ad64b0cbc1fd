"""Schema inference from stored profiles, the YAML round trip, and validation of the schema itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError, SourceNotFoundError
from keelml.data.quality import version_schema
from keelml.data.schema import MAX_DOMAIN, ColumnSchema, DataSchema


def _table() -> pa.Table:
    n = 200
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "x": pa.array([float(i % 50) for i in range(n)]),
            "maybe": pa.array([None if i % 10 == 0 else 1.0 for i in range(n)]),
            "region": pa.array(["EU", "US", "APAC", "EU"] * (n // 4)),
            "code": pa.array([f"c{i}" for i in range(n)]),
            "empty": pa.array([None] * n, pa.string()),
            "label": pa.array(["a", "b"] * (n // 2)),
        }
    )


def test_inferred_schema_has_types_ranges_domains_and_roles(local_ws: Workspace) -> None:
    local_ws.datasets.add("d", _table(), label="label", id="id")
    schema = version_schema(local_ws, "d@1")
    assert schema.source == "d@1" and schema.label == "label" and schema.id == "id"
    x = schema.column("x")
    assert (x.kind, x.minimum, x.maximum, x.max_missing_rate) == ("numeric", 0.0, 49.0, 0.0)
    assert schema.column("maybe").max_missing_rate == pytest.approx(0.15)  # 10% observed + half of it
    assert schema.column("region").allowed == ("APAC", "EU", "US")
    label = schema.column("label")
    assert label.allowed == ("a", "b") and label.required_in("training") and not label.required_in("serving")
    ident = schema.column("id")
    assert ident.unique and ident.minimum is None  # new ids are new values: no range


def test_bad_columns_get_notes_not_crashes(local_ws: Workspace) -> None:
    local_ws.datasets.add("d", _table(), label="label", id="id")
    schema = version_schema(local_ws, "d@1")
    empty = schema.column("empty")
    assert empty.max_missing_rate == 1.0 and "all values are missing" in empty.notes[0]
    code = schema.column("code")
    assert code.allowed is None and any("high cardinality" in n for n in code.notes)
    assert any("code:" in n for n in schema.notes)


def test_binary_column_from_invalid_utf8_gets_a_note(local_ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,text,label\n1,fine,a\n2,caf\xe9 au lait,b\n3,ok,a\n")
    local_ws.datasets.add("d", path, label="label", id="id")
    text = version_schema(local_ws, "d@1").column("text")
    assert any("UTF-8" in n for n in text.notes)


def test_yaml_round_trip_and_edit(local_ws: Workspace, tmp_path: Path) -> None:
    local_ws.datasets.add("d", _table(), label="label", id="id")
    schema = version_schema(local_ws, "d@1")
    path = schema.write(tmp_path / "schema.yaml")
    assert DataSchema.read(path) == schema
    edited = path.read_text().replace("maximum: 49.0", "maximum: 10.0")
    path.write_text(edited)
    assert DataSchema.read(path).column("x").maximum == 10.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("columns: [", "not valid YAML"),
        ("just a string", "not a keelml schema"),
        ("columns:\n- name: x\n  kind: numeric\n  dtype: double\n  colour: red\n", "unknown keys"),
        ("columns:\n- name: x\n  kind: vector\n  dtype: double\n", "unknown kind"),
        (
            "columns:\n- name: x\n  kind: numeric\n  dtype: double\n  minimum: 5\n  maximum: 1\n",
            "minimum is above maximum",
        ),
        ("columns:\n- name: x\n  kind: numeric\n  dtype: double\n  max_missing_rate: 2\n", "share of rows"),
        (
            "columns:\n- name: x\n  kind: numeric\n  dtype: double\n  environments: [prod]\n",
            "unknown environment",
        ),
        ("columns:\n- name: x\n  kind: numeric\n", "incomplete"),
        (
            "columns:\n- {name: x, kind: numeric, dtype: double}\n- {name: x, kind: numeric, dtype: double}\n",
            "twice",
        ),
    ],
)
def test_invalid_schemas_are_explained(text: str, needle: str, explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        DataSchema.from_yaml(text)
    explains(info.value, needle)


def test_missing_schema_file(tmp_path: Path, explains: Callable[..., str]) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        DataSchema.read(tmp_path / "nope.yaml")
    explains(info.value, "does not exist")


def test_column_lookup_error_names_the_columns(explains: Callable[..., str]) -> None:
    schema = DataSchema((ColumnSchema("x", "numeric", "double"),))
    with pytest.raises(KeyError) as info:
        schema.column("y")
    explains(info.value, "no column 'y'", "one of x")


def test_domain_is_capped(local_ws: Workspace) -> None:
    n = (MAX_DOMAIN + 1) * 4
    table = pa.table({"c": [f"v{i % (MAX_DOMAIN + 1)}" for i in range(n)], "y": ["a", "b"] * (n // 2)})
    local_ws.datasets.add("d", table, label="y")
    assert version_schema(local_ws, "d").column("c").allowed is None
