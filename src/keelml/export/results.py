"""Benchmark rows in the catalog's ``benchmark_results`` table, and the latest latency of a version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from keelml.core import catalog_schema as t
from keelml.core.catalog import Catalog
from keelml.core.errors import InvalidInputError
from keelml.core.refs import ModelRef

QUANTILES = ("p50", "p90", "p95", "p99")


def store_row(catalog: Catalog, row: Mapping[str, Any]) -> None:
    with catalog.begin() as conn:
        conn.execute(t.benchmark_results.insert().values(**row, created_at=dt.datetime.now(dt.UTC)))


def latest_latency(
    catalog: Catalog, ref: ModelRef, quantile: str = "p99", hardware: str | None = None
) -> float | None:
    """The newest benchmarked latency in ms of ``ref`` at batch size 1 (any batch if none at 1)."""
    if quantile not in QUANTILES:
        raise InvalidInputError(
            "unknown latency quantile", expected=", ".join(QUANTILES), received=quantile, fix="pass p99"
        )
    table = t.benchmark_results
    query = select(table).where(table.c.model == ref.name, table.c.model_version == ref.version)
    if hardware is not None:
        query = query.where(table.c.hardware == hardware)
    with catalog.begin() as conn:
        rows = conn.execute(query.order_by(table.c.created_at.desc(), table.c.id.desc())).all()
    if not rows:
        return None
    ones = [r for r in rows if r.batch_size == 1] or rows
    row = ones[0]
    if quantile == "p95":
        value = (row.details or {}).get("p95_ms")
        return None if value is None else float(value)
    return float(getattr(row, f"{quantile}_ms"))
