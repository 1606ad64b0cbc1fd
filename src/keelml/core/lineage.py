"""The lineage graph: nodes (dataset versions, runs, models, deployments, monitors), edges, pins.

Edges point from an input to what was made from it (``dataset:reviews@1 -> dataset:reviews@2``).
A pin protects a node and everything upstream of it from clean-up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, select

from keelml.core import catalog_schema as t
from keelml.core.errors import NodeNotFoundError

Direction = Literal["upstream", "downstream"]


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: str
    name: str
    version: int | None
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    relation: str


@dataclass(frozen=True, slots=True)
class Pin:
    node_id: str
    reason: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """The nodes reachable from ``root`` in one direction, with the edges between them."""

    root: str
    direction: Direction
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def children(self, node_id: str) -> list[str]:
        """Next nodes away from the root (inputs when upstream, outputs when downstream)."""
        if self.direction == "upstream":
            return sorted(e.src for e in self.edges if e.dst == node_id)
        return sorted(e.dst for e in self.edges if e.src == node_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": [
                {"id": n.id, "kind": n.kind, "name": n.name, "version": n.version, "attrs": n.attrs}
                for n in self.nodes
            ],
            "edges": [{"src": e.src, "dst": e.dst, "relation": e.relation} for e in self.edges],
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Lineage:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_node(
        self,
        conn: Connection,
        node_id: str,
        kind: str,
        name: str,
        version: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        exists = conn.execute(select(t.nodes.c.id).where(t.nodes.c.id == node_id)).first()
        if exists is None:
            conn.execute(
                t.nodes.insert().values(
                    id=node_id, kind=kind, name=name, version=version, attrs=attrs or {}, created_at=_now()
                )
            )

    def add_edge(self, conn: Connection, src: str, dst: str, relation: str) -> None:
        key = (t.edges.c.src == src, t.edges.c.dst == dst, t.edges.c.relation == relation)
        if conn.execute(select(t.edges.c.src).where(*key)).first() is None:
            conn.execute(t.edges.insert().values(src=src, dst=dst, relation=relation, created_at=_now()))

    def node(self, node_id: str) -> Node:
        with self._engine.connect() as conn:
            row = conn.execute(select(t.nodes).where(t.nodes.c.id == node_id)).first()
        if row is None:
            raise NodeNotFoundError(
                f"no lineage node {node_id!r}",
                expected="an id like dataset:NAME@V or model:NAME@V",
                received=node_id,
                fix="list versions with `keel data log NAME`",
            )
        return Node(row.id, row.kind, row.name, row.version, dict(row.attrs))

    def graph(self, node_id: str, direction: Direction) -> LineageGraph:
        """Breadth-first walk, one query per level."""
        self.node(node_id)
        near, far = (
            (t.edges.c.dst, t.edges.c.src) if direction == "upstream" else (t.edges.c.src, t.edges.c.dst)
        )
        seen = {node_id}
        frontier = {node_id}
        found: list[Edge] = []
        with self._engine.connect() as conn:
            while frontier:
                rows = conn.execute(select(t.edges).where(near.in_(frontier))).all()
                found.extend(Edge(r.src, r.dst, r.relation) for r in rows)
                nxt = {getattr(r, far.name) for r in rows} - seen
                seen |= nxt
                frontier = nxt
            node_rows = conn.execute(select(t.nodes).where(t.nodes.c.id.in_(seen))).all()
        nodes = tuple(
            sorted(
                (Node(r.id, r.kind, r.name, r.version, dict(r.attrs)) for r in node_rows), key=lambda n: n.id
            )
        )
        return LineageGraph(
            node_id, direction, nodes, tuple(sorted(set(found), key=lambda e: (e.src, e.dst)))
        )

    # -- pins -----------------------------------------------------------------------------------

    def pin(self, node_id: str, reason: str) -> None:
        self.node(node_id)
        with self._engine.begin() as conn:
            conn.execute(delete(t.pins).where(t.pins.c.node_id == node_id))
            conn.execute(t.pins.insert().values(node_id=node_id, reason=reason, created_at=_now()))

    def unpin(self, node_id: str) -> bool:
        with self._engine.begin() as conn:
            return conn.execute(delete(t.pins).where(t.pins.c.node_id == node_id)).rowcount > 0

    def pins(self) -> list[Pin]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.pins).order_by(t.pins.c.node_id)).all()
        return [Pin(r.node_id, r.reason, r.created_at) for r in rows]

    def referenced_artifacts(self) -> set[str]:
        """Digests listed under ``attrs["artifacts"]`` of any node: what artifact clean-up keeps."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(t.nodes.c.attrs)).scalars().all()
        return {d for attrs in rows for d in (attrs or {}).get("artifacts", [])}

    def protected(self) -> set[str]:
        """Every pinned node and everything upstream of one: what clean-up must keep."""
        keep: set[str] = set()
        for pin in self.pins():
            if pin.node_id not in keep:
                keep |= {n.id for n in self.graph(pin.node_id, "upstream").nodes}
        return keep
