"""SecAgg+ configuration: frozen, validated on construction, resolved per round for n clients.

>>> plan = SecAggConfig().plan(50)
>>> (plan.neighbours, plan.threshold)
(12, 7)
>>> SecAggConfig(full_graph=True).plan(5).neighbours
4
>>> [(p.modulus_bits, p.precision_bits) for p in map(SecAggConfig().plan, (50, 200, 1000))]
[(32, 15), (32, 13), (64, 24)]
>>> SecAggConfig(clip_bound=2**20, precision_bits=24).plan(50).modulus_bits
64
>>> SecAggConfig(clip_bound=-1.0)
Traceback (most recent call last):
...
keelml.core.errors.ConfigError: clip_bound must be a positive finite number
  expected: a float > 0 (the largest |value| any coordinate of an update may take)
  received: -1.0
  fix: e.g. SecAggConfig(clip_bound=1e4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from keelml.core.errors import ConfigError

MIN_MODULUS_BITS = 32
MAX_MODULUS_BITS = 64
DEFAULT_CLIP_BOUND = 2.0**10
MIN_AUTO_PRECISION = 12  # the 32-bit ring is picked only while at least this many fractional bits fit
MAX_AUTO_PRECISION = 24  # a quantum of 6e-8: more precision than float32 updates carry


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """The parameters of one round once the number of clients is known."""

    clients: int
    neighbours: int  # k: every client shares with and masks against k others
    threshold: int  # t: shares needed to reconstruct a secret
    modulus_bits: int
    precision_bits: int
    clip_bound: float

    @property
    def scale(self) -> float:
        return float(2**self.precision_bits)

    def error_bound(self, summed: int, max_abs_total: float) -> float:
        """Largest |decoded - exact| per coordinate for a sum of ``summed`` updates.

        Each encoded coordinate is off by at most half a quantum; the final float conversion of an
        integer sum adds at most one float64 ulp of the total.
        """
        return summed * 0.5 / self.scale + max_abs_total * 2.0**-52


@dataclass(frozen=True, slots=True)
class SecAggConfig:
    """How a SecAgg+ round runs.

    ``neighbours=None`` picks k = 2 * ceil(log2 n) (even, so the Harary graph is k-regular), capped at
    n - 1; ``full_graph=True`` is classic SecAgg (every pair masks). ``threshold=None`` picks a majority
    of the neighbourhood, floor(k / 2) + 1. Updates are encoded as integers ``round(x * 2**precision_bits)``
    in the ring Z / 2**modulus_bits; any coordinate with |x| > ``clip_bound`` is an error, never clipped.

    The ring must hold the sum of n encoded updates: ``n * (clip_bound * 2**precision_bits + 1) <
    2**(modulus_bits - 1)``. With both left at None (the default) the 32-bit ring is used with as many
    fractional bits as fit, up to 24, while at least 12 fit (the default range +-1024: 15 bits at 50
    clients, 13 at 200, up to 511 clients); past that the 64-bit ring with 24 bits (twice the masking
    work and bytes). ``precision_bits=None`` with a fixed ``modulus_bits`` takes the most bits that fit
    that ring; a fixed ``precision_bits`` with ``modulus_bits=None`` takes the smallest ring that fits.
    The plan (ring and precision) is fixed by the server per round and sent to every client.
    Each of the four phases waits at most ``phase_timeout_s`` for replies; late clients count as dropped.
    """

    neighbours: int | None = None
    full_graph: bool = False
    threshold: int | None = None
    clip_bound: float = DEFAULT_CLIP_BOUND
    precision_bits: int | None = None
    modulus_bits: int | None = None
    phase_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.clip_bound) and self.clip_bound > 0):
            raise ConfigError(
                "clip_bound must be a positive finite number",
                expected="a float > 0 (the largest |value| any coordinate of an update may take)",
                received=repr(self.clip_bound),
                fix="e.g. SecAggConfig(clip_bound=1e4)",
            )
        if self.modulus_bits is not None and not MIN_MODULUS_BITS <= self.modulus_bits <= MAX_MODULUS_BITS:
            raise ConfigError(
                "modulus_bits out of range",
                expected=f"an integer in [{MIN_MODULUS_BITS}, {MAX_MODULUS_BITS}] (the ring is Z / 2**bits)",
                received=repr(self.modulus_bits),
                fix="leave modulus_bits=None: the smallest ring that fits the range is picked per round",
            )
        widest = MAX_MODULUS_BITS if self.modulus_bits is None else self.modulus_bits
        if self.precision_bits is not None and not 0 <= self.precision_bits < widest - 1:
            raise ConfigError(
                "precision_bits out of range",
                expected=f"an integer in [0, {widest - 2}]",
                received=repr(self.precision_bits),
                fix="e.g. precision_bits=24 (a quantum of 6e-8)",
            )
        if self.neighbours is not None and self.neighbours < 2:
            raise ConfigError(
                "neighbours must be at least 2",
                expected="an integer k >= 2, or None for 2 * ceil(log2 n)",
                received=repr(self.neighbours),
                fix="leave neighbours=None or pass full_graph=True",
            )
        if self.threshold is not None and self.threshold < 2:
            raise ConfigError(
                "threshold must be at least 2",
                expected="an integer t >= 2 (t = 1 would hand a secret to any single neighbour)",
                received=repr(self.threshold),
                fix="leave threshold=None for a majority of the neighbourhood",
            )
        if not (math.isfinite(self.phase_timeout_s) and self.phase_timeout_s > 0):
            raise ConfigError(
                "phase_timeout_s must be a positive number of seconds",
                expected="a float > 0",
                received=repr(self.phase_timeout_s),
                fix="e.g. phase_timeout_s=60",
            )

    def plan(self, clients: int) -> RoundPlan:
        """Resolve k and t for ``clients`` participants, checking that their sum cannot overflow."""
        if clients < 3:
            raise ConfigError(
                "secure aggregation needs at least 3 clients",
                expected="3 or more clients (with 2, each one learns the other's update from the sum)",
                received=str(clients),
                fix="sample more clients per round",
            )
        if self.full_graph:
            k = clients - 1
        elif self.neighbours is not None:
            k = min(self.neighbours, clients - 1)
        else:
            k = min(2 * math.ceil(math.log2(clients)), clients - 1)
        if k < clients - 1 and k % 2:
            k += 1  # the Harary graph is k-regular for even k; k = n - 1 is the full graph
        k = min(k, clients - 1)
        t = self.threshold if self.threshold is not None else k // 2 + 1
        if t > k:
            raise ConfigError(
                "threshold exceeds the number of neighbours",
                expected=f"threshold <= k = {k} for {clients} clients",
                received=str(t),
                fix="lower the threshold or raise neighbours (or use full_graph=True)",
            )
        bits, precision = self._ring(clients)
        return RoundPlan(clients, k, t, bits, precision, self.clip_bound)

    def _span(self, clients: int, precision: int) -> float:
        """The largest |sum| of ``clients`` encoded updates."""
        return clients * (self.clip_bound * 2.0**precision + 1)

    def _ring(self, clients: int) -> tuple[int, int]:
        """(modulus_bits, precision_bits) for this many clients; raises when the sum could wrap around."""
        bits, precision = self.modulus_bits, self.precision_bits
        if precision is None:
            rings = [bits] if bits is not None else [MIN_MODULUS_BITS, MAX_MODULUS_BITS]
            for ring in rings:
                limit = 2.0 ** (ring - 1)
                fitting = [p for p in range(MAX_AUTO_PRECISION + 1) if self._span(clients, p) < limit]
                if fitting and fitting[-1] >= MIN_AUTO_PRECISION:
                    return ring, fitting[-1]
            precision = MIN_AUTO_PRECISION  # nothing fits: report the coarsest automatic choice
            bits = rings[-1]
        elif bits is None:
            small = self._span(clients, precision) < 2.0 ** (MIN_MODULUS_BITS - 1)
            bits = MIN_MODULUS_BITS if small else MAX_MODULUS_BITS
        if self._span(clients, precision) >= 2.0 ** (bits - 1):
            raise ConfigError(
                "the fixed-point range is too wide for this many clients: the sum could wrap around",
                expected=f"clients * (clip_bound * 2**precision_bits + 1) < 2**{bits - 1}",
                received=f"{clients} clients, clip_bound={self.clip_bound:g}, precision_bits={precision}",
                fix="lower clip_bound or precision_bits, or raise modulus_bits (up to 64; None picks it)",
            )
        return bits, precision
