from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from keelml.augment import AugmentConfig
from keelml.augment.target import resolve_target, slice_mask, to_sql
from keelml.core.errors import InvalidInputError
from keelml.data.slices import Slice

from .conftest import mixed_table


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"method": "gan"}, "unknown augmentation method"),
        ({"ratio": 0}, "ratio must be above 0"),
        ({"k_neighbors": 0}, "k_neighbors must be between"),
        ({"holdout": 0.95}, "holdout must be"),
        ({"dp_epsilon": 1.0, "method": "smote"}, "--dp-epsilon needs the copula method"),
        ({"dp_epsilon": -1.0, "method": "copula"}, "dp_epsilon must be above 0"),
        ({"token_rate": 0.9}, "token_rate"),
    ],
)
def test_bad_configs_are_refused(
    kwargs: dict[str, object], needle: str, explains: Callable[..., str]
) -> None:
    with pytest.raises(InvalidInputError) as info:
        AugmentConfig(target="rare", **kwargs)  # type: ignore[arg-type]
    explains(info.value, needle)


TABLE = pa.table(
    {
        "review": ["short", "x" * 300, None, "two words here", "  "],
        "region": ["EU", "US", "EU", None, "EU"],
        "n": [1, -5, 3, None, 7],
    }
)


@pytest.mark.parametrize(
    "expression",
    [
        "text_length(review) > 200",
        'region == "EU" and not text_length(review) > 200',
        "region in ['EU', 'APAC']",
        "region not in ['EU']",
        "word_count(review) >= 2",
        "is_missing(region) or abs(n) > 4",
        "lower(region) == 'eu'",
        "0 < n <= 3",
        "-n > 2",
    ],
)
def test_slice_predicates_mean_what_the_data_slices_mean(expression: str) -> None:
    expected = Slice("s", expression).mask(TABLE).to_pylist()
    assert slice_mask(TABLE, expression).tolist() == expected


def test_predicates_are_translated_not_evaluated(explains: Callable[..., str]) -> None:
    assert to_sql('name == "O\'Brien"') == "(\"name\" = 'O''Brien')"
    for bad in ("__import__('os').system('true')", "x.y > 1", "x + 1 > 2", "x >"):
        with pytest.raises(InvalidInputError) as info:
            to_sql(bad)
        explains(info.value, "slice predicate")


def test_targets_resolve_to_classes_slices_and_errors(explains: Callable[..., str]) -> None:
    table = mixed_table()
    real = np.ones(table.num_rows, dtype=bool)
    target = resolve_target(table, "rare", label="label", slices={}, real=real, where="mixed@1")
    assert (target.kind, target.rows) == ("class", 30)
    named = resolve_target(table, "big", label="label", slices={"big": "x1 > 2"}, real=real, where="m")
    assert named.kind == "slice" and named.expression == "x1 > 2" and 0 < named.rows < 300
    inline = resolve_target(table, 'colour == "red"', label="label", slices={}, real=real, where="m")
    assert inline.kind == "slice" and inline.rows == table.column("colour").to_pylist().count("red")
    forced = resolve_target(
        table, "class:common", label="label", slices={"common": "x1 > 0"}, real=real, where="m"
    )
    assert forced.kind == "class" and forced.rows == 270
    with pytest.raises(InvalidInputError) as info:
        resolve_target(table, "x1 > 1000", label="label", slices={}, real=real, where="mixed@1")
    explains(info.value, "matches no real rows of mixed@1", "0 of 300 rows")
    with pytest.raises(InvalidInputError) as info:
        resolve_target(table, "unknown", label="label", slices={"big": "x1 > 2"}, real=real, where="mixed@1")
    explains(info.value, "neither a class", "common, rare", "big")
    with pytest.raises(InvalidInputError) as info:
        resolve_target(table, "nope > 1", label="label", slices={}, real=real, where="mixed@1")
    explains(info.value, "cannot evaluate the slice predicate")
