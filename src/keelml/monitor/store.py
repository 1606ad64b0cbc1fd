"""Monitor state in the catalog: profiles (``monitor_profiles``), results (``monitor_results``), alerts.

All writes of one run share one transaction, so a failed run leaves no half-written window.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from keelml.core.catalog import Catalog, utcnow
from keelml.core.catalog_schema import alerts, edges, monitor_profiles, monitor_results, nodes
from keelml.core.errors import NotFoundError
from keelml.monitor.profile import Profile
from keelml.monitor.results import CheckResult, FiredAlert, WindowResult


def baseline_node(monitor: str, profile_id: int) -> str:
    """Lineage id of a stored reference profile: the monitor baseline."""
    return f"monitor:{monitor}@{profile_id}"


class ProfileNotFoundError(NotFoundError):
    """No reference profile stored for a monitor."""


@dataclass(frozen=True)
class StoredResult:
    """One row of ``monitor_results``."""

    id: int
    monitor: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    check: str
    target: str
    value: float | None
    p_value: float | None
    alarm: bool
    details: dict[str, Any]
    created_at: dt.datetime


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _clean(obj: Any) -> Any:
    """JSON-safe details: NaN/inf become None (PostgreSQL's JSON rejects NaN)."""
    if isinstance(obj, float):
        return _finite(obj)
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):
        return _clean(obj.item())
    return obj


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class MonitorStore:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # -- profiles ---------------------------------------------------------------------------------

    def save_profile(
        self, monitor: str, profile: Profile, source: str, upstream: tuple[tuple[str, str], ...] = ()
    ) -> int:
        """Store ``profile``; with ``upstream`` ((node id, relation), ...), also the lineage node
        ``monitor:<monitor>@<profile id>`` (the monitor baseline) and an edge from each upstream node that
        exists, in the same transaction."""
        with self.catalog.begin() as conn:
            res = conn.execute(
                monitor_profiles.insert().values(
                    monitor=monitor,
                    source=source,
                    row_count=profile.rows,
                    payload=profile.to_payload(),
                    details=_clean(
                        {
                            "features": list(profile.features),
                            "classes": list(profile.classes),
                            "partitions": profile.partitions,
                            "accuracy": profile.accuracy,
                            **profile.details,
                        }
                    ),
                    created_at=utcnow(),
                )
            )
            key = res.inserted_primary_key
            assert key is not None
            pid = int(key[0])
            if upstream:
                node = baseline_node(monitor, pid)
                lineage = self.catalog.lineage
                lineage.add_node(
                    conn, node, "monitor", monitor, pid,
                    {"source": source, "rows": profile.rows, "features": list(profile.features)},
                )  # fmt: skip
                known = set(
                    conn.execute(sa.select(nodes.c.id).where(nodes.c.id.in_([u for u, _ in upstream])))
                    .scalars()
                    .all()
                )
                for src, relation in upstream:
                    if src in known:
                        lineage.add_edge(conn, src, node, relation)
            return pid

    def deployments_of(self, model_node: str) -> list[str]:
        """Lineage ids of the deployments serving ``model_node`` ("deployed" edges), oldest first."""
        with self.catalog.begin() as conn:
            found = conn.execute(
                sa.select(edges.c.dst)
                .where(edges.c.src == model_node, edges.c.relation == "deployed")
                .order_by(edges.c.created_at, edges.c.dst)
            ).scalars()
            return list(found)

    def model_versions(self, name: str) -> list[int]:
        """Versions of registered model ``name`` known to the lineage graph, oldest first."""
        with self.catalog.begin() as conn:
            found = conn.execute(
                sa.select(nodes.c.version).where(nodes.c.kind == "model", nodes.c.name == name)
            ).scalars()
            return sorted(int(v) for v in found if v is not None)

    def load_profile(self, monitor: str) -> tuple[Profile, str]:
        with self.catalog.begin() as conn:
            row = conn.execute(
                sa.select(monitor_profiles.c.payload, monitor_profiles.c.source)
                .where(monitor_profiles.c.monitor == monitor)
                .order_by(monitor_profiles.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            raise ProfileNotFoundError(
                f"no reference profile for monitor {monitor!r}",
                expected="a profile built from the reference dataset or a log window",
                received="none stored",
                fix=f"run `keel monitor profile {monitor}` (or ws.monitor.profile({monitor!r}, ...))",
            )
        return Profile.from_payload(bytes(row.payload)), str(row.source)

    # -- results ----------------------------------------------------------------------------------

    def save_window(self, window: WindowResult, run_id: str) -> None:
        now = utcnow()
        rows = [
            {
                "monitor": window.monitor,
                "window_start": _utc(window.start),
                "window_end": _utc(window.end),
                "check_name": c.check,
                "target": c.target[:256],
                "value": _finite(c.value),
                "p_value": _finite(c.p_value),
                "alarm": bool(c.alarm),
                "details": _clean({**c.details, "run_id": run_id, "rows": window.rows}),
                "created_at": now,
            }
            for c in window.checks
        ]
        if rows:
            with self.catalog.begin() as conn:
                conn.execute(monitor_results.insert(), rows)

    def results(
        self,
        monitor: str,
        *,
        check: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 100_000,
    ) -> list[StoredResult]:
        t = monitor_results
        q = sa.select(t).where(t.c.monitor == monitor)
        if check is not None:
            q = q.where(t.c.check_name == check)
        if since is not None:
            q = q.where(t.c.created_at >= since)
        q = q.order_by(t.c.id.desc()).limit(limit)
        with self.catalog.begin() as conn:
            rows = conn.execute(q).all()
        return [
            StoredResult(
                r.id,
                r.monitor,
                _utc(r.window_start),
                _utc(r.window_end),
                r.check_name,
                r.target or "",
                r.value,
                r.p_value,
                bool(r.alarm),
                dict(r.details or {}),
                _utc(r.created_at) or utcnow(),
            )
            for r in reversed(rows)
        ]

    def last_window_end(self, monitor: str) -> dt.datetime | None:
        t = monitor_results
        with self.catalog.begin() as conn:
            value = conn.execute(
                sa.select(sa.func.max(t.c.window_end)).where(
                    t.c.monitor == monitor, t.c.check_name == "window"
                )
            ).scalar()
        return _utc(value)

    def monitors(self) -> list[str]:
        with self.catalog.begin() as conn:
            names = conn.execute(sa.select(monitor_results.c.monitor).distinct()).scalars().all()
            profiled = conn.execute(sa.select(monitor_profiles.c.monitor).distinct()).scalars().all()
        return sorted(set(names) | set(profiled))

    def latest(self, monitor: str) -> list[StoredResult]:
        """The results of the newest run of ``monitor`` (its last window)."""
        t = monitor_results
        with self.catalog.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(t.c.id)).where(t.c.monitor == monitor)).scalar()
            if last is None:
                return []
            run = conn.execute(sa.select(t.c.details).where(t.c.id == last)).scalar_one()
        run_id = (run or {}).get("run_id")
        recent = self.results(monitor, limit=5000)
        if not recent:
            return []
        end = recent[-1].window_end
        return [r for r in recent if r.details.get("run_id") == run_id and r.window_end == end]

    # -- alerts -----------------------------------------------------------------------------------

    def last_alert(self, monitor: str, dedup_key: str) -> dt.datetime | None:
        with self.catalog.begin() as conn:
            value = conn.execute(
                sa.select(sa.func.max(alerts.c.fired_at)).where(
                    alerts.c.monitor == monitor, alerts.c.dedup_key == dedup_key
                )
            ).scalar()
        return _utc(value)

    def save_alert(self, alert: FiredAlert) -> None:
        with self.catalog.begin() as conn:
            conn.execute(
                alerts.insert().values(
                    monitor=alert.monitor,
                    rule=alert.rule,
                    severity=alert.severity,
                    dedup_key=alert.dedup_key[:512],
                    value=_finite(alert.value),
                    message=alert.message,
                    channels=[{"channel": c, "status": s} for c, s in alert.deliveries],
                    fired_at=alert.fired_at,
                )
            )

    def alerts(self, monitor: str | None = None, limit: int = 100) -> list[FiredAlert]:
        q = sa.select(alerts)
        if monitor is not None:
            q = q.where(alerts.c.monitor == monitor)
        with self.catalog.begin() as conn:
            rows = conn.execute(q.order_by(alerts.c.id.desc()).limit(limit)).all()
        return [
            FiredAlert(
                r.monitor,
                r.rule,
                r.severity,
                r.dedup_key,
                r.value,
                r.message,
                (),
                _utc(r.fired_at) or utcnow(),
                tuple((d["channel"], d["status"]) for d in (r.channels or [])),
            )
            for r in reversed(rows)
        ]


def check_results(stored: list[StoredResult]) -> list[CheckResult]:
    return [CheckResult(r.check, r.target, r.value, r.p_value, r.alarm, r.details) for r in stored]
