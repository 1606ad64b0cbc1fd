"""Slices: the safe predicate language, keel.toml declarations, and the slice report."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError, ConfigError, InvalidInputError
from keelml.data.batches import VersionSource, table_batches
from keelml.data.slice_report import slice_report
from keelml.data.slices import Slice, parse_slice_option, slices_from_config

TABLE = pa.table(
    {
        "review": ["short", "x" * 300, None, "three little words", "y" * 250],
        "region": ["EU", "US", "EU", None, "APAC"],
        "price": [1.0, 5.0, -3.0, 10.0, None],
        "score": ["great", "other", "great", "great", "other"],
    }
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("text_length(review) > 200", [False, True, False, False, True]),
        ('region == "EU"', [True, False, True, False, False]),
        ("region in ['EU', 'APAC']", [True, False, True, False, True]),
        ("region not in ('EU',)", [False, True, False, False, True]),
        ("1 <= price < 10", [True, True, False, False, False]),
        ("abs(price) > 2 or is_missing(region)", [False, True, True, True, False]),
        ("not price > 2", [True, False, True, False, False]),
        ("word_count(review) == 3 and lower(score) == 'great'", [False, False, False, True, False]),
        ("price > -5", [True, True, True, True, False]),
    ],
)
def test_predicates(expression: str, expected: list[bool]) -> None:
    assert Slice("s", expression).mask(TABLE).to_pylist() == expected


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('ls')",
        "review.upper() == 'X'",
        "price + 1 > 2",
        "lambda: 1",
        "len(review) > 2",
        "x >",
    ],
)
def test_unsafe_or_invalid_predicates_are_refused(expression: str, explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        Slice("bad", expression)
    explains(info.value, "slice 'bad'")


def test_evaluation_errors_are_explained(explains: Callable[..., str]) -> None:
    with pytest.raises(ColumnNotFoundError) as info:
        Slice("s", "regoin == 'EU'").mask(TABLE)
    explains(info.value, "regoin", "did you mean region")
    with pytest.raises(InvalidInputError) as info2:
        Slice("s", "region > 5").mask(TABLE)
    explains(info2.value, "cannot evaluate")
    with pytest.raises(InvalidInputError) as info3:
        Slice("s", "price").mask(TABLE)
    explains(info3.value, "not a condition")


def test_slices_from_keel_toml(local_ws: Workspace) -> None:
    (local_ws.root / "keel.toml").write_text(
        (local_ws.root / "keel.toml").read_text()
        + '\n[slices]\nlong = "text_length(review) > 200"\neu = \'region == "EU"\'\n'
    )
    reopened = Workspace.open(local_ws.root)
    try:
        found = slices_from_config(reopened.config.model_extra)
    finally:
        reopened.close()
    assert [(s.name, s.expression) for s in found] == [
        ("long", "text_length(review) > 200"),
        ("eu", 'region == "EU"'),
    ]
    assert slices_from_config({}) == ()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"slices": ["a"]}, "must be a table of name = predicate"),
        ({"slices": {"a": 3}}, "not a predicate string"),
        ({"slices": {"a": "x >"}}, "slices.a"),
    ],
)
def test_bad_slice_config(extra: dict[str, object], needle: str, explains: Callable[..., str]) -> None:
    with pytest.raises(ConfigError) as info:
        slices_from_config(extra)
    explains(info.value, needle)


def test_cli_option_parsing(explains: Callable[..., str]) -> None:
    assert parse_slice_option("eu=region == 'EU'") == Slice("eu", "region == 'EU'")
    with pytest.raises(InvalidInputError) as info:
        parse_slice_option("region == 'EU'")
    explains(info.value, "NAME=PREDICATE")


def test_report_counts_balance_and_representativeness() -> None:
    reference = pa.table({"region": ["EU"] * 500 + ["US"] * 500, "y": ["a", "b"] * 500})
    target = pa.table({"region": ["EU"] * 50 + ["US"] * 950, "y": ["a"] * 50 + ["a", "b"] * 475})
    slices = [Slice("eu", 'region == "EU"'), Slice("us", 'region == "US"'), Slice("none", 'region == "X"')]
    report = slice_report(
        table_batches(target, 100),
        slices,
        target="t",
        label="y",
        reference=table_batches(reference, 64),
        reference_name="r",
    )
    eu, us, none = report.slices
    assert (eu.rows, eu.share, eu.reference_share) == (50, 0.05, 0.5)
    assert eu.flag == "under-represented" and eu.share_p_value is not None and eu.share_p_value < 1e-6
    assert eu.labels == (("a", 50),) and eu.label_shift == pytest.approx(0.5)
    assert us.flag == "" and us.representation == pytest.approx(1.9)
    assert none.flag == "empty" and report.to_json()["slices"][2]["rows"] == 0


def test_report_on_stored_versions(local_ws: Workspace) -> None:
    local_ws.datasets.add("r", TABLE, label="score")
    source = VersionSource.of(local_ws, "r")
    report = slice_report(
        source.batches(), [Slice("long", "text_length(review) > 200")], target="r@1", label="score"
    )
    assert report.slices[0].rows == 2 and dict(report.slices[0].labels) == {"other": 2}
    assert report.slices[0].reference_share is None and report.slices[0].flag == "single class"
