"""The lineage graph as an SVG drawn on the server: nodes in layers by longest path from a source."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from keelml.ui.html import esc

_W, _H, _GAP_X, _GAP_Y = 170, 34, 60, 18
_COLOURS = {"dataset": "#dbeafe", "model": "#dcfce7", "run": "#fef9c3", "monitor": "#fde2e1"}


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    kind: str
    label: str
    caption: str = ""  # the small line above the label; the kind when empty


def layers(nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Layer of each node: 0 for sources, else 1 + the deepest parent (cycles are cut).

    >>> n = [GraphNode(x, "dataset", x) for x in "abc"]
    >>> layers(n, [("a", "b"), ("b", "c"), ("a", "c")])
    {'a': 0, 'b': 1, 'c': 2}
    """
    parents: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        parents[dst].append(src)
    depth: dict[str, int] = {}

    def visit(node: str, stack: frozenset[str]) -> int:
        if node not in depth:
            ps = [p for p in parents[node] if p not in stack]
            depth[node] = 1 + max((visit(p, stack | {node}) for p in ps), default=-1)
        return depth[node]

    return {n.id: visit(n.id, frozenset()) for n in nodes}


def _ordered_columns(
    nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str]], level: dict[str, int]
) -> dict[int, list[GraphNode]]:
    """Nodes per layer, each layer ordered by the mean row of its parents (fewer crossing edges)."""
    columns: dict[int, list[GraphNode]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: n.id):
        columns[level[node.id]].append(node)
    parents: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        parents[dst].append(src)
    row: dict[str, int] = {}
    for col in sorted(columns):
        members = columns[col]
        if col > 0:

            def centre(n: GraphNode) -> float:
                placed = [row[p] for p in parents[n.id] if p in row]
                return sum(placed) / len(placed) if placed else float("inf")

            members.sort(key=centre)  # stable: ties keep the id order
        row.update({n.id: i for i, n in enumerate(members)})
    return columns


def lineage_svg(nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str]], *, focus: str | None) -> str:
    known = {n.id for n in nodes}
    edges = [(s, d) for s, d in edges if s in known and d in known]
    level = layers(nodes, edges)
    columns = _ordered_columns(nodes, edges, level)
    pos = {
        n.id: (20 + col * (_W + _GAP_X), 20 + row * (_H + _GAP_Y))
        for col, members in columns.items()
        for row, n in enumerate(members)
    }
    width = 40 + (max(columns, default=0) + 1) * (_W + _GAP_X)
    height = 40 + max((len(m) for m in columns.values()), default=1) * (_H + _GAP_Y)
    parts = [
        f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#64748b"/></marker></defs>'
    ]
    for src, dst in edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        parts.append(
            f'<path class="edge" d="M{x1 + _W},{y1 + _H / 2} C{x1 + _W + _GAP_X / 2},{y1 + _H / 2} '
            f'{x2 - _GAP_X / 2},{y2 + _H / 2} {x2},{y2 + _H / 2}" fill="none" stroke="#64748b" '
            'marker-end="url(#arrow)"/>'
        )
    for node in nodes:
        x, y = pos[node.id]
        stroke = "#b42318" if node.id == focus else "#475569"
        label = node.label if len(node.label) <= 26 else node.label[:25] + "…"
        parts.append(
            f'<a href="/lineage?node={esc(quote(node.id, safe=""))}">'
            f'<g class="node" data-id="{esc(node.id)}">'
            f'<title>{esc(node.id)}</title><rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" '
            f'fill="{_COLOURS.get(node.kind, "#eef1f5")}" stroke="{stroke}"/>'
            f'<text x="{x + 8}" y="{y + 14}" fill="#6b7785">{esc(node.caption or node.kind)}</text>'
            f'<text x="{x + 8}" y="{y + 28}">{esc(label)}</text></g></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
