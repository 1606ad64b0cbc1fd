"""Shamir secret sharing of 32-byte secrets over the prime field GF(2**521 - 1).

A secret is the constant term of a random polynomial of degree t - 1; the share for participant
``x`` (a positive integer) is the polynomial at ``x``. Any t shares give the secret back by Lagrange
interpolation at 0; fewer reveal nothing.

>>> shares = split(b"s" * 32, threshold=3, xs=[1, 2, 3, 4, 5])
>>> combine({x: shares[x] for x in (2, 4, 5)}) == b"s" * 32
True
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

PRIME = 2**521 - 1  # a Mersenne prime, far above any 256-bit secret
SHARE_BYTES = 66
SECRET_BYTES = 32


def split(secret: bytes, threshold: int, xs: Sequence[int]) -> dict[int, bytes]:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secrets are {SECRET_BYTES} bytes, got {len(secret)}")
    if not 2 <= threshold <= len(xs):
        raise ValueError(f"threshold {threshold} needs 2 <= t <= {len(xs)} shares")
    coefficients = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares: dict[int, bytes] = {}
    for x in xs:
        if not 0 < x < PRIME:
            raise ValueError(f"share points must be positive, got {x}")
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y.to_bytes(SHARE_BYTES, "big")
    return shares


def combine(shares: Mapping[int, bytes]) -> bytes:
    """Lagrange interpolation at 0; the caller guarantees at least the threshold of shares."""
    points = [(x, int.from_bytes(y, "big")) for x, y in shares.items()]
    secret = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * xj % PRIME
                den = den * (xj - xi) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise ValueError("shares do not interpolate to a 32-byte secret (inconsistent shares)")
    return secret.to_bytes(SECRET_BYTES, "big")
