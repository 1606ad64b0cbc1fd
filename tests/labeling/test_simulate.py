from __future__ import annotations

import numpy as np
import pytest

from keelml.labeling import SimulationConfig, simulate
from keelml.labeling.simulate import parse_steps


def _two_moons_ish(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    centers = np.array([[0, 0], [2.5, 0], [0, 2.5], [2.5, 2.5]])
    return centers[y] + rng.normal(scale=0.7, size=(n, 2)), y


def test_simulation_reports_curves_for_each_strategy_and_random(tmp_path) -> None:
    x, y = _two_moons_ish()
    config = SimulationConfig(steps=(8, 16, 32, 64, 128), strategies=("margin", "hybrid"), seeds=(0, 1))
    result = simulate(x, y, config)
    assert [c.strategy for c in result.curves] == ["random", "margin", "hybrid"]
    for curve in result.curves:
        assert curve.labels == (8, 16, 32, 64, 128)
        assert len(curve.accuracy) == 2 and all(len(a) == 5 for a in curve.accuracy)
        assert all(0.0 <= a <= 1.0 for a in curve.mean)
    # same warm start for every strategy of a seed
    assert result.curve("random").accuracy[0][0] == result.curve("margin").accuracy[0][0]
    assert result.pool_size == 450 and result.test_size == 150
    # on easy data margin ends at least as good as random
    assert result.curve("margin").mean[-1] >= result.curve("random").mean[-1] - 0.02
    data = result.to_json()
    assert {c["strategy"] for c in data["curves"]} == {"random", "margin", "hybrid"}
    path = result.plot(tmp_path / "curves.html")
    assert "plotly" in path.read_text()[:5000].lower()


def test_margin_needs_fewer_labels_than_random_on_a_hard_boundary() -> None:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    config = SimulationConfig(steps=tuple(range(20, 261, 40)), strategies=("margin",), seeds=(0,), target=0.9)
    result = simulate(x, y, config)
    margin, _, _ = result.curve("margin").needed()
    random, _, _ = result.curve("random").needed()
    assert margin is not None
    assert random is None or margin < random


def test_given_test_set_and_explicit_target() -> None:
    x, y = _two_moons_ish(400)
    config = SimulationConfig(steps=(10, 40), strategies=("entropy",), seeds=(3,), target=0.5)
    result = simulate(x[:300], y[:300], config, x_test=x[300:], y_test=y[300:])
    assert result.test_size == 100 and result.pool_size == 300
    assert result.targets == (0.5,)


def test_config_is_validated_on_construction(explains) -> None:
    with pytest.raises(ValueError) as info:
        SimulationConfig(steps=(10, 5))
    explains(info.value, "increasing")
    with pytest.raises(KeyError):
        SimulationConfig(steps=(10,), strategies=("nope",))
    with pytest.raises(ValueError, match="test_fraction"):
        SimulationConfig(steps=(10,), test_fraction=1.5)
    x, y = _two_moons_ish(100)
    with pytest.raises(ValueError) as too_big:
        simulate(x, y, SimulationConfig(steps=(10, 90)))
    explains(too_big.value, "larger than the pool", "75")


def test_parse_steps(explains) -> None:
    assert parse_steps("20:100:40") == (20, 60, 100)
    assert parse_steps("5,10") == (5, 10)
    with pytest.raises(ValueError) as info:
        parse_steps("a:b")
    explains(info.value, "budget steps")
