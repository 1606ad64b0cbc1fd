"""Representation distillation: the student's head input is pulled towards the teacher's."""

from __future__ import annotations

import numpy as np
import pytest

from keelml.compress import DistillConfig, FitSettings
from keelml.compress.fitting import TensorInputs, fit_student, predict_with_features
from keelml.core.errors import InvalidInputError


def _module(seed: int) -> object:
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(seed)
            self.body = nn.Sequential(nn.Linear(6, 8), nn.Tanh())
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))  # type: ignore[no-any-return]

    return Tiny()


def _distance(teacher_features: np.ndarray, hidden_weight: float) -> float:  # type: ignore[type-arg]
    import torch

    x = torch.randn(96, 6, generator=torch.Generator().manual_seed(1))
    teacher = _module(0)
    soft, _ = predict_with_features(teacher, TensorInputs(x), features=False)
    hard = soft.argmax(1).astype(np.int64)
    student = _module(5)
    settings = FitSettings(
        epochs=30, patience=30, learning_rate=1e-2, batch_size=16, hidden_weight=hidden_weight
    )
    fit_student(student, TensorInputs(x), soft, hard, (TensorInputs(x), hard), settings,
                teacher_features=teacher_features)  # fmt: skip
    _, features = predict_with_features(student, TensorInputs(x))
    assert features is not None and features.shape == (96, 8)
    return float(((features - teacher_features) ** 2).mean())


def test_feature_term_pulls_the_students_features_to_the_teachers() -> None:
    import torch

    x = torch.randn(96, 6, generator=torch.Generator().manual_seed(1))
    _, teacher_features = predict_with_features(_module(0), TensorInputs(x))
    assert teacher_features is not None
    plain, matched = _distance(teacher_features, 0.0), _distance(teacher_features, 5.0)
    assert matched < 0.8 * plain  # best epoch by validation accuracy: 0.37 vs 0.53 here


def test_hidden_weight_is_validated_and_needs_a_text_student(compress_ws: object) -> None:
    with pytest.raises(InvalidInputError, match="hidden_weight"):
        FitSettings(hidden_weight=-1.0)
    with pytest.raises(InvalidInputError, match="feature matching"):
        compress_ws.compress.distill(  # type: ignore[attr-defined]
            "loan-clf@1",
            DistillConfig(hidden=(4,), fit=FitSettings(epochs=1, hidden_weight=1.0)),
            register=False,
        )


def test_text_student_with_feature_matching(compress_ws: object) -> None:
    ws = compress_ws
    teacher = ws.compress.source("review-clf@1")  # type: ignore[attr-defined]
    fit = FitSettings(epochs=2, learning_rate=5e-3, hidden_weight=1.0)
    result = ws.compress.distill(teacher, DistillConfig(layers=1, fit=fit), register=False)  # type: ignore[attr-defined]
    assert len(result.model.module.encoder.encoder.layer) == 1
    assert not result.model.module.head._forward_hooks  # the training hook is removed
    assert 0.0 <= result.accuracy.accuracy <= 1.0
