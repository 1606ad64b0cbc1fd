"""Intermediate-layer distillation: student layers learn the hidden states of mapped teacher layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keelml.compress import DistillConfig, FitSettings
from keelml.compress.distill import text_student
from keelml.compress.fitting import TextInputs, fit_student, predict, predict_hidden
from keelml.compress.tasks import torch_module
from keelml.core.errors import InvalidInputError


def test_layer_map_is_validated() -> None:
    with pytest.raises(InvalidInputError, match="layer_map"):
        DistillConfig(layers=1, layer_map=((0, 1),))  # no layer_weight
    with pytest.raises(InvalidInputError, match="layer_map"):
        DistillConfig(layers=1, fit=FitSettings(layer_weight=1.0))  # a weight without a map
    with pytest.raises(InvalidInputError, match="layer_map"):
        DistillConfig(layers=2, layer_map=((0, 1), (0, 2)), fit=FitSettings(layer_weight=1.0))
    with pytest.raises(InvalidInputError, match="layer_map"):
        DistillConfig(layers=2, layer_map=((-1, 1),), fit=FitSettings(layer_weight=1.0))
    with pytest.raises(InvalidInputError, match="layer_weight"):
        FitSettings(layer_weight=-0.5)
    DistillConfig(layers=1, layer_map=((0, 1),), fit=FitSettings(layer_weight=1.0))  # valid


def test_layer_map_out_of_range_names_the_layers(compress_ws: Any) -> None:
    fit = FitSettings(epochs=1, layer_weight=1.0)
    with pytest.raises(InvalidInputError, match="teacher layers 0-1"):
        compress_ws.compress.distill("review-clf@1", DistillConfig(layers=1, layer_map=((0, 2),), fit=fit),
                                     register=False)  # fmt: skip
    with pytest.raises(InvalidInputError, match="text"):
        compress_ws.compress.distill("loan-clf@1", DistillConfig(hidden=(4,), layer_map=((0, 0),), fit=fit),
                                     register=False)  # fmt: skip


def _texts(ws: Any) -> tuple[Any, list[str]]:
    source = ws.compress.source("review-clf@1")
    return source, [str(t) for t in source.parts["train"]["review"].to_pylist()]


def test_hidden_states_line_up_whatever_the_batch(compress_ws: Any) -> None:
    source, texts = _texts(compress_ws)
    module = torch_module(source.model, "text")
    rows = TextInputs(source.model, texts[:12])
    together = predict_hidden(module, rows, [0, 1], batch_size=12)
    alone = predict_hidden(module, TextInputs(source.model, texts[3:4]), [1], batch_size=1)[1]
    n = alone.shape[1]
    assert together[0].shape[0] == 12 and together[1].dtype == np.float16
    assert np.allclose(together[1][3, :n], alone[0], atol=2e-2)
    assert not together[1][3, n:].any()  # padding positions are zeros


def _layer_gap(source: Any, texts: list[str], weight: float) -> float:
    """Masked MSE between the 1-layer student's layer 0 and the teacher's layer 1 after fitting."""
    teacher = torch_module(source.model, "text")
    rows = TextInputs(source.model, texts)
    soft = predict(teacher, rows)
    target = predict_hidden(teacher, rows, [1])[1]
    student = text_student(source.model, 1)
    assert all(p.requires_grad for p in student.module.parameters())  # the LoRA teacher's were frozen
    settings = FitSettings(epochs=6, patience=6, learning_rate=5e-3, batch_size=16, layer_weight=weight)
    hard = soft.argmax(1).astype(np.int64)
    fit_student(student.module, TextInputs(student, texts), soft, hard, (rows, hard), settings,
                teacher_hidden={0: target} if weight else None)  # fmt: skip
    assert not any(layer._forward_hooks for layer in student.module.encoder.encoder.layer)
    mine = predict_hidden(student.module, TextInputs(student, texts), [0])[0].astype(np.float32)
    mask = source.model.encode(texts)[1].numpy()[:, : target.shape[1]] > 0
    return float(((mine - target.astype(np.float32)) ** 2)[mask].mean())


def test_layer_term_pulls_the_student_layer_to_the_teacher_layer(compress_ws: Any) -> None:
    source, texts = _texts(compress_ws)
    plain, matched = _layer_gap(source, texts, 0.0), _layer_gap(source, texts, 5.0)
    assert matched < 0.8 * plain


def test_text_student_with_layer_map(compress_ws: Any) -> None:
    fit = FitSettings(epochs=1, learning_rate=5e-3, layer_weight=1.0)
    result = compress_ws.compress.distill("review-clf@1", DistillConfig(layers=1, layer_map=((0, 1),), fit=fit),
                                          register=False)  # fmt: skip
    assert len(result.model.module.encoder.encoder.layer) == 1
    assert 0.0 <= result.accuracy.accuracy <= 1.0


def _pruned_gap(ws: Any, weight: float) -> float:
    """Masked MSE between the pruned model's last layer and the unpruned model's after recovery."""
    from keelml.compress import PruneConfig

    source, texts = _texts(ws)
    fit = FitSettings(epochs=6, patience=6, learning_rate=5e-3, batch_size=16, layer_weight=weight)
    pruned = ws.compress.prune(source, PruneConfig(amount=0.5, fit=fit), register=False).model
    teacher = torch_module(source.model, "text")
    last = len(teacher.encoder.encoder.layer) - 1
    target = predict_hidden(teacher, TextInputs(source.model, texts), [last])[last].astype(np.float32)
    mine = predict_hidden(pruned.module, TextInputs(pruned, texts), [last])[last].astype(np.float32)
    mask = source.model.encode(texts)[1].numpy()[:, : target.shape[1]] > 0
    return float(((mine - target) ** 2)[mask].mean())


def test_pruning_with_a_layer_weight_keeps_each_layer_near_the_unpruned_one(compress_ws: Any) -> None:
    plain, matched = _pruned_gap(compress_ws, 0.0), _pruned_gap(compress_ws, 5.0)
    assert matched < 0.8 * plain
    from keelml.compress import PruneConfig

    with pytest.raises(InvalidInputError, match="needs a transformer"):
        compress_ws.compress.prune(
            "loan-clf@1", PruneConfig(fit=FitSettings(layer_weight=1.0)), register=False
        )
