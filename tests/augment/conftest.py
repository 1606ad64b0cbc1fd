"""Small generated tables for augmentation tests (no network; a few hundred rows at most)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace


def mixed_table(rows: int = 300, rare: int = 30, seed: int = 0) -> pa.Table:
    """id, two correlated numbers, an integer, a category, and a label whose class 'rare' is shifted."""
    rng = np.random.default_rng(seed)
    label = np.array(["rare"] * rare + ["common"] * (rows - rare))
    shift = np.where(label == "rare", 2.0, 0.0)
    x1 = rng.normal(shift, 1.0)
    x2 = 0.8 * x1 + rng.normal(0, 0.6, rows)
    count = rng.poisson(3 + shift).astype(np.int64)
    colour = np.where(rng.uniform(size=rows) < 0.3 + 0.3 * (label == "rare"), "red", "blue")
    return pa.table(
        {
            "id": pa.array(np.arange(rows), pa.int64()),
            "x1": x1,
            "x2": x2,
            "count": count,
            "colour": colour.tolist(),
            "label": label.tolist(),
        }
    )


REVIEWS = [
    "the soup was cold and the bread was stale",
    "great food and friendly service, will come back",
    "delicious pizza with fresh tomato and cheese",
    "terrible service and the waiter was rude to us",
    "lovely coffee and a quiet place to read",
    "the pasta was bland and overcooked",
    "amazing dessert, the chocolate cake was perfect",
    "slow kitchen and a noisy room",
]


def text_table(repeat: int = 5) -> pa.Table:
    texts = [f"{t} visit {i}" for i in range(repeat) for t in REVIEWS]
    labels = [
        "other" if any(w in t for w in ("cold", "terrible", "bland", "slow")) else "great" for t in texts
    ]
    return pa.table({"id": pa.array(range(len(texts)), pa.int64()), "review": texts, "score": labels})


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace (embedded SQLite catalog) holding ``mixed`` (label, id) and ``reviews``."""
    workspace = Workspace.init(tmp_path / "aug")
    workspace.datasets.add("mixed", mixed_table(), label="label", id="id")
    workspace.datasets.add("reviews", text_table(), label="score", id="id")
    try:
        yield workspace
    finally:
        workspace.close()
