"""A small numpy model and an in-memory model source, so the HTTP layer is tested without ONNX."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keelml.serve import LoadedModel, ServeConfig, create_app
from keelml.serve.model import schema_of

INFO = {
    "task": "tabular",
    "classes": ("good", "bad"),
    "inputs": [{"name": "amount", "kind": "numeric"}, {"name": "region", "kind": "categorical"},
               {"name": "note", "kind": "text"}],
    "variant": "int8",
}  # fmt: skip


@dataclass
class FakeModel:
    """p(bad) = sigmoid(weight * amount / 1000 + (region == north)); optionally slow."""

    weight: float = 1.0
    delay: float = 0.0
    info: Mapping[str, Any] = field(default_factory=lambda: INFO)
    calls: int = 0

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        z = np.array([self.weight * r["amount"] / 1000 + (r["region"] == "north") for r in rows])
        bad = 1 / (1 + np.exp(-np.clip(z, -50, 50)))
        bad[[r["note"] == "unscorable" for r in rows]] = np.nan  # like a graph overflowing inside
        return np.stack([1 - bad, bad], axis=1)


class FakeSource:
    """Versions 1..n of a model; ``alias`` says which one ``loans@production`` names now."""

    def __init__(self, models: dict[int, FakeModel], alias: int = 1) -> None:
        self.models = models
        self.alias = alias
        self.loads = 0
        self.fail = False
        self.lock = threading.Lock()

    def version_of(self, spec: str) -> int:
        if self.fail:
            raise ConnectionError("registry down")
        return self.alias

    def load(self, spec: str) -> LoadedModel:
        self.loads += 1
        version = self.alias
        model = self.models[version]
        return LoadedModel("loans", version, model, schema_of(model.info), {"lineage": ["dataset:loans@1"]})


GOOD_ROW = {"amount": -2000.0, "region": "south", "note": "first loan"}


def fake_app(tmp: Path, source: FakeSource | None = None, **kw: Any) -> Any:
    config = kw.pop("config", ServeConfig(log_flush_seconds=0.05, reload_seconds=3600))
    return create_app(
        "loans@production", source or FakeSource({1: FakeModel()}), storage=tmp, config=config, **kw
    )
