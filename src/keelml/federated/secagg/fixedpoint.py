"""Fixed-point encoding of float updates into the ring Z / 2**bits, with an explicit range.

>>> from keelml.federated.secagg.config import SecAggConfig
>>> plan = SecAggConfig(clip_bound=10.0, precision_bits=8).plan(3)
>>> x = np.array([1.5, -2.25, 0.0])
>>> decode(encode(x, plan) + encode(x, plan), plan).tolist()
[3.0, -4.5, 0.0]
>>> encode(np.array([0.5, 11.0]), plan)
Traceback (most recent call last):
...
keelml.federated.secagg.errors.UpdateOutOfRangeError: update leaves the fixed-point range [-10, 10]
  expected: every coordinate finite with |value| <= clip_bound = 10
  received: value 11 at index 1 (1 of 2 outside)
  fix: clip or rescale the update before aggregation, or raise SecAggConfig(clip_bound=...)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from keelml.federated.secagg.config import RoundPlan
from keelml.federated.secagg.errors import UpdateOutOfRangeError

U64 = npt.NDArray[np.uint64]


def ring_mask(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1)


def encode(update: npt.NDArray[np.floating], plan: RoundPlan) -> U64:
    """round(x * 2**precision) as a two's-complement residue mod 2**bits; refuses out-of-range input."""
    x = np.asarray(update, dtype=np.float64).reshape(-1)
    bad = ~(np.abs(x) <= plan.clip_bound)  # also catches NaN and inf
    if bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise UpdateOutOfRangeError(
            f"update leaves the fixed-point range [-{plan.clip_bound:g}, {plan.clip_bound:g}]",
            expected=f"every coordinate finite with |value| <= clip_bound = {plan.clip_bound:g}",
            received=f"value {x[where]:g} at index {where} ({int(bad.sum())} of {x.size} outside)",
            fix="clip or rescale the update before aggregation, or raise SecAggConfig(clip_bound=...)",
        )
    encoded = np.rint(x * plan.scale).astype(np.int64).view(np.uint64)
    if plan.modulus_bits < 64:
        encoded &= ring_mask(plan.modulus_bits)
    return encoded


def decode(total: U64, plan: RoundPlan) -> npt.NDArray[np.float64]:
    """Map a ring element back to a signed integer (centred lift) and divide by the scale."""
    bits = plan.modulus_bits
    values = np.asarray(total, dtype=np.uint64)
    if bits < 64:
        values = values & ring_mask(bits)
        half = np.uint64(1 << (bits - 1))
        signed = values.astype(np.int64) - np.where(values >= half, np.int64(1 << bits), np.int64(0))
    else:
        signed = values.view(np.int64)
    return signed.astype(np.float64) / plan.scale
