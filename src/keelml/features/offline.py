"""Point-in-time correct retrieval with DuckDB's ASOF JOIN, streamed in record batches.

For each entity row (keys + a timestamp T) and each feature view, the join takes the latest feature
row of that entity with event time <= T, and keeps its values only if T - event time <= ttl.

>>> import datetime as dt
>>> import pyarrow as pa
>>> from keelml.features.definitions import Entity, FeatureView
>>> e = Entity("c", keys=("cid",))
>>> v = FeatureView("v", entity=e, source="src", timestamp="ts", ttl=dt.timedelta(days=1), features=("x",))
>>> t = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.UTC)
>>> feats = pa.table({"cid": [1, 1], "ts": [t(1), t(3)], "x": [10.0, 30.0]})
>>> rows = pa.table({"cid": [1, 1, 1], "at": [t(1), t(2), t(5)]})
>>> out = pa.Table.from_batches(list(point_in_time(rows, "at", [(v, feats, ["x"])])))
>>> out.column("x").to_pylist()  # day 2 sees day 1; day 5 is past the 1-day ttl of day 3
[10.0, 10.0, None]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import ColumnNotFoundError, EmptySourceError, InvalidInputError
from keelml.features.definitions import FeatureNameConflictError, FeatureView

UTC_US = pa.timestamp("us", "UTC")


class MissingTimestampError(InvalidInputError):
    """A point-in-time request whose entity rows lack a timestamp."""


def utc(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Timestamps as microseconds in UTC (naive values are taken to be UTC already)."""
    if pa.types.is_date(values.type):
        values = pc.cast(pc.cast(values, pa.date32()), pa.timestamp("s"))
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.timestamp("us"))  # ISO-8601 without a zone: UTC
    if pa.types.is_timestamp(values.type) and values.type.tz is None:
        return pc.cast(pc.cast(values, pa.timestamp("us")), UTC_US)
    return pc.cast(values, UTC_US)


def require(table: pa.Table, columns: Sequence[str], what: str, fix: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ColumnNotFoundError(
            f"{what} has no column {', '.join(map(repr, missing))}",
            expected=", ".join(columns),
            received=f"columns {', '.join(table.column_names)}",
            fix=fix,
        )


def check_entity_rows(rows: pa.Table, timestamp: str, keys: Sequence[str]) -> pa.Table:
    if rows.num_rows == 0:
        raise EmptySourceError(
            "there are no entity rows to join features onto",
            expected="at least one row with entity keys and a timestamp",
            received=f"0 rows (columns {', '.join(rows.column_names) or 'none'})",
            fix="pass the rows of the training set (keys, timestamp and label)",
        )
    if timestamp not in rows.column_names:
        raise MissingTimestampError(
            f"the entity rows have no timestamp column {timestamp!r}",
            expected=f"a column {timestamp!r} with the time each row's features are wanted at",
            received=f"columns {', '.join(rows.column_names)}",
            fix="add when each row happened (point-in-time joins need it), or name it with --timestamp",
        )
    values = rows.column(timestamp)
    if values.null_count:
        first = pc.index(pc.is_null(values), True).as_py()
        raise MissingTimestampError(
            f"{values.null_count} entity rows have no timestamp",
            expected=f"a value in every row of {timestamp!r}",
            received=f"null in row {first}",
            fix="fill or drop those rows; a point-in-time join cannot guess when a row happened",
        )
    try:
        converted = utc(values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise MissingTimestampError(
            f"the entity column {timestamp!r} does not hold timestamps",
            expected="timestamps or ISO-8601 strings",
            received=f"type {values.type}",
            fix="convert the column to timestamps",
        ) from exc
    require(rows, keys, "the entity rows", "add the entity key columns of every requested view")
    return rows.set_column(rows.schema.get_field_index(timestamp), timestamp, converted)


_LOW = 2**40  # positions below this; a ~10^15 us timestamp times 2^40 fits a HUGEINT easily


def _packed(ts: str, position: str) -> str:
    return f"epoch_us({ts})::HUGEINT * {_LOW} + {position}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def point_in_time(
    rows: pa.Table,
    timestamp: str,
    views: Sequence[tuple[FeatureView, pa.Table, list[str]]],
    *,
    batch_rows: int = 100_000,
    threads: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the entity rows (in order) with the requested columns of each view joined as of T."""
    import duckdb

    keys = [k for view, _, _ in views for k in view.entity.keys]
    rows = check_entity_rows(rows, timestamp, list(dict.fromkeys(keys)))
    clash = [c for _, _, cols in views for c in cols if c in rows.column_names]
    if clash:
        raise FeatureNameConflictError(
            "the entity rows already have columns named like requested features",
            received=", ".join(clash),
            fix="rename or drop those columns of the entity rows",
        )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        if threads:
            con.execute(f"SET threads={int(threads)}")
        # Ties on (keys, event time) go to the row stored last, as in materialize: the ASOF key is
        # (event time, position) packed into one 128-bit integer, cheaper than de-duplicating first.
        con.register("e_raw", rows.append_column("__row", pa.array(np.arange(rows.num_rows, dtype=np.int64))))
        con.execute(
            f"CREATE TEMP VIEW e AS SELECT *, {_packed(_q(timestamp), str(_LOW - 1))} AS __k FROM e_raw"
        )
        selects, joins = ["e.* EXCLUDE (__row, __k)"], []
        for i, (view, table, cols) in enumerate(views):
            alias, ts = f"v{i}", f"__ts{i}"
            src = table.select([*view.entity.keys, view.timestamp, *cols])
            src = src.set_column(len(view.entity.keys), ts, utc(src.column(view.timestamp)))
            con.register(
                f"{alias}_raw", src.append_column("__ord", pa.array(np.arange(src.num_rows, dtype=np.int64)))
            )
            con.execute(
                f"CREATE TEMP VIEW {alias} AS SELECT *, {_packed(ts, '__ord')} AS __k FROM {alias}_raw"
            )
            on = " AND ".join(f"e.{_q(k)} = {alias}.{_q(k)}" for k in view.entity.keys)
            joins.append(f"ASOF LEFT JOIN {alias} ON {on} AND e.__k >= {alias}.__k")
            ttl_us = int(view.ttl.total_seconds() * 1_000_000)
            fresh = f"epoch_us(e.{_q(timestamp)}) - epoch_us({alias}.{ts}) <= {ttl_us}"
            selects += [f"CASE WHEN {fresh} THEN {alias}.{_q(c)} END AS {_q(c)}" for c in cols]
        sql = f"SELECT {', '.join(selects)} FROM e {' '.join(joins)} ORDER BY e.__row"
        reader = con.sql(sql).to_arrow_reader(batch_rows)
        yield from reader
    finally:
        con.close()
