"""Privacy accounting for DP-SGD: the Poisson-subsampled Gaussian mechanism, composed over steps.

The numbers come from Google's dp-accounting (imported lazily): the privacy loss distribution (PLD)
accountant by default, the Renyi (RDP) accountant for comparison. The neighbouring relation is
add-or-remove-one record, which is what Poisson sampling in Opacus assumes.

>>> round(compute_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=1000, delta=1e-5), 2)
1.83
>>> round(noise_for_epsilon(target_epsilon=1.83, sample_rate=0.01, steps=1000, delta=1e-5), 2)
1.0
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from keelml.core.errors import InvalidInputError, missing_dependency

AccountantName = Literal["pld", "rdp"]
NEIGHBOURING = "add-or-remove-one record"
# Above this noise multiplier the noise drowns the clipped gradient of any realistic lot: calibration
# stops here and reports the smallest epsilon reachable instead of returning a useless model.
MAX_NOISE_MULTIPLIER = 100.0
MIN_NOISE_MULTIPLIER = 0.05
# The calibration search runs the PLD accountant on a 10x coarser grid: 10x faster, and a coarser grid
# only overestimates epsilon, so the noise it returns is never too small.
SEARCH_DISCRETIZATION = 1e-3


class UnreachableEpsilonError(InvalidInputError):
    """No noise multiplier within range reaches the target epsilon for this sample rate and step count."""


def _dp() -> Any:
    try:
        import dp_accounting  # type: ignore[import-untyped]  # no stubs upstream
    except ImportError as exc:  # pragma: no cover - the privacy extra is installed in CI
        raise missing_dependency("dp_accounting", "privacy", "privacy accounting") from exc
    return dp_accounting


def validate_mechanism(
    *, noise_multiplier: float | None = None, sample_rate: float, steps: int, delta: float
) -> None:
    """Refuse parameters the accountant cannot account for, with the fix."""
    if not 0 < sample_rate <= 1:
        raise InvalidInputError(
            "sample_rate must be in (0, 1]",
            expected="the expected lot size divided by the number of training records, e.g. 0.01",
            received=str(sample_rate),
            fix="pass --sample-rate BATCH/N",
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidInputError(
            "steps must be a positive integer",
            expected="the number of noisy gradient steps (epochs / sample_rate)",
            received=repr(steps),
            fix="pass --steps 1 or more",
        )
    if not 0 < delta < 1:
        raise InvalidInputError(
            "delta must be in (0, 1)",
            expected="a small probability, below 1/N for N records (e.g. 1e-5)",
            received=str(delta),
            fix="pass --delta 1e-5",
        )
    if noise_multiplier is not None and not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
        raise InvalidInputError(
            "noise_multiplier must be a positive number",
            expected="the Gaussian noise std divided by the clipping norm, e.g. 1.0",
            received=str(noise_multiplier),
            fix="pass --noise 1.0",
        )


def dp_sgd_event(noise_multiplier: float, sample_rate: float, steps: int) -> Any:
    """The dp-accounting event of ``steps`` Poisson-sampled Gaussian steps."""
    dp = _dp()
    step = dp.GaussianDpEvent(noise_multiplier)
    if sample_rate < 1:
        step = dp.PoissonSampledDpEvent(sample_rate, step)
    return dp.SelfComposedDpEvent(step, steps)


def make_accountant(accountant: AccountantName = "pld", discretization: float = 1e-4) -> Any:
    if accountant not in get_args(AccountantName):
        raise InvalidInputError(
            f"unknown accountant {accountant!r}",
            expected=" or ".join(get_args(AccountantName)),
            received=repr(accountant),
            fix="use --accountant pld (tight, default) or rdp (for comparison)",
        )
    if accountant == "pld":
        from dp_accounting.pld import pld_privacy_accountant  # type: ignore[import-untyped]

        return pld_privacy_accountant.PLDAccountant(value_discretization_interval=discretization)
    import logging

    from dp_accounting.rdp import rdp_privacy_accountant  # type: ignore[import-untyped]

    # orders that do not converge at tiny noise are dropped (and logged) by dp-accounting: not news
    logging.getLogger("absl").setLevel(logging.ERROR)
    return rdp_privacy_accountant.RdpAccountant()


def compute_epsilon(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: AccountantName = "pld",
) -> float:
    """Epsilon of DP-SGD with this noise multiplier, Poisson sample rate and step count, at ``delta``."""
    validate_mechanism(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta)
    return _epsilon(noise_multiplier, sample_rate, steps, delta, accountant)


def _epsilon(
    sigma: float, sample_rate: float, steps: int, delta: float, accountant: AccountantName, grid: float = 1e-4
) -> float:
    acc = make_accountant(accountant, grid)
    acc.compose(dp_sgd_event(sigma, sample_rate, steps))
    return float(acc.get_epsilon(delta))


def noise_for_epsilon(
    *,
    target_epsilon: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: AccountantName = "pld",
    max_noise_multiplier: float = MAX_NOISE_MULTIPLIER,
    tolerance: float = 1e-3,
) -> float:
    """The smallest noise multiplier whose epsilon is at most ``target_epsilon`` (binary search).

    Raises :class:`UnreachableEpsilonError` with the smallest reachable epsilon when even
    ``max_noise_multiplier`` does not reach the target.
    """
    validate_mechanism(sample_rate=sample_rate, steps=steps, delta=delta)
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise InvalidInputError(
            "target epsilon must be a positive number",
            expected="e.g. 1, 3 or 8",
            received=str(target_epsilon),
            fix="pass --dp-epsilon 3",
        )

    @functools.cache
    def eps(sigma: float, kind: AccountantName = accountant) -> float:
        grid = SEARCH_DISCRETIZATION if kind == "pld" else 1e-4
        return _epsilon(sigma, sample_rate, steps, delta, kind, grid)

    # RDP never reports a smaller epsilon than PLD, so an RDP pass settles reachability cheaply
    smallest = eps(max_noise_multiplier, "rdp")
    if smallest > target_epsilon and accountant == "pld":
        smallest = eps(max_noise_multiplier)
    if smallest > target_epsilon:
        epochs = steps * sample_rate
        raise UnreachableEpsilonError(
            f"epsilon {target_epsilon:g} cannot be reached with sample rate {sample_rate:g} over "
            f"{steps} steps (about {epochs:.3g} epochs) at delta {delta:g}",
            expected=f"a target of at least {smallest:.4g} (the epsilon at noise multiplier "
            f"{max_noise_multiplier:g}, beyond which the noise drowns the gradient)",
            received=f"target epsilon {target_epsilon:g}",
            fix=f"raise the target to {smallest:.3g} or more, train fewer epochs, use a smaller batch "
            "(lower sample rate), add data, or accept a larger delta",
        )
    if eps(MIN_NOISE_MULTIPLIER, "rdp") <= target_epsilon:  # RDP >= PLD: then PLD is below too
        return MIN_NOISE_MULTIPLIER
    # the RDP answer bounds the PLD one from above: bracket with the cheap RDP accountant, then refine
    rdp = _solve(
        lambda s: eps(s, "rdp"), target_epsilon, MIN_NOISE_MULTIPLIER, max_noise_multiplier, tolerance
    )
    if accountant == "rdp":
        return rdp
    coarse = _solve(eps, target_epsilon, *_bracket(eps, target_epsilon, rdp), tolerance)

    # the coarse grid overstates small epsilons by a few percent: finish on the accountant's own grid
    def fine(sigma: float) -> float:
        return _epsilon(sigma, sample_rate, steps, delta, "pld")

    return _solve(fine, target_epsilon, *_bracket(fine, target_epsilon, coarse, 0.97), max(tolerance, 5e-3))


def _bracket(eps: Any, target: float, high: float, shrink: float = 0.85) -> tuple[float, float]:
    """(low, high) with eps(low) > target >= eps(high), searching down from a valid ``high``."""
    low = high * shrink
    while low > MIN_NOISE_MULTIPLIER and eps(low) <= target:
        high, low = low, max(MIN_NOISE_MULTIPLIER, low * shrink * shrink)
    return max(low, MIN_NOISE_MULTIPLIER), high


def _solve(eps: Any, target: float, low: float, high: float, tolerance: float) -> float:
    """Smallest sigma in [low, high] with eps(sigma) <= target, to a relative tolerance.

    Epsilon falls monotonically as sigma grows, and log epsilon is close to linear in log sigma, so
    regula falsi (Illinois variant) on the logs needs a handful of accountant calls, not a dozen.
    """

    def f(sigma: float) -> float:
        value = eps(sigma)
        return math.log(value / target) if 0 < value < float("inf") else (50.0 if value > 0 else -50.0)

    f_low, f_high = f(low), f(high)
    side = 0
    while high - low > tolerance * high and f_high < -tolerance:
        x_low, x_high = math.log(low), math.log(high)
        x = x_high - f_high * (x_high - x_low) / (f_high - f_low)
        margin = 0.01 * (x_high - x_low)  # stay strictly inside the bracket
        mid = math.exp(min(max(x, x_low + margin), x_high - margin))
        f_mid = f(mid)
        if f_mid <= 0:
            high, f_high = mid, f_mid
            if side == -1:
                f_low /= 2
            side = -1
        else:
            low, f_low = mid, f_mid
            if side == 1:
                f_high /= 2
            side = 1
    return high


@dataclass(frozen=True, slots=True)
class GaussianSteps:
    """``steps`` Poisson-sampled Gaussian steps with one noise multiplier and sample rate."""

    noise_multiplier: float
    sample_rate: float
    steps: int

    def to_json(self) -> dict[str, Any]:
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
        }


class GaussianAccountant:
    """An accountant that composes DP-SGD phases (``step``) and answers ``epsilon(delta)``.

    State round-trips through :meth:`to_json` / :meth:`from_json`, so a resumed or federated run
    keeps accounting where it stopped.

    >>> acc = GaussianAccountant()
    >>> acc.step(noise_multiplier=1.0, sample_rate=0.01, steps=600)
    >>> acc.step(noise_multiplier=1.0, sample_rate=0.01, steps=400)
    >>> round(acc.epsilon(1e-5), 2), GaussianAccountant.from_json(acc.to_json()).history == acc.history
    (1.83, True)
    """

    def __init__(self, accountant: AccountantName = "pld") -> None:
        make_accountant(accountant)  # validates the name
        self.accountant: AccountantName = accountant
        self.history: list[GaussianSteps] = []

    def step(self, *, noise_multiplier: float, sample_rate: float, steps: int = 1) -> None:
        validate_mechanism(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=0.5)
        last = self.history[-1] if self.history else None
        if last and (last.noise_multiplier, last.sample_rate) == (noise_multiplier, sample_rate):
            self.history[-1] = GaussianSteps(noise_multiplier, sample_rate, last.steps + steps)
        else:
            self.history.append(GaussianSteps(noise_multiplier, sample_rate, steps))

    def epsilon(self, delta: float) -> float:
        if not self.history:
            return 0.0
        validate_mechanism(sample_rate=1.0, steps=1, delta=delta)
        acc = make_accountant(self.accountant)
        for phase in self.history:
            acc.compose(dp_sgd_event(phase.noise_multiplier, phase.sample_rate, phase.steps))
        return float(acc.get_epsilon(delta))

    def to_json(self) -> dict[str, Any]:
        return {"accountant": self.accountant, "history": [h.to_json() for h in self.history]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GaussianAccountant:
        acc = cls(data.get("accountant", "pld"))
        for item in data.get("history", []):
            acc.step(
                noise_multiplier=float(item["noise_multiplier"]),
                sample_rate=float(item["sample_rate"]),
                steps=int(item["steps"]),
            )
        return acc
