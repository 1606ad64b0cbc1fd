"""The stored reference profile is the monitor baseline in the lineage graph:
dataset version -> model version -> monitor baseline (and dataset version -> baseline when profiled from it).

Model versions are added to the lineage graph as ``ws.models.register`` does (a ``model`` node, an edge
from its training dataset), without starting MLflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keelml.core.errors import ConfigError
from keelml.core.lineage import Edge
from keelml.core.workspace import Workspace
from tests.monitor.helpers import SPEC, rows


def _register(ws: Workspace, name: str, version: int, dataset: str | None = None) -> str:
    node = f"model:{name}@{version}"
    with ws.catalog.begin() as conn:
        ws.catalog.lineage.add_node(conn, node, "model", name, version, {"task": "tabular"})
        if dataset is not None:
            ws.catalog.lineage.add_edge(conn, dataset, node, "trained")
    return node


def test_profile_links_the_registered_model_version(local_ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows(rng, 600).to_parquet(tmp_path / "ref.parquet")
    local_ws.datasets.add("ref", tmp_path / "ref.parquet")
    v1 = _register(local_ws, "churn", 1, "dataset:ref@1")
    v2 = _register(local_ws, "churn", 2, "dataset:ref@1")

    info = local_ws.monitor.profile("churn", spec={**SPEC, "reference": "ref@1"})
    assert info.model == v2 and info.baseline == f"monitor:churn@{info.id}"  # newest version by default
    graph = local_ws.catalog.lineage.graph(info.baseline, "upstream")
    assert Edge(v2, info.baseline, "monitored") in graph.edges
    assert Edge("dataset:ref@1", info.baseline, "profiled") in graph.edges
    assert Edge("dataset:ref@1", v2, "trained") in graph.edges  # the whole chain, walked from the baseline
    node = local_ws.catalog.lineage.node(info.baseline)
    assert node.kind == "monitor" and node.version == info.id and node.attrs["rows"] == 600
    down = local_ws.catalog.lineage.graph(v2, "downstream")
    assert info.baseline in {n.id for n in down.nodes}

    # an explicit version, from the spec or the call; a data frame source has no dataset edge
    pinned = local_ws.monitor.profile("churn", rows(rng, 300), spec={**SPEC, "model": "churn@1"})
    edges = local_ws.catalog.lineage.graph(pinned.baseline or "", "upstream").edges
    assert pinned.model == v1 and {e.relation for e in edges if e.dst == pinned.baseline} == {"monitored"}
    called = local_ws.monitor.profile("churn", rows(rng, 300), spec=SPEC, model_version="churn@1")
    assert called.model == v1 and called.baseline != pinned.baseline


def test_monitor_without_a_registered_model(local_ws: Workspace) -> None:
    rng = np.random.default_rng(1)
    info = local_ws.monitor.profile("adhoc", rows(rng, 300), spec=SPEC)
    assert info.model is None and info.baseline is None  # nothing upstream to link
    with pytest.raises(ConfigError, match="is not a registered model version") as err:
        local_ws.monitor.profile("adhoc", rows(rng, 300), spec={**SPEC, "model": "churn@7"})
    assert "model_version=" in str(err.value)
    with pytest.raises(ConfigError, match="aliases are resolved by the registry"):
        local_ws.monitor.profile("adhoc", rows(rng, 300), spec=SPEC, model_version="churn@production")


def test_profile_links_the_deployments_serving_the_model_version(local_ws: Workspace) -> None:
    """dataset -> model version -> deployment -> monitor baseline, with the deployment written as the
    serving path writes it (a ``deployment`` node and a "deployed" edge from the served version)."""
    rng = np.random.default_rng(2)
    v1 = _register(local_ws, "churn", 1)
    v2 = _register(local_ws, "churn", 2)
    deployed = "deployment:churn@production/v2"
    with local_ws.catalog.begin() as conn:
        local_ws.catalog.lineage.add_node(conn, deployed, "deployment", "churn@production", 2)
        local_ws.catalog.lineage.add_edge(conn, v2, deployed, "deployed")

    info = local_ws.monitor.profile("churn", rows(rng, 300), spec=SPEC, model_version="churn@2")
    up = local_ws.catalog.lineage.graph(info.baseline or "", "upstream")
    assert Edge(deployed, info.baseline or "", "monitored") in up.edges
    assert Edge(v2, deployed, "deployed") in up.edges  # the chain is walkable from the baseline
    other = local_ws.monitor.profile("churn", rows(rng, 300), spec=SPEC, model_version="churn@1")
    assert v1 == other.model
    up1 = local_ws.catalog.lineage.graph(other.baseline or "", "upstream")
    assert deployed not in {n.id for n in up1.nodes}  # v1 is not served: no deployment upstream
