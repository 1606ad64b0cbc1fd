"""What the dashboard reads from a workspace: the catalog's lineage, benchmark, monitor and alert
tables (read directly, read-only) and datasets and models through their accessors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from keelml.core import catalog_schema as t
from keelml.core.workspace import Workspace
from keelml.ui.lineage_svg import GraphNode

MAX_NODES = 400  # beyond this the whole-workspace graph is unreadable; pick a node to focus instead


@dataclass(frozen=True, slots=True)
class BenchPoint:
    model: str
    version: int
    hardware: str
    batch_size: int
    p50_ms: float
    p99_ms: float
    throughput: float
    size_bytes: int | None
    cost_per_million: float | None
    variant: str


@dataclass(frozen=True, slots=True)
class MonitorPoint:
    check: str
    target: str
    value: float | None
    p_value: float | None
    alarm: bool
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class AlertRow:
    monitor: str
    rule: str
    severity: str
    value: float | None
    message: str
    fired_at: dt.datetime


def graph(ws: Workspace, focus: str | None) -> tuple[list[GraphNode], list[tuple[str, str]]]:
    """Every node and edge, or the upstream and downstream graph of ``focus``."""
    with ws.catalog.engine.connect() as conn:
        edge_rows = conn.execute(select(t.edges.c.src, t.edges.c.dst, t.edges.c.relation)).all()
        if focus:
            lineage = ws.catalog.lineage
            up, down = lineage.graph(focus, "upstream"), lineage.graph(focus, "downstream")
            ids = {n.id for n in (*up.nodes, *down.nodes)}
            wanted = {(e.src, e.dst) for e in (*up.edges, *down.edges)}
            query = select(t.nodes.c.id, t.nodes.c.kind, t.nodes.c.name, t.nodes.c.version, t.nodes.c.attrs)
            rows = conn.execute(query.where(t.nodes.c.id.in_(ids))).all() if ids else []
            edge_rows = [r for r in edge_rows if (r.src, r.dst) in wanted]
        else:
            rows = conn.execute(
                select(t.nodes.c.id, t.nodes.c.kind, t.nodes.c.name, t.nodes.c.version, t.nodes.c.attrs)
                .order_by(t.nodes.c.created_at.desc())
                .limit(MAX_NODES)
            ).all()
    made_by = {r.dst: r.relation for r in edge_rows}  # how a node came to be, shown under its kind
    nodes = [_graph_node(r.id, r.kind, r.name, r.version, r.attrs or {}, made_by.get(r.id)) for r in rows]
    return nodes, sorted({(r.src, r.dst) for r in edge_rows})


def _graph_node(
    node_id: str, kind: str, name: str, version: int | None, attrs: dict[str, Any], relation: str | None
) -> GraphNode:
    detail = attrs.get("variant") or relation
    label = name if version is None else f"{name}@{version}"
    return GraphNode(node_id, kind, label, f"{kind} · {detail}" if detail else kind)


def node_attrs(ws: Workspace, node_id: str) -> dict[str, Any] | None:
    try:
        return dict(ws.catalog.lineage.node(node_id).attrs)
    except KeyError:
        return None


def bench_points(ws: Workspace) -> list[BenchPoint]:
    with ws.catalog.engine.connect() as conn:
        rows = conn.execute(select(t.benchmark_results).order_by(t.benchmark_results.c.created_at)).all()
    latest = {(r.model, r.model_version, r.hardware, r.batch_size): r for r in rows}
    return [
        BenchPoint(
            r.model,
            r.model_version,
            r.hardware,
            r.batch_size,
            r.p50_ms,
            r.p99_ms,
            r.throughput,
            r.size_bytes,
            r.cost_per_million,
            str((r.details or {}).get("variant", "")),
        )
        for r in latest.values()
    ]


def monitors(ws: Workspace) -> list[tuple[str, int, int, dt.datetime]]:
    """(monitor, results, alarms, last result) for each monitor with stored results."""
    c = t.monitor_results.c
    with ws.catalog.engine.connect() as conn:
        rows = conn.execute(
            select(c.monitor, func.count(), func.sum(case((c.alarm, 1), else_=0)), func.max(c.created_at))
            .group_by(c.monitor)
            .order_by(c.monitor)
        ).all()
    return [(r[0], int(r[1]), int(r[2] or 0), r[3]) for r in rows]


def monitor_points(ws: Workspace, monitor: str, limit: int = 5000) -> list[MonitorPoint]:
    c = t.monitor_results.c
    with ws.catalog.engine.connect() as conn:
        rows = conn.execute(
            select(t.monitor_results).where(c.monitor == monitor).order_by(c.created_at, c.id).limit(limit)
        ).all()
    return [
        MonitorPoint(
            r.check_name, r.target or "", r.value, r.p_value, bool(r.alarm), r.window_end or r.created_at
        )
        for r in rows
    ]


def alerts(ws: Workspace, limit: int = 200) -> list[AlertRow]:
    c = t.alerts.c
    with ws.catalog.engine.connect() as conn:
        rows = conn.execute(select(t.alerts).order_by(c.fired_at.desc()).limit(limit)).all()
    return [AlertRow(r.monitor, r.rule, r.severity, r.value, r.message, r.fired_at) for r in rows]
