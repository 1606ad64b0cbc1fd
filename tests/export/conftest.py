"""One trained, registered and exported tabular workspace per session: MLflow is slow to set up."""

from __future__ import annotations

from pathlib import Path

import pytest

from keelml import Workspace
from keelml.data.slices import Slice
from keelml.export import ExportResult
from keelml.pipeline.training import train_tabular
from keelml.train import TabularConfig
from tests.cli.conftest import keel  # noqa: F401  (the in-process `keel` CLI fixture)
from tests.train.conftest import loans

SLICES = [Slice("north", 'region == "north"'), Slice("south", 'region == "south"')]
HARDWARE = """
[hardware.tiny-box]
price_per_hour = 0.36
cores = 1

[gates]
max_latency_ms = 1000
"""


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, ExportResult]:
    root = tmp_path_factory.mktemp("export") / "ws"
    Workspace.init(root)
    with (root / "keel.toml").open("a") as fh:
        fh.write(HARDWARE)
    ws = Workspace.open(root)
    ws.datasets.add("loans", loans(), label="label", id="id")
    train_tabular(ws, "loans", name="loan-clf", config=TabularConfig(epochs=4), slices=SLICES)
    result = ws.exports.export("loan-clf@1", variants=("fp32", "int8"), slices=SLICES)
    return ws, result


__all__ = ["Path"]
