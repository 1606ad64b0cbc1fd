"""The prediction request log and the feedback log: two append-only Delta tables per served model.

Serving writes them (in batches, off the request path); monitoring reads them. The layout lives here,
in core, so neither front end nor capability has to import the other.

Request log columns (one row per prediction):

- ``prediction_id`` (string), ``ts`` (timestamp[us, UTC]), ``model`` (string), ``model_version`` (int64),
  ``latency_ms`` (float64), ``label`` (predicted class, string), ``score`` (its probability, float64);
- ``in.<field>`` for every input field (string for text and categories, float64 for numbers), or the
  resolved feature values when a request gave entity keys;
- ``proba.<class>`` (float64) for every class of a classifier.

Feedback log columns: ``prediction_id``, ``ts``, ``label`` (the ground truth, string), ``source``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa

INPUT_PREFIX = "in."
PROBA_PREFIX = "proba."
BASE_COLUMNS: tuple[str, ...] = (
    "prediction_id", "ts", "model", "model_version", "latency_ms", "label", "score",
)  # fmt: skip
TIMESTAMP = pa.timestamp("us", tz="UTC")
FEEDBACK_SCHEMA = pa.schema(
    [("prediction_id", pa.string()), ("ts", TIMESTAMP), ("label", pa.string()), ("source", pa.string())]
)


def request_log_path(storage: Path, model: str) -> Path:
    """Folder of the request log of ``model`` under a workspace's storage root."""
    return storage / "request_log" / model


def feedback_log_path(storage: Path, model: str) -> Path:
    return storage / "feedback_log" / model


def append(path: Path, table: pa.Table) -> None:
    """Append rows (one Delta commit); new input or class columns widen the schema."""
    from deltalake import write_deltalake

    if table.num_rows == 0:
        return
    path.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table, mode="append", schema_mode="merge")


def read(path: Path, *, since: datetime | None = None, until: datetime | None = None) -> pa.Table | None:
    """Rows with ``since <= ts < until`` (all when both are None); None when nothing was logged yet."""
    from deltalake import DeltaTable

    if not (path / "_delta_log").is_dir():
        return None
    dataset = DeltaTable(str(path)).to_pyarrow_dataset()
    import pyarrow.dataset as ds

    condition = None
    if since is not None:
        condition = ds.field("ts") >= pa.scalar(since, TIMESTAMP)
    if until is not None:
        upper = ds.field("ts") < pa.scalar(until, TIMESTAMP)
        condition = upper if condition is None else condition & upper
    return dataset.to_table(filter=condition)
