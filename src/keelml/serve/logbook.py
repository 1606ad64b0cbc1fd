"""Request and feedback logging off the request path: a queue drained by one writer thread.

The handler only appends plain tuples to a deque (microseconds); the thread turns them into one
Arrow table and one Delta commit every ``flush_rows`` rows or ``flush_seconds``, and once more on
close, so every served prediction is on disk after a clean shutdown. The layout is
:mod:`keelml.core.request_log`'s, which monitoring reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from keelml.core import request_log

log = logging.getLogger("keelml.serve")


@dataclass(frozen=True, slots=True)
class Prediction:
    """One logged prediction (a request of n rows gives n of these)."""

    prediction_id: str
    ts: float
    model: str
    model_version: int
    latency_ms: float
    label: str
    score: float
    inputs: dict[str, Any]
    proba: dict[str, float]


@dataclass(frozen=True, slots=True)
class Feedback:
    prediction_id: str
    ts: float
    label: str
    source: str


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def prediction_table(rows: Sequence[Prediction]) -> pa.Table:
    """Rows in the request-log layout; numbers float64, everything else string."""
    columns: dict[str, pa.Array] = {
        "prediction_id": pa.array([r.prediction_id for r in rows], pa.string()),
        "ts": pa.array([_utc(r.ts) for r in rows], request_log.TIMESTAMP),
        "model": pa.array([r.model for r in rows], pa.string()),
        "model_version": pa.array([r.model_version for r in rows], pa.int64()),
        "latency_ms": pa.array([r.latency_ms for r in rows], pa.float64()),
        "label": pa.array([r.label for r in rows], pa.string()),
        "score": pa.array([r.score for r in rows], pa.float64()),
    }
    names = list(dict.fromkeys(k for r in rows for k in r.inputs))
    for name in names:
        values = [r.inputs.get(name) for r in rows]
        numeric = all(v is None or (isinstance(v, float | int) and not isinstance(v, bool)) for v in values)
        if numeric:
            columns[request_log.INPUT_PREFIX + name] = pa.array(values, pa.float64())
        else:
            columns[request_log.INPUT_PREFIX + name] = pa.array(
                [None if v is None else str(v) for v in values], pa.string()
            )
    classes = list(dict.fromkeys(c for r in rows for c in r.proba))
    for c in classes:
        columns[request_log.PROBA_PREFIX + c] = pa.array([r.proba.get(c) for r in rows], pa.float64())
    return pa.table(columns)


def feedback_table(rows: Sequence[Feedback]) -> pa.Table:
    return pa.table(
        {
            "prediction_id": [r.prediction_id for r in rows],
            "ts": pa.array([_utc(r.ts) for r in rows], request_log.TIMESTAMP),
            "label": [r.label for r in rows],
            "source": [r.source for r in rows],
        },
        schema=request_log.FEEDBACK_SCHEMA,
    )


class BatchWriter:
    """Buffers records and appends them to one Delta table from a background thread."""

    def __init__(
        self,
        path: Path,
        to_table: Callable[[Sequence[Any]], pa.Table],
        *,
        flush_rows: int,
        flush_seconds: float,
        max_queue: int,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.path = path
        self._to_table = to_table
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._max_queue = max_queue
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0  # queued plus being written, for flush()
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"keel-log-{path.name}", daemon=True)
        self._thread.start()

    def add(self, records: Sequence[Any]) -> None:
        """Queue records; over ``max_queue`` (the disk cannot keep up) the newest are counted as dropped."""
        if self._pending + len(records) > self._max_queue:
            self.dropped += len(records)
            self._on_dropped(len(records))
            return
        with self._idle:
            self._pending += len(records)
        self._queue.extend(records)
        if len(self._queue) >= self._flush_rows:
            self._wake.set()

    def _drain(self, *, everything: bool = False) -> None:
        # Only what is queued now: rows that arrive during a commit wait for the next wake-up. Draining
        # until empty made a loaded server commit back to back in tiny batches (a commit per ~0.2 s of
        # 5-9 rows at 20 req/s), and Delta commits are costly: half a core went to them.
        left = len(self._queue)
        while self._queue and (everything or left > 0):
            take = min(len(self._queue) if everything else left, self._flush_rows * 4)
            batch = [self._queue.popleft() for _ in range(take)]
            left -= take
            try:
                request_log.append(self.path, self._to_table(batch))
                self.written += len(batch)
                self._on_written(len(batch))
            except Exception:  # a full disk must not take the service down; the loss is counted
                log.exception("request log: %d rows could not be written to %s", len(batch), self.path)
                self.dropped += len(batch)
                self._on_dropped(len(batch))
            finally:
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self._drain()
        self._drain(everything=True)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far; True when done within ``timeout``."""
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
