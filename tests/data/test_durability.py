"""A write that dies leaves the dataset and the catalog exactly as before.

Each test runs the write in a child process and kills it, either with SIGKILL at points in time
during a ~300k-row append, or deterministically at the crash points of keelml.core.faults
(``KEELML_CRASH_AT``), which end the process with ``os._exit`` like ``kill -9``. Afterwards the log,
the latest version's rows and digest, its profile and the lineage must be unchanged, and the next
successful write must build exactly on the last recorded version (no orphan rows leak in).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from keelml import DatasetRef, Workspace
from keelml.data import delta
from keelml.data.digest import table_digest

# The rows of one write, shared verbatim by this process and the child.
ROWS_SOURCE = """
def rows(start, n, extra=False):
    import numpy as np
    import pyarrow as pa

    ids = np.arange(start, start + n, dtype=np.int64)
    columns = {
        "id": ids,
        "x": (ids % 1000) * 0.5,
        "label": pa.array(np.array(["cat", "dog", "emu"])[ids % 3]),
    }
    if extra:
        columns["extra"] = pa.array(np.ones(n))
    return pa.table(columns)
"""
_namespace: dict[str, Any] = {}
exec(ROWS_SOURCE, _namespace)
rows = _namespace["rows"]

CHILD = (
    ROWS_SOURCE
    + """
import sys

from keelml import Workspace


class Report:
    def stage(self, name, total=None):
        print("stage:" + name, flush=True)

    def advance(self, amount=1.0):
        print("advance", flush=True)


root, op, start, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ws = Workspace.open(root)
if op == "append":
    table = rows(start, n)
    print("ready", flush=True)
    ws.datasets.append("d", table, progress=Report())
elif op == "add":
    table = rows(start, n)
    print("ready", flush=True)
    ws.datasets.add("d", table, id="id", label="label", progress=Report())
elif op == "write_version":
    table = rows(start, n, extra=True)
    print("ready", flush=True)
    ws.datasets.write_version("d", table, operation="augment", progress=Report())
else:
    raise SystemExit("unknown op " + op)
print("done", flush=True)
"""
)

CRASH_EXIT = 137  # keelml.core.faults.crash_point exits with this status


@dataclass
class Child:
    returncode: int
    events: list[str]
    stderr: str


def _run_child(
    root: Path,
    op: str,
    start: int,
    n: int,
    *,
    crash_at: str | None = None,
    kill_at: tuple[str, float] | None = None,
) -> Child:
    """Run one write in a child process; with ``kill_at=(event, delay)`` SIGKILL it ``delay``
    seconds after it reports ``event`` (a line it prints: ready, stage:NAME, advance)."""
    env = {k: v for k, v in os.environ.items() if k != "KEELML_CRASH_AT"}
    if crash_at is not None:
        env["KEELML_CRASH_AT"] = crash_at
    err_path = root.parent / f"child-{time.monotonic_ns()}.err"
    events: list[str] = []
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), op, str(start), str(n)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=root.parent,
        )
        try:
            assert proc.stdout is not None
            if kill_at is not None:
                trigger, delay = kill_at
                for line in proc.stdout:
                    events.append(line.strip())
                    if line.strip() == trigger:
                        if delay:
                            time.sleep(delay)
                        proc.send_signal(signal.SIGKILL)
                        break
            out, _ = proc.communicate(timeout=120)
            events.extend(line.strip() for line in out.splitlines())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Child(proc.returncode, events, err_path.read_text())


@dataclass
class State:
    """Everything a reader of the dataset can observe, read through a freshly opened workspace."""

    datasets: list[str]
    versions: list[Any]  # the catalog's VersionRecords, compared field by field
    latest: DatasetRef
    content: pa.Table  # sorted by id
    read_digest: str
    profile: dict[str, Any]
    nodes: set[str]
    edges: set[tuple[str, str, str]]
    pins: list[tuple[str, str]]


def _state(root: Path) -> State:
    with Workspace.open(root) as ws:
        latest = ws.datasets.ref("d")
        table = ws.datasets.read(latest)
        up = ws.catalog.lineage.graph(latest.node_id, "upstream")
        down = ws.catalog.lineage.graph("dataset:d@1", "downstream")
        return State(
            datasets=ws.catalog.dataset_names(),
            versions=ws.catalog.versions("d"),
            latest=latest,
            content=table.sort_by("id"),
            read_digest=table_digest(table),
            profile=ws.catalog.get_version("d", latest.version).profile,
            nodes={n.id for n in up.nodes} | {n.id for n in down.nodes},
            edges={(e.src, e.dst, e.relation) for e in up.edges + down.edges},
            pins=[(p.node_id, p.reason) for p in ws.catalog.lineage.pins()],
        )


def _assert_unchanged(after: State, before: State, context: str) -> None:
    assert after.datasets == before.datasets, context
    assert after.versions == before.versions, f"{context}: the log changed"
    assert after.latest == before.latest, context
    assert after.content.equals(before.content), f"{context}: the latest version's rows changed"
    assert after.read_digest == before.read_digest == before.latest.digest, context
    assert after.profile == before.profile, context
    assert (after.nodes, after.edges) == (before.nodes, before.edges), f"{context}: the lineage changed"
    assert after.pins == before.pins, context


def _delta_head(ws: Workspace) -> int:
    return int(DeltaTable(ws.datasets.dataset("d").table_uri).version())


def _assert_next_write_is_clean(ws: Workspace, before: State, new: pa.Table) -> DatasetRef:
    """Append ``new`` for real: the next version, holding exactly the old rows plus ``new``."""
    ref = ws.datasets.append("d", new)
    assert ref.version == before.latest.version + 1
    got = ws.datasets.read(ref).sort_by("id")
    want = pa.concat_tables([before.content, new.select(before.content.column_names)]).sort_by("id")
    assert got.num_rows == want.num_rows, "orphan rows of a dead write leaked into the new version"
    assert got.equals(want)
    assert ref.digest == table_digest(got) == table_digest(want)
    assert ws.datasets.version(ref).rows == want.num_rows
    assert ws.datasets.profile(ref).rows == want.num_rows
    diff = ws.datasets.diff(before.latest, ref)
    assert (diff.added, diff.removed, diff.changed) == (new.num_rows, 0, 0)
    graph = ws.catalog.lineage.graph(ref.node_id, "upstream")
    assert (before.latest.node_id, ref.node_id, "append") in {(e.src, e.dst, e.relation) for e in graph.edges}
    return ref


@pytest.fixture
def two_versions(ws: Workspace) -> Workspace:
    """d@1 (add, 1000 rows) and d@2 (append, 500 rows), d@1 pinned."""
    v1 = ws.datasets.add("d", rows(0, 1000), id="id", label="label")
    ws.datasets.append("d", rows(1000, 500))
    ws.catalog.lineage.pin(v1.node_id, "model m@1")
    return ws


# -- SIGKILL at points in time during a large append --------------------------------------------

KILL_POINTS = [
    ("stage:reading input", 0.0),  # schema and id checks, before any Delta write
    ("stage:writing Delta table", 0.0),  # Delta write just started, hashing in parallel
    ("stage:writing Delta table", 0.05),
    ("advance", 0.0),  # first batch hashed, Delta write in flight or just committed
    ("advance", 0.02),
]
BIG = 300_000


@pytest.mark.slow
def test_sigkill_during_append_leaves_dataset_and_catalog_unchanged(two_versions: Workspace) -> None:
    ws = two_versions
    before = _state(ws.root)
    killed: list[int] = []  # the first id of each killed write
    for i, point in enumerate(KILL_POINTS):
        start = 1_000_000 * (i + 1)
        child = _run_child(ws.root, "append", start, BIG, kill_at=point)
        context = f"kill at {point}, events {child.events}"
        if child.returncode == -signal.SIGKILL:
            killed.append(start)
            _assert_unchanged(_state(ws.root), before, context)
        elif child.returncode == 0:  # the write finished before the signal landed: a clean version
            assert "done" in child.events, context
            before = _assert_state_after_finished_append(ws, before, rows(start, BIG))
        else:
            pytest.fail(f"child failed ({child.returncode}) {context}\n{child.stderr}")
    assert len(killed) >= len(KILL_POINTS) - 1, "the kills did not interrupt the writes"
    # The same rows as a killed attempt: any of its rows that leaked would show up twice.
    _assert_next_write_is_clean(ws, before, rows(killed[-1], BIG))


def _assert_state_after_finished_append(ws: Workspace, before: State, new: pa.Table) -> State:
    after = _state(ws.root)
    assert after.latest.version == before.latest.version + 1
    assert after.content.num_rows == before.content.num_rows + new.num_rows
    return after


# -- crash points -------------------------------------------------------------------------------


def _stray_files(ws: Workspace) -> set[str]:
    """Parquet files in the table directory that no recorded version references."""
    uri = ws.datasets.dataset("d").table_uri
    recorded: set[str] = set()
    for record in ws.catalog.versions("d"):
        recorded |= delta.files(uri, record.delta_version)
    root = Path(uri)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}
    return on_disk - recorded


@pytest.mark.parametrize("point", ["after-data-file", "after-delta-commit", "before-catalog-commit"])
def test_crash_point_during_append(two_versions: Workspace, point: str) -> None:
    ws = two_versions
    before = _state(ws.root)
    recorded = before.versions[-1].delta_version
    assert _stray_files(ws) == set()
    # After the Delta commit, crash twice in a row: the second write first restores the table over
    # the first one's orphan commit, then dies leaving an orphan of its own.
    attempts = 2 if point == "after-delta-commit" else 1
    for attempt in range(attempts):
        child = _run_child(ws.root, "append", 10_000, 2_000, crash_at=point)
        assert child.returncode == CRASH_EXIT, child.stderr
        assert "done" not in child.events
        # the crash really was mid-write: it left a data file no recorded version knows
        assert _stray_files(ws), "nothing was written before the crash point"
        if point == "after-data-file":
            assert _delta_head(ws) == recorded  # not committed
        else:
            assert _delta_head(ws) > recorded  # committed to Delta, but not recorded
        _assert_unchanged(_state(ws.root), before, f"{point}, attempt {attempt}")
    _assert_next_write_is_clean(ws, before, rows(10_000, 2_000))


def test_crash_after_delta_commit_of_a_schema_changing_write_version(two_versions: Workspace) -> None:
    ws = two_versions
    before = _state(ws.root)
    child = _run_child(ws.root, "write_version", 0, 1_500, crash_at="after-delta-commit")
    assert child.returncode == CRASH_EXIT, child.stderr
    assert DeltaTable(ws.datasets.dataset("d").table_uri).schema().to_arrow().field("extra") is not None
    _assert_unchanged(_state(ws.root), before, "write_version")
    # the orphan's extra column must not leak into the next version's schema
    ref = _assert_next_write_is_clean(ws, before, rows(50_000, 10))
    assert ws.datasets.read(ref).column_names == ["id", "x", "label"]


def test_crash_before_catalog_commit_of_a_re_add(two_versions: Workspace) -> None:
    ws = two_versions
    before = _state(ws.root)
    child = _run_child(ws.root, "add", 70_000, 800, crash_at="before-catalog-commit")
    assert child.returncode == CRASH_EXIT, child.stderr
    _assert_unchanged(_state(ws.root), before, "re-add")
    _assert_next_write_is_clean(ws, before, rows(80_000, 10))


def test_crash_before_catalog_commit_of_the_first_add(ws: Workspace) -> None:
    # The dataset row, its first version and its lineage node are one transaction: none survive.
    child = _run_child(ws.root, "add", 0, 500, crash_at="before-catalog-commit")
    assert child.returncode == CRASH_EXIT, child.stderr
    with Workspace.open(ws.root) as fresh:
        assert fresh.datasets.list() == []
        assert fresh.catalog.dataset_names() == []
        with pytest.raises(KeyError):
            fresh.catalog.lineage.node("dataset:d@1")
    ref = ws.datasets.add("d", rows(0, 20), id="id", label="label")
    assert ref.version == 1
    assert ws.datasets.read(ref).num_rows == 20
    assert ref.digest == table_digest(rows(0, 20))
    assert [n.id for n in ws.catalog.lineage.graph(ref.node_id, "upstream").nodes] == [ref.node_id]
