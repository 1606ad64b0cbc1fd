"""`keel lineage`: upstream and downstream graph of a node, as a tree or JSON."""

from __future__ import annotations

import typer
from rich.tree import Tree

from keelml.cli.context import emit_json, out, workspace
from keelml.core.errors import InvalidInputError
from keelml.core.lineage import Direction, LineageGraph
from keelml.core.refs import parse_spec
from keelml.core.workspace import Workspace

_DIRECTIONS: dict[str, list[Direction]] = {
    "both": ["upstream", "downstream"],
    "upstream": ["upstream"],
    "downstream": ["downstream"],
}


def node_id(ws: Workspace, target: str) -> str:
    """``NAME[@V]`` names a dataset version; anything with ``kind:`` is a node id as is."""
    if ":" in target:
        return target
    spec = parse_spec(target)
    version = (
        ws.catalog.get_version(spec.name, spec.version).version if spec.version is None else spec.version
    )
    ws.catalog.get_version(spec.name, version)
    return f"dataset:{spec.name}@{version}"


def _tree(graph: LineageGraph, label: str) -> Tree:
    nodes = {n.id: n for n in graph.nodes}
    tree = Tree(f"[bold]{label}[/]")

    def grow(branch: Tree, nid: str, path: frozenset[str]) -> None:
        for child in graph.children(nid):
            rel = next(e.relation for e in graph.edges if {e.src, e.dst} == {nid, child})
            node = nodes.get(child)
            extra = f" ({node.attrs.get('rows', '?'):,} rows)" if node and "rows" in node.attrs else ""
            sub = branch.add(f"{child} [dim]{rel}{extra}[/]")
            if child not in path:
                grow(sub, child, path | {child})

    grow(tree, graph.root, frozenset({graph.root}))
    return tree


def lineage(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="NAME@V|NODE"),
    direction: str = typer.Option("both", help="upstream, downstream or both."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show where a dataset version (or any node) came from and what was made from it."""
    ws = workspace(ctx)
    nid = node_id(ws, target)
    wanted = _DIRECTIONS.get(direction)
    if wanted is None:
        raise InvalidInputError(
            f"unknown direction {direction!r}",
            expected="upstream, downstream or both",
            fix="--direction both",
        )
    graphs = [ws.catalog.lineage.graph(nid, d) for d in wanted]
    if as_json:
        emit_json({g.direction: g.to_json() for g in graphs})
        return
    out.print(f"[bold]{nid}[/]")
    for g in graphs:
        out.print(_tree(g, f"{g.direction} ({len(g.nodes) - 1} nodes)"))


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
