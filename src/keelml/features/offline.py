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
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import ColumnNotFoundError, EmptySourceError, InvalidInputError, KeelError
from keelml.features.definitions import FeatureNameConflictError, FeatureView
from keelml.features.scan import DEFAULT_MEMORY_LIMIT, Source, as_utc, column_names, connect, q, register

UTC_US = pa.timestamp("us", "UTC")


class MissingTimestampError(InvalidInputError):
    """A point-in-time request whose entity rows lack a timestamp."""


class JoinMemoryError(KeelError, MemoryError):
    """DuckDB needed more than its memory limit in a part of the join that cannot spill."""


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


_BITS = 60
_LOW = 2**_BITS  # stored positions (file index * 2^36 + row) stay below this; times 2^60 fits a HUGEINT
# The packed key is unpacked with a shift and a mask: HUGEINT // and % cost about 2 us a row (a
# shift about 0.06), and they truncate toward zero, which gave wrong positions before 1970.


def _packed(ts: str, position: str) -> str:
    return f"epoch_us({ts})::HUGEINT * {_LOW} + {position}"


def _check_entity_files(con: Any, timestamp: str, keys: Sequence[str]) -> str:
    """Check entity rows scanned from files (as ``check_entity_rows`` does); SQL of their UTC time."""
    names = list(con.sql("SELECT * FROM e_src LIMIT 0").columns)
    if timestamp not in names:
        raise MissingTimestampError(
            f"the entity rows have no timestamp column {timestamp!r}",
            expected=f"a column {timestamp!r} with the time each row's features are wanted at",
            received=f"columns {', '.join(names)}",
            fix="add when each row happened (point-in-time joins need it), or name it with --timestamp",
        )
    require(
        pa.schema([(n, pa.null()) for n in names]).empty_table(),
        keys,
        "the entity rows",
        "add the entity key columns of every requested view",
    )
    try:
        expr = as_utc(con, "e_src", timestamp)
    except TypeError as exc:
        raise MissingTimestampError(
            f"the entity column {timestamp!r} does not hold timestamps",
            expected="timestamps or ISO-8601 strings",
            received=f"type {exc}",
            fix="convert the column to timestamps",
        ) from exc
    total, nulls, first = con.sql(
        f"SELECT count(*), count(*) FILTER (WHERE {q(timestamp)} IS NULL), "
        f"min(__ord) FILTER (WHERE {q(timestamp)} IS NULL) FROM e_src"
    ).fetchall()[0]
    if total == 0:
        raise EmptySourceError(
            "there are no entity rows to join features onto",
            expected="at least one row with entity keys and a timestamp",
            received=f"0 rows (columns {', '.join(names)})",
            fix="pass the rows of the training set (keys, timestamp and label)",
        )
    if nulls:
        raise MissingTimestampError(
            f"{nulls} entity rows have no timestamp",
            expected=f"a value in every row of {timestamp!r}",
            received=f"null in stored row {first}",
            fix="fill or drop those rows; a point-in-time join cannot guess when a row happened",
        )
    return expr


def _bounds(con: Any, made: dict[tuple[str, ...], str], keys: tuple[str, ...], timestamp: str) -> str:
    """A temp table of the first and last entity time (epoch us) per entity key; its name."""
    if keys in made:
        return made[keys]
    name = made[keys] = f"b{len(made)}"
    cols = ", ".join(q(k) for k in keys)
    t = f"epoch_us({q(timestamp)})"
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT {cols}, min({t}) AS __lo, max({t}) AS __hi "
        f"FROM e WHERE {' AND '.join(f'{q(k)} IS NOT NULL' for k in keys)} GROUP BY {cols}"
    )
    return name


def _share(con: Any, bounds: str, relation: str, ts: str, ttl_us: int) -> float:
    """The mean share of a view's event-time range that one key's window [first T - ttl, last T] spans.

    Near 1 when every key's entity rows spread over the whole range: cutting the view's rows to the
    windows would then keep nearly all of them, and the cut is skipped.
    """
    lo, hi = con.sql(f"SELECT min(epoch_us({ts})), max(epoch_us({ts})) FROM {relation}").fetchall()[0]
    if lo is None:
        return 0.0
    got = con.sql(
        f"SELECT avg(greatest(least(__hi, {hi})::HUGEINT - greatest(__lo::HUGEINT - {ttl_us}, {lo}), 0)"
        f"::DOUBLE) FROM {bounds}"
    ).fetchall()[0][0]
    return 0.0 if got is None else float(got) / max(hi - lo, 1)


def point_in_time(
    rows: Source,
    timestamp: str,
    views: Sequence[tuple[FeatureView, Source, list[str]]],
    *,
    batch_rows: int = 100_000,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    prefilter: bool | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the entity rows (in order) with the requested columns of each view joined as of T.

    ``rows`` and each view's source are arrow tables or ``ParquetFiles`` that DuckDB scans in place;
    DuckDB keeps under ``memory_limit`` (default 1GB) by spilling to ``temp_directory``.

    The join runs on narrow rows: the ASOF JOIN sees only each view's keys and (event time, stored
    position); the feature columns are fetched afterwards for the matched positions only. With
    ``prefilter`` (decided from the entity rows when ``None``) a view's rows are first cut to the
    entity keys asked for and, per key, to the event times that can matter, [first T - ttl, last T].
    """
    import duckdb

    keys = list(dict.fromkeys(k for view, _, _ in views for k in view.entity.keys))
    if isinstance(rows, pa.Table):
        rows = check_entity_rows(rows, timestamp, keys)
    con = connect(threads, memory_limit, temp_directory)
    try:
        entity_cols = column_names(con, rows)
        register(con, "e_src", rows, entity_cols)
        expr = f"CAST({q(timestamp)} AS TIMESTAMPTZ)"
        if not isinstance(rows, pa.Table):  # the checks an arrow table had above, in the same order
            expr = _check_entity_files(con, timestamp, keys)
        clash = [c for _, _, cols in views for c in cols if c in entity_cols]
        if clash:
            raise FeatureNameConflictError(
                "the entity rows already have columns named like requested features",
                received=", ".join(clash),
                fix="rename or drop those columns of the entity rows",
            )
        # Ties on (keys, event time) go to the row stored last, as in materialize: the ASOF key is
        # (event time, stored position) packed into one 128-bit integer, cheaper than de-duplicating.
        con.execute(
            f"CREATE TEMP VIEW e AS SELECT * EXCLUDE (__ord) REPLACE ({expr} AS {q(timestamp)}), "
            f"__ord AS __row, {_packed(expr, str(_LOW - 1))} AS __k FROM e_src"
        )
        matched, joins, fetch, picked = ["e.* EXCLUDE (__k)"], [], [], []
        made: dict[tuple[str, ...], str] = {}
        for i, (view, source, cols) in enumerate(views):
            alias = f"v{i}"
            register(con, f"{alias}_src", source, [*view.entity.keys, view.timestamp, *cols])
            ts = as_utc(con, f"{alias}_src", view.timestamp)
            keyed = ", ".join(q(k) for k in view.entity.keys)
            ttl_us = int(view.ttl.total_seconds() * 1_000_000)
            cut = ""
            if prefilter is not False:
                bounds = _bounds(con, made, view.entity.keys, timestamp)
                if prefilter or _share(con, bounds, f"{alias}_src", ts, ttl_us) < 0.5:
                    same = " AND ".join(f"s.{q(k)} = b.{q(k)}" for k in view.entity.keys)
                    since = f"b.__lo::HUGEINT - {ttl_us}"
                    cut = f" JOIN {bounds} b ON {same} WHERE s.__t BETWEEN {since} AND b.__hi"
            # the event time is recovered from the packed key, so the join state holds it once
            con.execute(
                f"CREATE TEMP VIEW {alias} AS SELECT {', '.join(f's.{q(k)}' for k in view.entity.keys)}, "
                f"s.__k FROM (SELECT {keyed}, {_packed(ts, '__ord')} AS __k, epoch_us({ts}) AS __t "
                f"FROM {alias}_src) s{cut}"
            )
            on = " AND ".join(f"e.{q(k)} = {alias}.{q(k)}" for k in view.entity.keys)
            joins.append(f"ASOF LEFT JOIN {alias} ON {on} AND e.__k >= {alias}.__k")
            fresh = f"epoch_us(e.{q(timestamp)}) - ({alias}.__k >> {_BITS})::BIGINT <= {ttl_us}"
            matched.append(f"CASE WHEN {fresh} THEN ({alias}.__k & {_LOW - 1})::BIGINT END AS __o{i}")
            if cols:  # the feature columns of the matched stored positions only
                wanted = ", ".join(q(c) for c in cols)
                fetch.append(
                    f"LEFT JOIN (SELECT {wanted}, __ord FROM {alias}_src) w{i} ON m.__o{i} = w{i}.__ord"
                )
                picked += [f"w{i}.{q(c)}" for c in cols]
        hidden = ", ".join(["__row", *(f"__o{i}" for i in range(len(views)))])
        con.execute(f"CREATE TEMP VIEW m AS SELECT {', '.join(matched)} FROM e {' '.join(joins)}")
        sql = (
            f"SELECT {', '.join([f'm.* EXCLUDE ({hidden})', *picked])} FROM m {' '.join(fetch)} "
            "ORDER BY m.__row"
        )
        reader = con.sql(sql).to_arrow_reader(batch_rows)
        yield from reader
    except duckdb.OutOfMemoryException as exc:
        raise JoinMemoryError(
            "the point-in-time join ran out of DuckDB's memory limit",
            expected=f"the join to fit in memory_limit={memory_limit or DEFAULT_MEMORY_LIMIT} (sorts spill "
            "to disk; some join states cannot)",
            received=str(exc).splitlines()[0],
            fix="raise memory_limit (e.g. memory_limit='4GB'), or pass the entity rows in smaller parts",
        ) from exc
    finally:
        con.close()
