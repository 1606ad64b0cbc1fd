from __future__ import annotations

from typing import Any

import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError
from keelml.federated import FederatedConfig


def test_simulate_tracks_rounds_registers_and_links_every_partition(fl_ws: Workspace) -> None:
    config = FederatedConfig(clients=4, rounds=3, partition="by:region", hidden=(16,), local_epochs=2)
    run = fl_ws.federated.simulate("customers", config, name="churn-fl")
    assert run.model == "churn-fl@1" and len(run.history) == 3
    assert sum(p.rows for p in run.partitions) == 320  # the 80 test rows stand for the population
    graph = fl_ws.catalog.lineage.graph("model:churn-fl@1", "upstream").to_json()
    edges = {(e["src"], e["dst"], e["relation"]) for e in graph["edges"]}
    for p in run.partitions:
        assert (p.node_id, "model:churn-fl@1", "trained") in edges
        assert ("dataset:customers@1", p.node_id, "partitioned") in edges
    history = fl_ws.models.client.get_metric_history(run.run_id, "test_accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]  # per round, plus the final value
    info = fl_ws.models.show("churn-fl")
    assert info.tags["keel.task"] == "tabular" and info.metrics["test_accuracy"] > 0.7
    from keelml.train.tabular import TabularClassifier  # the registered file is a keelml.tabular/1 model

    loaded = TabularClassifier.from_bytes(fl_ws.artifacts.read_bytes(run.artifact))
    assert set(loaded.classes) == {"churn", "stay"}
    assert "region" not in loaded.preprocessor.input_names  # the partition column identifies the client


def test_client_dp_reports_the_accountants_epsilon_and_spends_it(fl_ws: Workspace) -> None:
    config = FederatedConfig(clients=4, rounds=3, client_dp=(1.0, 1.2), hidden=(8,))
    run = fl_ws.federated.simulate("customers", config, register=False)
    expected = fl_ws.privacy.compute_epsilon(noise_multiplier=1.2, sample_rate=1.0, steps=3, delta=1e-5)
    assert run.epsilon == pytest.approx(expected) and run.model is None
    entries: list[Any] = fl_ws.privacy.entries("customers")
    assert [e.kind for e in entries] == ["federated"]
    assert entries[0].epsilon == pytest.approx(expected)


def test_bad_partition_column_is_named(fl_ws: Workspace, explains: Any) -> None:
    with pytest.raises(ColumnNotFoundError) as info:
        fl_ws.federated.simulate("customers", FederatedConfig(clients=3, partition="by:country"))
    explains(info.value, "country", "by:COLUMN")
