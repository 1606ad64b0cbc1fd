"""The server-drawn lineage graph: layer order follows the parents, captions say how a node was made."""

from __future__ import annotations

import re

from keelml.ui.lineage_svg import GraphNode, lineage_svg


def _rows(svg: str) -> dict[str, float]:
    found = re.findall(r'data-id="([^"]+)"><title>[^<]*</title><rect x="[\d.]+" y="([\d.]+)"', svg)
    return {node: float(y) for node, y in found}


def test_children_are_ordered_by_their_parents_rows() -> None:
    nodes = [GraphNode(i, "model", i) for i in ("a", "b", "x", "y")]
    # by id, x would sit beside a and y beside b; the edges say the opposite
    svg = lineage_svg(nodes, [("a", "y"), ("b", "x")], focus=None)
    rows = _rows(svg)
    assert rows["a"] < rows["b"]
    assert rows["y"] < rows["x"], "a child should sit level with its parent to avoid crossing edges"


def test_caption_replaces_the_bare_kind() -> None:
    svg = lineage_svg([GraphNode("model:m@2", "model", "m@2", "model · int8")], [], focus=None)
    assert "model · int8" in svg
    plain = lineage_svg([GraphNode("model:m@1", "model", "m@1")], [], focus=None)
    assert ">model<" in plain
