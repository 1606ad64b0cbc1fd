from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from keelml.core import request_log
from keelml.serve import logbook


def test_rows_that_arrive_during_a_commit_wait_for_the_next_wake_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A commit is costly (Delta: ~0.1 s of CPU); committing again as soon as one ends turned a loaded
    server's log into a stream of tiny back-to-back commits that took half a core."""
    release = threading.Event()
    committed: list[int] = []

    def slow_append(path: Path, table: pa.Table) -> None:
        if not committed:
            release.wait(10)
        committed.append(table.num_rows)

    monkeypatch.setattr(request_log, "append", slow_append)

    def to_table(rows: Sequence[Any]) -> pa.Table:
        return pa.table({"n": list(rows)})

    writer = logbook.BatchWriter(tmp_path, to_table, flush_rows=3, flush_seconds=60, max_queue=1000)
    writer.add([1, 2, 3])  # reaches flush_rows: the writer wakes and starts the slow commit
    deadline = time.monotonic() + 10
    while writer._queue and time.monotonic() < deadline:  # the writer took the batch
        time.sleep(0.005)
    writer.add([4])  # arrives during the commit, below flush_rows
    release.set()
    deadline = time.monotonic() + 10
    while not committed and time.monotonic() < deadline:  # the slow commit finishes
        time.sleep(0.005)
    time.sleep(0.3)  # time for a wrong second commit to happen
    assert committed == [3], "the row that came during the commit must wait for the next wake-up"
    writer.close()  # close writes everything left
    assert committed == [3, 1]
    assert writer.written == 4 and writer.dropped == 0


def test_flush_writes_everything_queued(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    committed: list[int] = []
    monkeypatch.setattr(request_log, "append", lambda path, table: committed.append(table.num_rows))
    writer = logbook.BatchWriter(
        tmp_path, lambda rows: pa.table({"n": list(rows)}), flush_rows=1000, flush_seconds=60, max_queue=1000
    )
    writer.add(list(range(5)))
    assert writer.flush(timeout=10)
    assert sum(committed) == 5
    writer.close()
