"""One trained-and-registered workspace per module: MLflow is slow to import and to set up."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelml import Workspace
from keelml.data.slices import Slice
from keelml.pipeline.training import TrainingRun, train_tabular
from keelml.train import TabularConfig
from tests.train.conftest import loans

GATES = """
[gates]
min_metric = { test_accuracy = 0.6 }
max_slice_gap = 0.5
max_latency_ms = 50
max_privacy_epsilon = 3.0
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[TrainingRun]]:
    root = tmp_path_factory.mktemp("tracking") / "ws"
    Workspace.init(root)
    with (root / "keel.toml").open("a") as fh:
        fh.write(GATES)
    ws = Workspace.open(root)
    ws.datasets.add("loans", loans(), label="label", id="id")
    slices = [Slice("north", 'region == "north"'), Slice("south", 'region == "south"')]
    runs = [
        train_tabular(ws, "loans", name="loan-clf", config=TabularConfig(model=m, epochs=4), slices=slices)
        for m in ("logreg", "mlp")
    ]
    return ws, runs


def with_gates(ws: Workspace, gates: str) -> Workspace:
    text = (ws.root / "keel.toml").read_text().split("[gates]")[0]
    (ws.root / "keel.toml").write_text(text + gates)
    return Workspace.open(ws.root)


__all__ = ["Path", "with_gates"]
