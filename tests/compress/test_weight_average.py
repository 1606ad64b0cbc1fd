"""Polyak (exponential moving) averaging of the student's weights during distillation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from keelml.compress import FitSettings
from keelml.compress.fitting import TensorInputs, _Average, fit_student
from keelml.core.errors import InvalidInputError


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.register_buffer("steps", torch.zeros(1, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_average_follows_the_ema_formula_and_swaps_weights_in_and_out() -> None:
    net = _Net()
    with torch.no_grad():
        net.linear.weight.fill_(0.0)
    average = _Average(net, decay=0.75)
    for value in (4.0, 8.0):
        with torch.no_grad():
            net.linear.weight.fill_(value)
            net.steps += 1
        average.update(net)
    expected = 0.75 * (0.75 * 0.0 + 0.25 * 4.0) + 0.25 * 8.0  # 2.75
    trained = average.swap_in(net)
    assert torch.allclose(net.linear.weight, torch.full((2, 2), expected))
    assert int(net.steps) == 2  # integer buffers are copied, not averaged
    assert torch.allclose(trained["linear.weight"], torch.full((2, 2), 8.0))  # the raw weights, for going on
    net.load_state_dict(trained)
    assert torch.allclose(net.linear.weight, torch.full((2, 2), 8.0))


def _task(seed: int) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 2)).astype(np.float32)
    return torch.from_numpy(x), (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _fit(decay: float) -> tuple[_Net, float]:
    torch.manual_seed(0)
    net = _Net()
    x, y = _task(0)
    vx, vy = _task(1)
    soft = np.eye(2)[y] * 0.9 + 0.05
    settings = FitSettings(epochs=3, batch_size=16, learning_rate=0.05, patience=3, ema_decay=decay)
    accuracy, _ = fit_student(net, TensorInputs(x), soft, y, (TensorInputs(vx), vy), settings)
    return net, accuracy


def test_fit_keeps_the_averaged_weights_which_still_learn_the_task() -> None:
    raw, raw_accuracy = _fit(0.0)
    averaged, averaged_accuracy = _fit(0.9)
    assert raw_accuracy >= 0.9 and averaged_accuracy >= 0.9
    # same seed, same steps: only the averaging differs, and the kept weights are not the raw ones
    assert not torch.allclose(raw.linear.weight, averaged.linear.weight, atol=1e-4)


def test_bad_decay_is_refused_with_the_range() -> None:
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(InvalidInputError, match="distillation settings") as caught:
            FitSettings(ema_decay=bad)
        assert f"ema_decay={bad}" in (caught.value.received or "")
