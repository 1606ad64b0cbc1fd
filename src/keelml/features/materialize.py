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
import pyarrow.parquet as pq

from keelml.core.refs import DatasetRef
from keelml.features.definitions import FeatureView
from keelml.features.offline import UTC_US
from keelml.features.online import OnlineStore
from keelml.features.scan import Source, as_utc, connect, q, register


@dataclass(frozen=True, slots=True)
class ViewMaterialization:
    view: str
    source: str
    rows_read: int
    files_read: int
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
                "files_read": v.files_read,
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


def latest_rows(view: FeatureView, source: Source, cutoff_us: int, after_us: int | None) -> pa.Table:
    """One row per entity: the newest with ``after_us < event time <= cutoff_us`` (``__ts`` in us).

    DuckDB scans the source in place; the time bounds are compared on the raw column too, so that
    they reach the Parquet row-group statistics.
    """
    con = connect(None, None, None)
    try:
        register(con, "raw", source, [*view.entity.keys, view.timestamp, *view.features])
        ts = as_utc(con, "raw", view.timestamp)
        keys = ", ".join(q(k) for k in view.entity.keys)
        bound = f"{ts} <= make_timestamptz({cutoff_us})"
        if after_us is not None:
            bound += f" AND {ts} > make_timestamptz({after_us})"
        cols = ", ".join(q(c) for c in [*view.entity.keys, *view.features])
        return con.sql(
            f"SELECT {cols}, epoch_us({ts}) AS __ts FROM raw WHERE {bound} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {ts} DESC, __ord DESC) = 1"
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


def watermark_us(store: OnlineStore, view: FeatureView) -> int | None:
    """The newest event time (us) the last materialization of ``view`` wrote, if any."""
    previous = store.get_meta(f"watermark:{view.name}")
    return int(json.loads(previous)["ts_us"]) if previous else None


def _schema(view: FeatureView, source: Source) -> pa.Schema:
    schema = source.schema if isinstance(source, pa.Table) else pq.read_schema(source.paths[0])
    return pa.schema([schema.field(c) for c in [*view.entity.keys, *view.features]])


def materialize_view(
    store: OnlineStore,
    view: FeatureView,
    source: Source | None,
    ref: DatasetRef,
    cutoff: dt.datetime,
    after: int | None,
    scanned: tuple[int, int],
) -> ViewMaterialization:
    """Write the latest rows per entity of ``source`` (``None``: nothing newer than ``after``).

    ``after`` (a watermark in us) makes the run incremental: nothing is cleared and only rows newer
    than it are considered; ``scanned`` is (files, rows) of what the caller handed over.
    """
    latest = None if source is None else latest_rows(view, source, _us(cutoff), after)
    if after is None:
        store.clear(view.name)
    written = 0 if latest is None else store.put(view.name, _encoded(view, latest))
    high = after
    if latest is not None and latest.num_rows:
        newest = int(pc.max(latest.column("__ts")).as_py())
        high = newest if after is None else max(newest, after)
    if high is not None:
        store.set_meta(f"watermark:{view.name}", json.dumps({"ts_us": high, "source": str(ref)}))
    if source is not None:
        schema = _schema(view, source)
        store.set_meta(f"schema:{view.name}", base64.b64encode(schema.serialize().to_pybytes()).decode())
    mark = None if high is None else dt.datetime.fromtimestamp(high / 1_000_000, dt.UTC)
    files, rows = scanned
    return ViewMaterialization(view.name, str(ref), rows, files, written, after is not None, mark)


def load_schema(store: OnlineStore, view: str) -> pa.Schema | None:
    text = store.get_meta(f"schema:{view}")
    if text is None:
        return None
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


__all__ = ["UTC_US", "MaterializeResult", "ViewMaterialization", "encode_key", "materialize_view"]
