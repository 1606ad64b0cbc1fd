"""Fixed-point encoding of float updates into the ring Z / 2**bits, with an explicit range.

A 32-bit ring is held in ``uint32`` arrays, any wider one in ``uint64``; numpy's wraparound is the ring
arithmetic, so no coordinate ever becomes a Python integer.

>>> from keelml.federated.secagg.config import SecAggConfig
>>> plan = SecAggConfig(clip_bound=10.0, precision_bits=8).plan(3)
>>> x = np.array([1.5, -2.25, 0.0])
>>> (plan.modulus_bits, encode(x, plan).dtype.name)
(32, 'uint32')
>>> decode(encode(x, plan) + encode(x, plan), plan).tolist()
[3.0, -4.5, 0.0]
>>> encode(np.array([0.5, 11.0]), plan)
Traceback (most recent call last):
...
keelml.federated.secagg.errors.UpdateOutOfRangeError: update leaves the fixed-point range [-10, 10]
  expected: every coordinate finite with |value| <= clip_bound = 10
  received: value 11 at index 1 (1 of 2 outside)
  fix: clip or rescale the update, or declare a wider range: SecAggConfig(clip_bound=16)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from keelml.federated.secagg.config import RoundPlan
from keelml.federated.secagg.errors import UpdateOutOfRangeError

U64 = npt.NDArray[np.uint64]
Ring: TypeAlias = npt.NDArray[np.unsignedinteger[Any]]  # uint32 for a 32-bit ring, else uint64


def ring_dtype(bits: int) -> np.dtype[Any]:
    """The unsigned integer type that holds Z / 2**bits with wraparound arithmetic."""
    return np.dtype(np.uint32) if bits <= 32 else np.dtype(np.uint64)


def ring_mask(bits: int) -> np.uint64:
    return np.uint64((1 << bits) - 1)


def reduce(values: Ring, bits: int) -> Ring:
    """``values mod 2**bits`` in place (a no-op when the dtype's width is the ring's)."""
    if bits < 8 * values.dtype.itemsize:
        values &= values.dtype.type((1 << bits) - 1)
    return values


def encode(update: npt.NDArray[np.floating], plan: RoundPlan) -> Ring:
    """round(x * 2**precision) as a two's-complement residue mod 2**bits; refuses out-of-range input."""
    return encode_parts([np.asarray(update).reshape(-1)], 1.0, plan)


def encode_parts(
    parts: Sequence[npt.NDArray[Any]],
    weight: float,
    plan: RoundPlan,
    *,
    append_weight: bool = False,
    out: Ring | None = None,
) -> Ring:
    """Encode ``concatenate([weight * p.ravel() for p in parts] (+ [weight]))`` in one pass.

    The parts are copied once into a float64 buffer, scaled, range-checked, rounded in place there and
    cast once to the ring's integer type. (A float32 part times a float64 factor into a float64 output
    takes numpy's buffered casting loop, several times slower than a copy and a float64 multiply.)
    """
    size = sum(int(p.size) for p in parts) + (1 if append_weight else 0)
    scaled = _scratch(size)
    start = 0
    for part in parts:
        stop = start + int(part.size)
        scaled[start:stop] = part.reshape(-1)
        start = stop
    if append_weight:
        scaled[-1] = 1.0
    # weight * x is rounded once, as in float64 FedAvg; the power-of-two scale is exact
    np.multiply(scaled, np.float64(weight) * np.float64(plan.scale), out=scaled)
    limit = plan.clip_bound * plan.scale
    if size and not (-limit <= scaled.min() and scaled.max() <= limit):  # NaN fails both comparisons
        _out_of_range(scaled / plan.scale, plan)
    np.rint(scaled, out=scaled)
    dtype = ring_dtype(plan.modulus_bits)
    if out is None:
        out = np.empty(size, dtype=dtype)
    elif out.shape != (size,) or out.dtype != dtype:
        raise ValueError(f"out must be a {dtype} vector of length {size}, got {out.dtype} {out.shape}")
    # |value| < 2**(bits - 1) / clients (checked by the plan): the signed cast is exact
    np.copyto(out.view(np.int32 if dtype == np.uint32 else np.int64), scaled, casting="unsafe")
    return reduce(out, plan.modulus_bits)


_local = threading.local()


def _scratch(size: int) -> npt.NDArray[np.float64]:
    """A reused per-thread float64 buffer: a fresh 800 kB array per update costs more in page faults
    than all the arithmetic done in it."""
    buffer: npt.NDArray[np.float64] | None = getattr(_local, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _local.buffer = np.empty(size, dtype=np.float64)
    return buffer[:size]


def _out_of_range(x: npt.NDArray[np.float64], plan: RoundPlan) -> None:
    bad = ~(np.abs(x) <= plan.clip_bound)  # also catches NaN and inf
    where = int(np.flatnonzero(bad)[0])
    largest = float(np.abs(x[bad & np.isfinite(x)]).max(initial=0.0))
    wider = f"SecAggConfig(clip_bound={2.0 ** math.ceil(math.log2(largest)):g})" if largest else "none"
    raise UpdateOutOfRangeError(
        f"update leaves the fixed-point range [-{plan.clip_bound:g}, {plan.clip_bound:g}]",
        expected=f"every coordinate finite with |value| <= clip_bound = {plan.clip_bound:g}",
        received=f"value {x[where]:g} at index {where} ({int(bad.sum())} of {x.size} outside)",
        fix=f"clip or rescale the update, or declare a wider range: {wider}",
    )


def decode(total: Ring, plan: RoundPlan) -> npt.NDArray[np.float64]:
    """Map a ring element back to a signed integer (centred lift) and divide by the scale."""
    bits = plan.modulus_bits
    values = np.asarray(total)
    signed: npt.NDArray[np.signedinteger[Any]]
    if bits == 32:
        signed = values.astype(np.uint32).view(np.int32)
    elif bits == 64:
        signed = values.astype(np.uint64).view(np.int64)
    else:
        values = values.astype(np.uint64) & ring_mask(bits)
        half = np.uint64(1 << (bits - 1))
        signed = values.astype(np.int64) - np.where(values >= half, np.int64(1 << bits), np.int64(0))
    return signed.astype(np.float64) / plan.scale
