from __future__ import annotations

import numpy as np
import pytest
import torch

from keelml.labeling import ModelOutputs, bald_scores, mc_dropout_probs, select
from keelml.labeling.models import TorchMLPLearner


def _tiny_mlp(dropout: float = 0.3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(16, 3)
    )


def test_mc_dropout_gives_samples_x_rows_x_classes_of_probabilities() -> None:
    module = _tiny_mlp()
    x = np.random.default_rng(0).normal(size=(25, 4))
    samples = mc_dropout_probs(module, x, samples=8, batch_size=10)
    assert samples.shape == (8, 25, 3)
    assert np.allclose(samples.sum(axis=2), 1.0)
    assert not np.allclose(samples[0], samples[1])  # dropout is active: samples differ
    again = mc_dropout_probs(module, x, samples=8, batch_size=10)
    assert np.array_equal(samples, again)  # seeded: reproducible
    assert (bald_scores(samples) >= 0).all()
    picked = select("bald", ModelOutputs(mc_probs=samples), 5)
    assert len(set(picked.tolist())) == 5


def test_mc_dropout_restores_the_module_modes_and_leaves_global_rng_alone() -> None:
    module = _tiny_mlp()
    module.eval()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    mc_dropout_probs(module, np.zeros((3, 4)), samples=3)
    assert torch.rand(1).item() == expected_next.item()
    assert not any(m.training for m in module.modules())
    module.train()
    mc_dropout_probs(module, np.zeros((3, 4)), samples=3)
    assert all(m.training for m in module.modules())


def test_a_module_without_dropout_is_refused(explains) -> None:
    with pytest.raises(ValueError) as info:
        mc_dropout_probs(torch.nn.Linear(4, 3), np.zeros((2, 4)))
    explains(info.value, "dropout")


def test_torch_mlp_learner_learns_and_its_mc_samples_feed_bald() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = np.eye(3)[y] * 3 + rng.normal(scale=0.5, size=(90, 3))
    learner = TorchMLPLearner(3, seed=0, epochs=60).fit(x, y)
    assert (learner.predict_proba(x).argmax(axis=1) == y).mean() > 0.9
    mc = learner.mc_probs(x, samples=6)
    assert mc.shape == (6, 90, 3)
