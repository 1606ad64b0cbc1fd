"""Clean-up: remove old dataset versions and unreferenced files, never what a pin reaches.

Kept: the newest ``keep_last`` versions of each dataset, every version upstream of a pinned node
(e.g. the data a registered model was trained on), and every artifact a catalog node references.
Removed versions stay in the log with status ``collected``; reading them says so.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from keelml.core.refs import ArtifactRef, DatasetRef
from keelml.core.workspace import Workspace
from keelml.data import delta
from keelml.data.writer import dataset_lock

DEFAULT_GRACE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class GcReport:
    collected: tuple[DatasetRef, ...]
    kept_pinned: tuple[DatasetRef, ...]
    files_removed: int
    bytes_freed: int
    orphan_tables_removed: int
    artifacts_removed: int
    dry_run: bool


def collect(
    ws: Workspace,
    *,
    keep_last: int | None = None,
    dry_run: bool = False,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> GcReport:
    catalog = ws.catalog
    keep_last = keep_last if keep_last is not None else ws.config.gc.keep_last
    protected = catalog.lineage.protected()
    collected: list[DatasetRef] = []
    pinned: list[DatasetRef] = []
    files = freed = 0
    for name in catalog.dataset_names():
        with dataset_lock(ws.storage_root, name):
            dataset = catalog.get_dataset(name)
            history = catalog.versions(name)
            active = [v for v in history if v.status == "active"]
            recent = {v.version for v in active[-keep_last:]}
            keep, drop = [], []
            for v in active:
                ref = DatasetRef(name, v.version, v.digest)
                if v.version in recent:
                    keep.append(v)
                elif ref.node_id in protected:
                    keep.append(v)
                    pinned.append(ref)
                else:
                    drop.append(v)
            n, size = delta.remove_unreferenced_files(
                dataset.table_uri,
                {v.delta_version for v in keep},
                {v.delta_version for v in history},
                dry_run=dry_run,
                grace_seconds=grace_seconds,
            )
            files, freed = files + n, freed + size
            if drop and not dry_run:
                with catalog.begin() as conn:
                    catalog.mark_collected(conn, name, [v.version for v in drop])
            collected.extend(DatasetRef(name, v.version, v.digest) for v in drop)
    orphans = _remove_orphan_tables(ws, dry_run, grace_seconds)
    artifacts = _remove_orphan_artifacts(ws, dry_run, grace_seconds)
    return GcReport(tuple(collected), tuple(pinned), files, freed, orphans, artifacts, dry_run)


def _remove_orphan_tables(ws: Workspace, dry_run: bool, grace_seconds: float) -> int:
    """Table directories no dataset points to: left by a first write that died before recording."""
    root = ws.storage_root / "datasets" / "tables"
    if not root.is_dir():
        return 0
    known = {Path(ws.catalog.get_dataset(n).table_uri).resolve() for n in ws.catalog.dataset_names()}
    cutoff = time.time() - grace_seconds
    removed = 0
    for table_dir in root.iterdir():
        if table_dir.resolve() in known or table_dir.stat().st_mtime >= cutoff:
            continue
        removed += 1
        if not dry_run:
            shutil.rmtree(table_dir)
    return removed


def _remove_orphan_artifacts(ws: Workspace, dry_run: bool, grace_seconds: float) -> int:
    referenced = ws.catalog.lineage.referenced_artifacts()
    cutoff = time.time() - grace_seconds
    removed = 0
    for ref in list(ws.artifacts):
        if ref.digest in referenced:
            continue
        if ws.artifacts.path(ArtifactRef(ref.digest)).stat().st_mtime >= cutoff:
            continue  # may belong to a step that has not recorded its node yet
        removed += 1
        if not dry_run:
            ws.artifacts.delete(ref)
    return removed
