"""Materialization: the latest feature row per entity, encoded and written to an online store.

A row is stored as JSON ``{"__ts": event time in microseconds, feature: value, ...}`` under the key
``json.dumps([key values])``; the arrow schema of the view is kept in the store's metadata so that
the serving path rebuilds typed batches for derived features.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.refs import DatasetRef
from keelml.features.definitions import FeatureView
from keelml.features.offline import UTC_US, utc
from keelml.features.online import OnlineStore


@dataclass(frozen=True, slots=True)
class ViewMaterialization:
    view: str
    source: str
    rows_read: int
    entities_written: int
    incremental: bool
    watermark: dt.datetime | None


@dataclass(frozen=True, slots=True)
class MaterializeResult:
    views: tuple[ViewMaterialization, ...]

    def to_json(self) -> list[dict[str, object]]:
        return [
            {
                "view": v.view,
                "source": v.source,
                "rows_read": v.rows_read,
                "entities_written": v.entities_written,
                "incremental": v.incremental,
                "watermark": v.watermark.isoformat() if v.watermark else None,
            }
            for v in self.views
        ]


def encode_key(values: list[object]) -> str:
    """The online key of an entity.

    >>> encode_key([1, "a"])
    '[1,"a"]'
    """
    return json.dumps(values, separators=(",", ":"))


def _us(t: dt.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1_000_000)


def latest_rows(view: FeatureView, table: pa.Table, cutoff_us: int, after_us: int | None) -> pa.Table:
    """One row per entity: the newest with ``after_us < event time <= cutoff_us`` (``__ts`` in us)."""
    import duckdb

    ts = pc.cast(utc(table.column(view.timestamp)), pa.int64())
    src = table.select([*view.entity.keys, *view.features]).append_column("__ts", ts)
    src = src.append_column("__ord", pa.array(range(src.num_rows), pa.int64()))
    keys = ", ".join(f'"{k}"' for k in view.entity.keys)
    lower = f"AND __ts > {after_us}" if after_us is not None else ""
    con = duckdb.connect()
    try:
        con.register("src", src)
        return con.sql(
            f"SELECT * EXCLUDE (__ord) FROM src WHERE __ts <= {cutoff_us} {lower} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY __ts DESC, __ord DESC) = 1"
        ).to_arrow_table()
    finally:
        con.close()


def _encoded(view: FeatureView, latest: pa.Table) -> Iterator[tuple[str, bytes]]:
    nk = len(view.entity.keys)
    names = [*view.features, "__ts"]
    for batch in latest.to_batches(50_000):
        cols = [batch.column(n).to_pylist() for n in [*view.entity.keys, *names]]
        for row in zip(*cols, strict=True):
            yield encode_key(list(row[:nk])), json.dumps(dict(zip(names, row[nk:], strict=True))).encode()


def materialize_view(
    store: OnlineStore,
    view: FeatureView,
    table: pa.Table,
    ref: DatasetRef,
    cutoff: dt.datetime,
    incremental: bool,
) -> ViewMaterialization:
    mark_key = f"watermark:{view.name}"
    previous = store.get_meta(mark_key)
    after = json.loads(previous)["ts_us"] if incremental and previous else None
    latest = latest_rows(view, table, _us(cutoff), after)
    if after is None:
        store.clear(view.name)
    written = store.put(view.name, _encoded(view, latest))
    high = pc.max(latest.column("__ts")).as_py() if latest.num_rows else after
    if high is not None:
        store.set_meta(mark_key, json.dumps({"ts_us": high, "source": str(ref)}))
    schema = table.select([*view.entity.keys, *view.features]).schema
    store.set_meta(f"schema:{view.name}", base64.b64encode(schema.serialize().to_pybytes()).decode())
    mark = None if high is None else dt.datetime.fromtimestamp(high / 1_000_000, dt.UTC)
    return ViewMaterialization(view.name, str(ref), table.num_rows, written, after is not None, mark)


def load_schema(store: OnlineStore, view: str) -> pa.Schema | None:
    text = store.get_meta(f"schema:{view}")
    if text is None:
        return None
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


__all__ = ["UTC_US", "MaterializeResult", "ViewMaterialization", "encode_key", "materialize_view"]
