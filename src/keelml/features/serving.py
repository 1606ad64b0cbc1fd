"""In-process online lookups: stored values within ttl, then derived and on-demand features.

Derived features run the same batch function as training, on the request rows (one row for a
single entity).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from keelml.core.errors import InvalidInputError
from keelml.features.compute import apply_derived
from keelml.features.definitions import DerivedFeature, FeatureView
from keelml.features.materialize import encode_key, load_schema

if TYPE_CHECKING:
    from keelml.features.store import FeatureStore


@dataclass(frozen=True, slots=True)
class OnlineFeatures:
    """One dict per request row, with the requested features (None where missing or expired)."""

    features: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    def to_arrow(self) -> pa.Table:
        return pa.Table.from_pylist(list(self.rows))


def _key(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    try:
        values = [row[k] for k in keys]
    except KeyError as exc:
        raise InvalidInputError(
            f"an entity row lacks the key {exc.args[0]!r}",
            expected=f"keys {', '.join(keys)} in every entity row",
            received=f"row with {', '.join(row)}",
            fix="pass every key of the entities whose features you request",
        ) from None
    if len(values) == 1 and type(values[0]) is int:  # the common case, as encode_key writes it
        return f"[{values[0]}]"
    return encode_key([v.item() if hasattr(v, "item") else v for v in values])


def lookup(
    fs: FeatureStore,
    entity_rows: Sequence[Mapping[str, Any]],
    features: Sequence[str],
    views: list[tuple[FeatureView, list[str]]],
    derived: list[DerivedFeature],
    now: dt.datetime | None,
) -> OnlineFeatures:
    now_us = int((now.timestamp() if now is not None else time.time()) * 1_000_000)
    wanted = tuple(f.split(":", 1)[-1] for f in features)
    direct = not derived and len(views) == 1 and wanted == tuple(views[0][1])
    found: list[dict[str, Any]] = [{} for _ in entity_rows]  # stored values per request row
    store = fs.online
    for view, cols in views:
        blobs = store.get(view.name, [_key(r, view.entity.keys) for r in entity_rows])
        ttl_us = int(view.ttl.total_seconds() * 1_000_000)
        decoded = json.loads(b"[" + b",".join(b"null" if b is None else b for b in blobs) + b"]")
        for values, data in zip(found, decoded, strict=True):
            if data is not None and now_us - data["__ts"] <= ttl_us:
                values.update(zip(cols, map(data.get, cols), strict=True))
            else:
                values.update(dict.fromkeys(cols))
    if direct or (not derived and wanted == tuple(c for _, cols in views for c in cols)):
        return OnlineFeatures(wanted, tuple(found))  # already the requested columns, in order
    rows = [{**r, **values} for r, values in zip(entity_rows, found, strict=True)]
    if derived:
        table = _typed(fs, rows, views)
        keys = [k for v, _ in views for k in v.entity.keys]
        table = apply_derived(table, derived, keys=keys)
        for d in derived:
            for row, value in zip(rows, table.column(d.name).to_pylist(), strict=True):
                row[d.name] = value
    return OnlineFeatures(wanted, tuple({k: r[k] for k in wanted} for r in rows))


def _typed(
    fs: FeatureStore, rows: list[dict[str, Any]], views: list[tuple[FeatureView, list[str]]]
) -> pa.Table:
    """The request rows as an arrow table, stored features typed as in their source."""
    types: dict[str, pa.DataType] = {}
    for view, _ in views:
        schema = fs.schema_cache.get(view.name)
        if schema is None:
            schema = load_schema(fs.online, view.name)
            if schema is not None:
                fs.schema_cache[view.name] = schema
        if schema is not None:
            types.update({f.name: f.type for f in schema})
    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = {}
    for n in names:
        try:
            columns[n] = pa.array([r.get(n) for r in rows], type=types.get(n))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(
                f"the request field {n!r} has values of mixed or wrong types",
                expected=f"values of type {types.get(n) or 'one type'}",
                received=str(exc).splitlines()[0],
                fix="send one type per field (as in the training data)",
            ) from exc
    return pa.table(columns)
