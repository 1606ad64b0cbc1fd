"""Student initialisation from chosen teacher layers, and the warm-up / linear-decay learning rate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings
from keelml.compress.fitting import rate_factor
from keelml.core.errors import InvalidInputError
from tests.compress.test_distill_prune import reload


def test_student_from_chosen_teacher_layers_copies_those_layers_and_reloads(compress_ws: Workspace) -> None:
    ws = compress_ws
    teacher = ws.compress.source("review-clf@1")
    fit = FitSettings(epochs=2, learning_rate=1e-9)  # ~no update: the weights stay the teacher's layer 1
    result = ws.compress.distill(teacher, DistillConfig(teacher_layers=(1,), fit=fit))
    assert result.description == "layers 1 of 2"
    encoder = result.model.module.encoder
    assert len(encoder.encoder.layer) == 1 and encoder.config.num_hidden_layers == 1
    source_layers = teacher.model.merged().module.encoder.encoder.layer
    kept = encoder.encoder.layer[0].attention.self.query.weight.detach().numpy()
    np.testing.assert_allclose(kept, source_layers[1].attention.self.query.weight.detach().numpy(), atol=1e-6)
    assert not np.allclose(kept, source_layers[0].attention.self.query.weight.detach().numpy(), atol=1e-3)
    assert result.validation_accuracy is not None and 0.0 <= result.validation_accuracy <= 1.0
    assert result.best_epoch in (1, 2)
    assert result.registered.metrics["validation_accuracy"] == pytest.approx(result.validation_accuracy)
    loaded = reload(ws, result.spec or "")
    texts = ["great tasty coffee", "stale awful chips"]
    np.testing.assert_allclose(loaded.predict_proba(texts), result.model.predict_proba(texts), atol=1e-5)  # type: ignore[attr-defined]


def test_teacher_layers_are_validated(compress_ws: Workspace) -> None:
    for bad in ((1, 0), (0, 0), (), (-1, 1)):
        with pytest.raises(InvalidInputError, match="teacher_layers must name"):
            DistillConfig(teacher_layers=bad)
    with pytest.raises(InvalidInputError, match="teacher_layers must name") as caught:
        DistillConfig(layers=3, teacher_layers=(0, 5))
    assert "layers=3" in (caught.value.received or "")
    assert DistillConfig(layers=2, teacher_layers=(0, 5)).teacher_layers == (0, 5)
    with pytest.raises(InvalidInputError, match="more layers than the teacher"):
        compress_ws.compress.distill("review-clf@1", DistillConfig(teacher_layers=(0, 5)), register=False)
    with pytest.raises(InvalidInputError, match="text teacher"):
        compress_ws.compress.distill("loan-clf@1", DistillConfig(teacher_layers=(0,)), register=False)


def test_linear_schedule_warms_up_then_decays_to_zero() -> None:
    factor = rate_factor(FitSettings(schedule="linear", warmup_fraction=0.2), total_steps=10)
    values = [factor(step) for step in range(10)]
    assert values[0] == pytest.approx(1 / 3) and values[1] == pytest.approx(2 / 3)  # 2 warm-up steps
    assert values[2] == pytest.approx(1.0) and max(values) == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(values[2:]))  # strictly decreasing after
    assert values[-1] == pytest.approx(1 / 8) and factor(10) == 0.0
    constant = rate_factor(FitSettings(), total_steps=10)
    assert {constant(step) for step in range(12)} == {1.0}
    with pytest.raises(InvalidInputError, match="distillation settings") as caught:
        FitSettings(schedule="cosine", warmup_fraction=1.0)
    received = caught.value.received or ""
    assert "cosine" in received and "warmup_fraction=1.0" in received


def test_text_student_trains_with_the_linear_schedule(compress_ws: Workspace) -> None:
    fit = FitSettings(epochs=3, learning_rate=1e-2, schedule="linear", warmup_fraction=0.3)
    result = compress_ws.compress.distill("review-clf@1", DistillConfig(layers=1, fit=fit), register=False)
    assert result.accuracy.accuracy >= 0.9
    assert result.validation_accuracy is not None and result.validation_accuracy >= 0.9
