from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace


def loans(n: int = 240, seed: int = 0) -> pa.Table:
    """A small separable table: numeric + categorical features, id, a binary label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], size=n)
    score = x + np.where(region == "north", 1.0, -0.5) + rng.normal(scale=0.3, size=n)
    return pa.table(
        {
            "id": np.arange(n),
            "x": x,
            "noise": rng.normal(size=n),
            "region": region,
            "label": np.where(score > 0, "bad", "good"),
        }
    )


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add("loans", loans(), label="label", id="id")
    return ws
