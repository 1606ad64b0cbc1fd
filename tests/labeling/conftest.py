"""Fixtures for labeling tests: a small labeled/unlabeled dataset and batch-file helpers."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace

CLASSES = ("cat", "dog", "fish")


def blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three separable-ish Gaussian blobs in 2-d; labels 0..2."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    return centers[y] + rng.normal(scale=0.9, size=(n, 2)), y


def pool_table(n: int = 120, labeled: int = 30, seed: int = 0) -> tuple[pa.Table, list[str]]:
    """Rows id 0..n-1 with features x1, x2, a note; the first ``labeled`` rows keep their label."""
    x, y = blobs(n, seed)
    truth = [CLASSES[i] for i in y]
    labels = [t if i < labeled else None for i, t in enumerate(truth)]
    table = pa.table(
        {
            "id": pa.array(np.arange(n), pa.int64()),
            "x1": x[:, 0],
            "x2": x[:, 1],
            "note": [f"row {i} looks like a {t}" for i, t in enumerate(truth)],
            "label": pa.array(labels, pa.string()),
        }
    )
    return table, truth


@pytest.fixture
def pets(local_ws: Workspace) -> tuple[Workspace, list[str]]:
    """A workspace with dataset ``pets``: 120 rows, 30 labeled; returns the true labels too."""
    table, truth = pool_table()
    local_ws.datasets.add("pets", table, label="label", id="id")
    return local_ws, truth


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def fill(tmp_path: Path) -> Callable[..., Path]:
    """``fill(batch_path, labels_by_id, out_name)``: a copy of a batch file with labels filled in."""

    def call(batch: Path, labels: dict[str, str], name: str = "filled.csv", **extra: object) -> Path:
        if batch.suffix == ".jsonl":
            rows = [json.loads(line) for line in batch.read_text().splitlines() if line.strip()]
        else:
            with batch.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        for row in rows:
            row["label"] = labels.get(str(row["id"]), "")
            row.update(extra)
        return _write(tmp_path / name, rows)

    return call


@pytest.fixture
def write_rows(tmp_path: Path) -> Callable[..., Path]:
    """``write_rows(rows, name)``: a batch file from explicit rows."""

    def call(rows: list[dict[str, object]], name: str = "rows.csv") -> Path:
        return _write(tmp_path / name, rows)

    return call


@pytest.fixture
def explains() -> Callable[..., str]:
    """``explains(exc, *needles)``: the error is a KeelError naming the problem (each needle) and a fix."""
    from keelml.core.errors import KeelError

    def check(exc: BaseException, *needles: str) -> str:
        assert isinstance(exc, KeelError), f"{type(exc).__name__} is not a KeelError: {exc}"
        text = str(exc)
        assert exc.problem.strip() and exc.fix and f"fix: {exc.fix}" in text, text
        for needle in needles:
            assert needle in text, f"{needle!r} not in message:\n{text}"
        return text

    return check
