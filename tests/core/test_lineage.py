"""The lineage graph: version-to-version edges, cross-dataset parents, pins and protection."""

from __future__ import annotations

import pytest

from keelml import Workspace
from keelml.core.errors import NodeNotFoundError


@pytest.fixture
def history(ws: Workspace, make_table):  # type: ignore[no-untyped-def]
    """d@1 (add) -> d@2 (append) -> d@3 (relabel, also from other@1)."""
    d1 = ws.datasets.add("d", make_table(5), id="id", label="label")
    d2 = ws.datasets.append("d", make_table(5, start=5))
    other = ws.datasets.add("other", make_table(3, start=100), id="id")
    relabelled = ws.datasets.read(d2).set_column(3, "label", [["x"] * 10])
    d3 = ws.datasets.write_version("d", relabelled, operation="relabel", parents=(other,))
    return d1, d2, d3, other


def _edges(graph) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return {(e.src, e.dst, e.relation) for e in graph.edges}


def test_each_version_has_an_edge_from_its_parent(ws: Workspace, history) -> None:
    d1, d2, d3, other = history
    graph = ws.catalog.lineage.graph(d3.node_id, "upstream")
    assert _edges(graph) == {
        (d1.node_id, d2.node_id, "append"),
        (d2.node_id, d3.node_id, "relabel"),
        (other.node_id, d3.node_id, "relabel"),
    }
    assert {n.id for n in graph.nodes} == {d1.node_id, d2.node_id, d3.node_id, other.node_id}
    assert graph.children(d3.node_id) == sorted([d2.node_id, other.node_id])
    assert graph.children(d1.node_id) == []


def test_nodes_carry_version_attributes(ws: Workspace, history) -> None:
    _, d2, _, _ = history
    node = ws.catalog.lineage.node(d2.node_id)
    assert (node.kind, node.name, node.version) == ("dataset", "d", 2)
    assert node.attrs == {"digest": d2.digest, "rows": 10, "operation": "append"}


def test_downstream_walk(ws: Workspace, history) -> None:
    d1, d2, d3, other = history
    down = ws.catalog.lineage.graph(d1.node_id, "downstream")
    assert {n.id for n in down.nodes} == {d1.node_id, d2.node_id, d3.node_id}
    assert down.children(d1.node_id) == [d2.node_id]
    assert {n.id for n in ws.catalog.lineage.graph(other.node_id, "downstream").nodes} == {
        other.node_id,
        d3.node_id,
    }
    as_json = down.to_json()
    assert as_json["root"] == d1.node_id
    assert {"src": d1.node_id, "dst": d2.node_id, "relation": "append"} in as_json["edges"]


def test_re_adding_identical_data_adds_no_node(ws: Workspace, history, make_table) -> None:
    d1, _, d3, _ = history
    before = ws.catalog.lineage.graph(d1.node_id, "downstream")
    assert ws.datasets.add("d", ws.datasets.read(d3)) == d3
    assert ws.catalog.lineage.graph(d1.node_id, "downstream") == before


def test_pin_protects_the_node_and_everything_upstream(ws: Workspace, history) -> None:
    d1, d2, d3, other = history
    lineage = ws.catalog.lineage
    assert lineage.protected() == set()
    lineage.pin(d2.node_id, "model m@1 trained on it")
    assert lineage.protected() == {d1.node_id, d2.node_id}
    lineage.pin(d3.node_id, "production")
    assert lineage.protected() == {d1.node_id, d2.node_id, d3.node_id, other.node_id}
    assert [(p.node_id, p.reason) for p in lineage.pins()] == [
        (d2.node_id, "model m@1 trained on it"),
        (d3.node_id, "production"),
    ]
    assert lineage.unpin(d3.node_id) is True
    assert lineage.unpin(d3.node_id) is False
    assert lineage.protected() == {d1.node_id, d2.node_id}
    assert lineage.unpin(d2.node_id) is True
    assert lineage.protected() == set()


def test_pinning_twice_replaces_the_reason(ws: Workspace, history) -> None:
    d1 = history[0]
    ws.catalog.lineage.pin(d1.node_id, "first")
    ws.catalog.lineage.pin(d1.node_id, "second")
    assert [(p.node_id, p.reason) for p in ws.catalog.lineage.pins()] == [(d1.node_id, "second")]


@pytest.mark.parametrize("node_id", ["dataset:d@9", "dataset:nope@1", "d@1"])
def test_unknown_node(ws: Workspace, history, node_id: str, explains) -> None:
    lineage = ws.catalog.lineage
    for call in (lambda: lineage.node(node_id), lambda: lineage.graph(node_id, "upstream")):
        with pytest.raises(NodeNotFoundError) as info:
            call()
        assert isinstance(info.value, KeyError)
        explains(info.value, repr(node_id))
    with pytest.raises(NodeNotFoundError):
        lineage.pin(node_id, "x")
    assert lineage.pins() == []
