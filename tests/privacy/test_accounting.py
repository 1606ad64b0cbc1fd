from __future__ import annotations

from collections.abc import Callable

import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from keelml.core.errors import InvalidInputError
from keelml.privacy import GaussianAccountant, UnreachableEpsilonError, compute_epsilon, noise_for_epsilon


def _direct(sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    acc = (
        pld_privacy_accountant.PLDAccountant()
        if accountant == "pld"
        else rdp_privacy_accountant.RdpAccountant()
    )
    return float(acc.compose(event).get_epsilon(delta))


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
@pytest.mark.parametrize(("sigma", "q", "steps"), [(4.0, 0.01, 10_000), (1.1, 256 / 60_000, 2_000)])
def test_epsilon_equals_dp_accounting(accountant: str, sigma: float, q: float, steps: int) -> None:
    ours = compute_epsilon(
        noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5, accountant=accountant
    )  # type: ignore[arg-type]
    assert ours == pytest.approx(_direct(sigma, q, steps, 1e-5, accountant), abs=1e-9)


def test_pld_is_tighter_than_rdp() -> None:
    args = {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 1000, "delta": 1e-5}
    assert compute_epsilon(**args) < compute_epsilon(**args, accountant="rdp")  # type: ignore[arg-type]


@pytest.mark.parametrize("target", [0.5, 1.5])
def test_noise_for_epsilon_round_trips(target: float) -> None:
    mech = {"sample_rate": 0.01, "steps": 1000, "delta": 1e-5}
    sigma = noise_for_epsilon(target_epsilon=target, **mech)  # type: ignore[arg-type]
    reached = compute_epsilon(noise_multiplier=sigma, **mech)  # type: ignore[arg-type]
    assert reached <= target  # never less private than asked
    assert reached == pytest.approx(target, rel=0.01)  # and not much more noise than needed
    assert compute_epsilon(noise_multiplier=sigma * 0.98, **mech) > target  # type: ignore[arg-type]


def test_unreachable_target_names_the_smallest_epsilon(explains: Callable[..., str]) -> None:
    # full-batch training for 100k steps: even noise multiplier 100 leaves epsilon above 0.01
    with pytest.raises(UnreachableEpsilonError) as info:
        noise_for_epsilon(target_epsilon=0.01, sample_rate=1.0, steps=100_000, delta=1e-5)
    text = explains(info.value, "cannot be reached", "at least", "fewer epochs")
    smallest = compute_epsilon(noise_multiplier=100.0, sample_rate=1.0, steps=100_000, delta=1e-5)
    assert f"{smallest:.4g}" in text


@pytest.mark.parametrize(
    "bad",
    [
        {"noise_multiplier": 0.0, "sample_rate": 0.01, "steps": 10, "delta": 1e-5},
        {"noise_multiplier": 1.0, "sample_rate": 1.5, "steps": 10, "delta": 1e-5},
        {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 0, "delta": 1e-5},
        {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 10, "delta": 1.0},
        {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 10, "delta": 1e-5, "accountant": "moments"},
    ],
)
def test_bad_parameters_are_refused(bad: dict[str, object], explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        compute_epsilon(**bad)  # type: ignore[arg-type]
    explains(info.value)


def test_accountant_composes_phases_and_round_trips() -> None:
    acc = GaussianAccountant()
    acc.step(noise_multiplier=2.0, sample_rate=0.01, steps=500)
    acc.step(noise_multiplier=3.0, sample_rate=0.02, steps=300)
    restored = GaussianAccountant.from_json(acc.to_json())
    assert restored.epsilon(1e-5) == acc.epsilon(1e-5)
    event = dp_accounting.ComposedDpEvent(
        [
            dp_accounting.SelfComposedDpEvent(
                dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(2.0)), 500
            ),
            dp_accounting.SelfComposedDpEvent(
                dp_accounting.PoissonSampledDpEvent(0.02, dp_accounting.GaussianDpEvent(3.0)), 300
            ),
        ]
    )
    direct = pld_privacy_accountant.PLDAccountant().compose(event).get_epsilon(1e-5)
    assert acc.epsilon(1e-5) == pytest.approx(direct, rel=1e-6)
    assert GaussianAccountant().epsilon(1e-5) == 0.0
