"""DP noise from a CSPRNG: its distribution, and that DP-SGD and client-level DP really draw from it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from keelml.core import securerandom
from keelml.core.securerandom import SOURCE, SecureGaussian
from keelml.train.config import TabularConfig, TextConfig
from keelml.train.private import NOISE_TORCH, PrivateTraining
from keelml.train.tabular import train_tabular
from tests.train.conftest import loans

FAST = {"epochs": 2, "batch_size": 32, "hidden": (16,), "dp_noise_multiplier": 1.0}
N = 200_000


@pytest.mark.parametrize("hardened", [True, False])
def test_samples_are_normal_with_the_asked_scale(hardened: bool) -> None:
    sigma = 2.5
    z = SecureGaussian(hardened=hardened, key=bytes(range(32))).normal(0.0, sigma, N)
    assert z.dtype == np.float64 and z.shape == (N,)
    assert abs(z.mean()) < 4 * sigma / np.sqrt(N)  # 4 standard errors
    assert z.var() == pytest.approx(sigma**2, rel=0.02)  # sd of the variance estimate: 0.3 %
    assert stats.kstest(z, "norm", args=(0.0, sigma)).pvalue > 1e-3
    # the test has power: 3 % too wide a scale, or a shifted mean, is rejected
    assert stats.kstest(z, "norm", args=(0.0, 1.03 * sigma)).pvalue < 1e-6
    assert stats.kstest(z, "norm", args=(0.05 * sigma, sigma)).pvalue < 1e-6
    # independence of neighbours (Box-Muller pairs and the four summed draws)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / np.sqrt(N)
    # tails as a normal's: |z| > 3 sigma happens 0.27 % of the time
    assert np.mean(np.abs(z) > 3 * sigma) == pytest.approx(0.0027, abs=0.0006)


def test_uniforms_are_in_the_half_open_unit_interval_and_uniform() -> None:
    u = SecureGaussian(key=bytes(32)).uniform(N)
    assert u.min() > 0 and u.max() <= 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_shape_loc_and_keys() -> None:
    a = SecureGaussian(key=b"k" * 32)
    assert a.normal(5.0, 1.0, (40, 30)).shape == (40, 30)
    assert a.normal(5.0, 1.0, 10_000).mean() == pytest.approx(5.0, abs=0.05)
    assert a.drawn == 1200 + 10_000
    same = SecureGaussian(key=b"k" * 32).normal(5.0, 1.0, (40, 30))
    assert np.array_equal(same, SecureGaussian(key=b"k" * 32).normal(5.0, 1.0, (40, 30)))
    # without a key every source is keyed afresh from os.urandom: no two runs share noise
    assert not np.array_equal(SecureGaussian().normal(size=8), SecureGaussian().normal(size=8))
    assert SecureGaussian().standard_normal(0).shape == (0,)


def reference(key: bytes, hardened: bool, n: int) -> Any:
    """The sampler written plainly (one keystream read, no buffers, numpy.sum): what the fast paths
    must reproduce for a single chunk."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    m = 4 * n if hardened else n
    half = (m + 1) // 2
    words = np.frombuffer(stream.update(bytes(16 * half)), dtype=np.uint64)
    u = ((words >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53
    radius = np.sqrt(-2.0 * np.log(u[:half]))
    z = np.concatenate((radius * np.cos(2.0 * np.pi * u[half:]), radius * np.sin(2.0 * np.pi * u[half:])))
    return z[:n] if not hardened else z.reshape(4, n).sum(axis=0) * 0.5


@pytest.mark.parametrize("hardened", [True, False])
def test_fast_paths_reproduce_the_plain_sampler(hardened: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    key = bytes(range(32))
    for n in (1, 7, 4_000):
        want = reference(key, hardened, n)
        assert np.array_equal(SecureGaussian(key=key, hardened=hardened).standard_normal(n), want)
        # torch's log / sin / cos may differ from numpy's in the last bits, not more
        got = SecureGaussian(key=key, hardened=hardened).normal_tensor(1.0, n, torch.float64)
        assert got.dtype == torch.float64 and np.allclose(got.numpy(), want, rtol=0, atol=1e-13)
    # across chunks: each chunk reads the keystream after the previous one, in both paths
    monkeypatch.setattr(securerandom, "CHUNK", 1_000)
    numpy_path = SecureGaussian(key=key, hardened=hardened)
    torch_path = SecureGaussian(key=key, hardened=hardened)
    a, b = numpy_path.normal(0.0, 3.0, 2_500), torch_path.normal_tensor(3.0, 2_500)
    assert b.dtype == torch.float32 and np.allclose(a, b.numpy(), rtol=1e-6, atol=1e-6)
    assert np.array_equal(a[:1_000], 3.0 * reference(key, hardened, 1_000))
    assert numpy_path.drawn == torch_path.drawn == 2_500
    assert len(set(np.round(a, 12))) == 2_500  # no chunk repeats another's keystream


def test_torch_path_leaves_torch_s_thread_count_as_it_was() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        SecureGaussian(key=bytes(32)).normal_tensor(1.0, 10)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_torch_path_is_normal_across_many_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(securerandom, "CHUNK", 999)
    z = SecureGaussian(key=bytes(32)).normal_tensor(2.0, N, None).double().numpy()
    assert stats.kstest(z, "norm", args=(0.0, 2.0)).pvalue > 1e-3
    assert stats.kstest(z, "norm", args=(0.0, 2.06)).pvalue < 1e-6  # power: 3 % too wide is rejected
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / np.sqrt(N)


class Recording(SecureGaussian):
    """A keyed source that records each request (size and scale), through either path."""

    def __init__(self, key: bytes = bytes(32)) -> None:
        super().__init__(key=key)
        self.calls: list[tuple[float, int]] = []

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = 1) -> Any:
        self.calls.append((scale, int(np.prod(size))))
        return super().normal(loc, scale, size)

    def normal_tensor(self, scale: float, n: int, dtype: Any = None) -> Any:
        self.calls.append((scale, n))
        return super().normal_tensor(scale, n, dtype)


class NumpyOnly:
    """A source with only numpy's ``normal`` (e.g. a numpy Generator): DP-SGD takes its float64 draws."""

    def __init__(self) -> None:
        self.rng, self.calls = np.random.default_rng(0), 0

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = 1) -> Any:
        self.calls += 1
        return self.rng.normal(loc, scale, size)


def test_a_numpy_source_still_works() -> None:
    source = NumpyOnly()
    result = _train(TabularConfig(**FAST), source)  # type: ignore[arg-type]
    assert source.calls >= result.privacy.steps - 3
    again = _train(TabularConfig(**FAST), NumpyOnly())  # type: ignore[arg-type]
    assert all(
        np.array_equal(a.detach().numpy(), b.detach().numpy())
        for a, b in zip(result.model.module.parameters(), again.model.module.parameters(), strict=True)
    )


def _train(config: TabularConfig, noise: Any = None) -> Any:
    from keelml import privacy

    return train_tabular(
        loans(300), config, label="label", exclude=["id"], private=PrivateTraining(privacy, noise=noise)
    )


def test_dp_sgd_draws_every_step_s_noise_from_the_given_source() -> None:
    source = Recording()
    result = _train(TabularConfig(**FAST), source)  # type: ignore[arg-type]
    report = result.privacy
    params = sum(p.numel() for p in result.model.module.parameters())
    assert source.calls, "the optimizer never drew from the noise source"
    assert {size for _, size in source.calls} == {params}  # one draw per step for all parameters
    assert all(scale == pytest.approx(1.0 * report.max_grad_norm) for scale, _ in source.calls)
    assert report.steps - 3 <= len(source.calls) <= report.steps  # Poisson may draw an empty lot
    assert report.noise_source == SOURCE
    # the noise decides the weights: the same key gives the same model, another key another one
    again = _train(TabularConfig(**FAST), Recording())  # type: ignore[arg-type]
    other = _train(TabularConfig(**FAST), Recording(key=b"x" * 32))  # type: ignore[arg-type]
    w = [p.detach().numpy() for p in result.model.module.parameters()]
    assert all(
        np.array_equal(a, b.detach().numpy()) for a, b in zip(w, again.model.module.parameters(), strict=True)
    )
    assert not all(
        np.allclose(a, b.detach().numpy()) for a, b in zip(w, other.model.module.parameters(), strict=True)
    )


def test_secure_noise_is_the_default_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Recording] = []

    def factory(**kw: Any) -> Recording:
        made.append(Recording())
        return made[-1]

    monkeypatch.setattr(securerandom, "SecureGaussian", factory)
    assert _train(TabularConfig(**FAST)).privacy.noise_source == SOURCE  # type: ignore[arg-type]
    assert len(made) == 1 and made[0].calls
    off = _train(TabularConfig(**FAST, dp_secure_noise=False))  # type: ignore[arg-type]
    assert off.privacy.noise_source == NOISE_TORCH and len(made) == 1
    # the default leaves config digests as they were; turning it off is recorded
    assert "dp_secure_noise" not in TabularConfig(**FAST).to_json()  # type: ignore[arg-type]
    assert TabularConfig(**FAST, dp_secure_noise=False).to_json()["dp_secure_noise"] is False  # type: ignore[arg-type]
    assert "dp_secure_noise" not in TextConfig(dp_epsilon=3.0).to_json()
    with pytest.raises(ValueError, match="dp_secure_noise must be true or false"):
        TabularConfig(**FAST, dp_secure_noise="yes")  # type: ignore[arg-type]
