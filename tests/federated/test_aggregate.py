from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from keelml.core import securerandom
from keelml.federated.aggregate import (
    ServerOptimizer,
    clip,
    dp_noise,
    flatten,
    noise_source,
    robust_mean,
    unflatten,
)
from keelml.federated.client import ClientUpdate
from keelml.federated.config import FederatedConfig
from keelml.federated.rounds import aggregate_round


def _updates(vectors: list[list[float]], weights: list[float] | None = None) -> list[ClientUpdate]:
    weights = weights or [1.0] * len(vectors)
    return [
        ClientUpdate(f"c{i}", np.array(v, dtype=np.float64), w, 10, 0.5, float(np.linalg.norm(v)))
        for i, (v, w) in enumerate(zip(vectors, weights, strict=True))
    ]


def test_flatten_round_trips_shapes() -> None:
    weights = [np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32)]
    back = unflatten(flatten(weights), weights)
    assert [w.shape for w in back] == [(2, 3), (3,)]
    np.testing.assert_array_equal(back[1], weights[1])


def test_clip_bounds_the_norm_and_keeps_small_updates() -> None:
    big, norm = clip(np.array([30.0, 40.0]), 5.0)
    assert norm == 50.0 and np.linalg.norm(big) == np.float64(5.0)
    small, _ = clip(np.array([0.3, 0.4]), 5.0)
    np.testing.assert_array_equal(small, [0.3, 0.4])


def test_weighted_mean_is_fedavg() -> None:
    step = aggregate_round(
        _updates([[1.0], [4.0]], [1.0, 2.0]), FederatedConfig(clients=2), np.random.default_rng()
    )
    assert step.tolist() == [3.0]


def test_robust_aggregators_ignore_a_poisoned_client() -> None:
    honest = [[1.0, -1.0]] * 8 + [[1.2, -0.8]] * 2
    poisoned = _updates([*honest, [1e6, -1e6]])
    rng = np.random.default_rng(0)
    plain = aggregate_round(poisoned, FederatedConfig(clients=11), rng)
    assert abs(plain[0]) > 1e4
    for kind in ("median", "trimmed-mean"):
        step = aggregate_round(poisoned, FederatedConfig(clients=11, robust=kind, trim_fraction=0.1), rng)  # type: ignore[arg-type]
        assert np.allclose(step, [1.0, -1.0], atol=0.25), (kind, step)
    assert robust_mean(
        [np.array([1.0]), np.array([2.0]), np.array([9.0])], "trimmed-mean", 0.34
    ).tolist() == [2.0]


def test_client_dp_noise_has_the_calibrated_scale() -> None:
    config = FederatedConfig(clients=10, client_dp=(2.0, 0.5))
    noise = dp_noise(200_000, config, np.random.default_rng(1))
    assert abs(noise.std() - 1.0) < 0.01  # noise multiplier 0.5 * clip 2.0
    # DP weighs clients equally; the mean of 4 clipped updates plus noise/4
    step = aggregate_round(_updates([[1.0]] * 4, [1.0] * 4), config, np.random.default_rng(2))
    assert step.shape == (1,) and step[0] != 1.0


def test_fedadam_moves_by_about_the_server_learning_rate_per_coordinate() -> None:
    opt = ServerOptimizer(FederatedConfig(clients=2, strategy="fedadam", server_learning_rate=0.1))
    out = opt.step(np.zeros(3), np.array([0.5, -2.0, 1e-6]))
    assert np.allclose(
        np.abs(out[:2]), 0.1 * 0.1 / np.sqrt(0.01) / (1 + 1e-3 / np.abs([0.05, 0.2]) * 0), rtol=0.1
    )
    assert np.sign(out[1]) == -1
    fedavg = ServerOptimizer(FederatedConfig(clients=2))
    assert fedavg.step(np.ones(2), np.array([0.5, 0.5])).tolist() == [1.5, 1.5]


def test_client_dp_noise_comes_from_the_csprng_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = FederatedConfig(clients=10, client_dp=(2.0, 0.5))
    source = noise_source(config)
    assert isinstance(source, securerandom.SecureGaussian)
    # The unkeyed source is fresh from os.urandom, so its KS p-value is uniform and would fall below
    # 1e-3 in one run of 1,000; the distribution is checked on a keyed source of the same kind.
    source = securerandom.SecureGaussian(key=bytes(range(32)))
    noise = dp_noise(100_000, config, source)
    assert stats.kstest(noise, "norm", args=(0.0, 1.0)).pvalue > 1e-3 and source.drawn == 100_000
    seeded = FederatedConfig(clients=10, client_dp=(2.0, 0.5), secure_noise=False)
    assert isinstance(noise_source(seeded), np.random.Generator)
    assert isinstance(noise_source(FederatedConfig(clients=10)), np.random.Generator)  # no DP: no noise
    with pytest.raises(ValueError, match="secure_noise must be true or false"):
        FederatedConfig(clients=10, secure_noise=1)  # type: ignore[arg-type]
    # the in-process rounds draw the noise of every round from it
    drawn: list[int] = []

    class Counting(securerandom.SecureGaussian):
        def normal(self, loc: float = 0.0, scale: float = 1.0, size: object = 1) -> object:
            drawn.append(int(np.prod(size)))  # type: ignore[call-overload]
            return super().normal(loc, scale, size)  # type: ignore[arg-type]

    monkeypatch.setattr(securerandom, "SecureGaussian", Counting)
    from keelml.federated.inprocess import run_inprocess
    from tests.federated.conftest import customers, split

    clients, test = split(customers(), 4)
    run_inprocess(clients, FederatedConfig(clients=4, rounds=3, client_dp=(1.0, 0.3)), test=test)
    assert len(drawn) == 3 and len(set(drawn)) == 1
