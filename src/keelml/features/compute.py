"""Run derived and on-demand feature functions on a batch, naming the row when one fails.

>>> import pyarrow as pa
>>> import pyarrow.compute as pc
>>> from keelml.features.definitions import DerivedFeature
>>> d = DerivedFeature("double", lambda b: pc.multiply(b["x"], 2), inputs=("x",))
>>> apply_derived(pa.table({"x": [1, 2]}), [d], keys=()).column("double").to_pylist()
[2, 4]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from keelml.core.errors import InvalidInputError
from keelml.features.definitions import DerivedFeature, FeatureRepo


class FeatureFunctionError(InvalidInputError):
    """A feature function raised (or returned the wrong number of values) on a batch."""


def _call(feature: DerivedFeature, batch: pa.Table) -> pa.Array | pa.ChunkedArray:
    arg: Any = batch.to_pandas() if feature.mode == "pandas" else batch
    result = feature.fn(arg)
    # an arrow array as is; a list, numpy array or pandas Series converted
    values = result if isinstance(result, pa.ChunkedArray | pa.Array) else pa.array(result)
    if len(values) != batch.num_rows:
        raise ValueError(f"returned {len(values)} values for {batch.num_rows} rows")
    return values


def _failing_row(feature: DerivedFeature, batch: pa.Table) -> tuple[int, str] | None:
    for i in range(batch.num_rows):
        try:
            _call(feature, batch.slice(i, 1))
        except Exception as exc:
            return i, f"{type(exc).__name__}: {exc}"
    return None


def apply_derived(
    table: pa.Table, derived: Sequence[DerivedFeature], *, keys: Sequence[str], offset: int = 0
) -> pa.Table:
    """Append one column per derived feature, in order (a feature may read earlier ones).

    If a function raises on the batch, each row is retried alone and the first failing row is
    reported with its keys: a batch is never dropped silently.
    """
    for feature in derived:
        cols = [*feature.inputs, *feature.request]
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise InvalidInputError(
                f"feature {feature.name!r} needs columns that the batch lacks",
                expected=", ".join(cols),
                received=f"missing {', '.join(missing)}",
                fix="request fields of an on-demand feature must be columns of the entity rows",
            )
        batch = table.select(cols)
        try:
            values = _call(feature, batch)
        except Exception as exc:
            found = (
                _failing_row(feature, batch) if batch.num_rows > 1 else (0, f"{type(exc).__name__}: {exc}")
            )
            row, why = found if found is not None else (-1, f"{type(exc).__name__}: {exc}")
            where = "the batch as a whole (every row alone succeeded)"
            if row >= 0:
                key_text = {k: table.column(k)[row].as_py() for k in keys if k in table.column_names}
                inputs = {c: batch.column(c)[row].as_py() for c in cols}
                where = f"row {row + offset} (keys {key_text}, inputs {inputs})"
            raise FeatureFunctionError(
                f"feature function {feature.name!r} failed on {where}",
                expected="a value for every row",
                received=why,
                fix="handle that input in the function (e.g. return null), or fix the row in the data",
            ) from exc
        table = table.append_column(feature.name, values)
    return table


def plan_derived(repo: FeatureRepo, wanted: Sequence[str]) -> tuple[list[str], list[DerivedFeature]]:
    """The stored features and the derived features (in dependency order) that ``wanted`` needs."""
    by_name = {d.name: d for d in repo.derived}
    stored = {f for v in repo.views for f in v.features}
    order: list[DerivedFeature] = []
    needed_stored: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in stored:
            if name not in needed_stored:
                needed_stored.append(name)
            return
        feature = by_name.get(name)
        if feature is None:
            raise InvalidInputError(
                f"unknown feature {name!r}",
                expected=", ".join(repo.feature_names()) or "a defined feature",
                received=name,
                fix="check the names with `keel features list`",
            )
        if name in path:
            raise InvalidInputError(
                f"derived features form a cycle: {' -> '.join((*path, name))}", fix="break the cycle"
            )
        for dep in feature.inputs:
            visit(dep, (*path, name))
        if feature not in order:
            order.append(feature)

    for ref in wanted:
        view, _, name = ref.rpartition(":")
        if view and name not in repo.view(view).features:
            raise InvalidInputError(
                f"feature view {view!r} has no feature {name!r}",
                expected=f"one of {', '.join(repo.view(view).features)}",
                received=ref,
                fix="write VIEW:FEATURE with a feature of that view, or just FEATURE",
            )
        visit(name, ())
    return needed_stored, order
