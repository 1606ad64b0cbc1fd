"""The bundled MiniLM: a briefly trained teacher, a 2-layer student and a pruned copy (slow: real weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings, PruneConfig
from keelml.compress.source import resolve
from keelml.core.refs import ArtifactRef
from keelml.pipeline.training import train_and_register
from keelml.train.config import TextConfig
from tests.train.test_text import reviews

pytestmark = pytest.mark.slow


def test_minilm_student_and_pruned_model_shrink_reload_and_export(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add("reviews", reviews(60), label="score")
    config = TextConfig(
        text="review", peft="lora", epochs=1, batch_size=16, max_length=16, learning_rate=1e-3
    )
    train_and_register(ws, "reviews", name="minilm-clf", config=config)
    fit = FitSettings(epochs=1, batch_size=16)
    student = ws.compress.distill("minilm-clf@1", DistillConfig(layers=2, fit=fit))
    pruned = ws.compress.prune("minilm-clf@1", PruneConfig(amount=0.5, fit=fit))
    encoder = student.model.module.encoder
    assert len(encoder.encoder.layer) == 2 and student.parameters < student.parent_parameters
    layer = pruned.model.module.encoder.encoder.layer[0]
    assert layer.attention.self.query.out_features == 6 * 32  # 6 of MiniLM's 12 heads of size 32
    assert layer.intermediate.dense.out_features == 768  # half of 1536
    texts = ["great tasty coffee", "stale awful chips"]
    for made in (student, pruned):
        info = ws.models.show(made.spec or "")
        loaded = resolve(info.tags["keel.loader"])(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))
        np.testing.assert_allclose(loaded.predict_proba(texts), made.model.predict_proba(texts), atol=1e-5)
        source = loaded.export_source()  # the export hook: a probability module over (ids, mask)
        probs = source.module(*source.example_inputs)
        assert tuple(probs.shape) == (2, 2)
