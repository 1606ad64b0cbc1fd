"""Gaussian noise from a cryptographically secure source, for differential privacy.

A DP guarantee assumes the noise is unpredictable. NumPy's and torch's generators (PCG64, Mersenne
Twister, Philox) are not: their state can be recovered from outputs, and a seeded run is replayable,
so whoever knows the seed can subtract the noise. :class:`SecureGaussian` draws from an AES-256-CTR
keystream (the ``cryptography`` package; AES-NI makes it ~1 GB/s) keyed by ``os.urandom(32)``.

Uniforms take 53 keystream bits each, ``u = (k + 1) / 2**53`` in (0, 1], and the Box-Muller transform
in float64 turns pairs of them into independent standard normals. With ``hardened`` (the default) each
sample is ``(z1 + z2 + z3 + z4) / 2`` of four such normals, which is again N(0, 1): the defence of
Holohan and Braghin (2021, arXiv:2107.10138, section 5.1) against floating-point attacks on the
Gaussian mechanism, and the procedure of Opacus' ``secure_mode`` (which needs torchcsprng, not
available for current torch). Both numpy's ``Generator.normal(loc, scale, size)`` and this class
answer the same call, so the server-side noise of federated runs can use either.

>>> g = SecureGaussian(key=bytes(32))  # a fixed key only for tests: real runs never pass one
>>> g.normal(0.0, 2.0, 3).shape
(3,)
>>> SecureGaussian(key=b"short")
Traceback (most recent call last):
...
keelml.core.errors.InvalidInputError: a SecureGaussian key must be 32 bytes
  expected: 32 random bytes (AES-256), or no key (os.urandom(32) is used)
  received: 5 bytes
  fix: leave key out; pass one only to make a test reproducible
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError, missing_dependency

SOURCE = "aes-256-ctr (os.urandom key), Box-Muller float64, sum of 4 / 2"
_TWO_PI = 2.0 * math.pi
_SCALE = 2.0**-53


class SecureGaussian:
    """Normal samples from an AES-256-CTR keystream; ``normal(loc, scale, size)`` like numpy's."""

    def __init__(self, *, hardened: bool = True, key: bytes | None = None) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        except ImportError as exc:  # the privacy and federated extras both install it
            raise missing_dependency("cryptography", "privacy", "secure DP noise") from exc
        if key is not None and len(key) != 32:
            raise InvalidInputError(
                "a SecureGaussian key must be 32 bytes",
                expected="32 random bytes (AES-256), or no key (os.urandom(32) is used)",
                received=f"{len(key)} bytes",
                fix="leave key out; pass one only to make a test reproducible",
            )
        cipher = Cipher(algorithms.AES(key or os.urandom(32)), modes.CTR(bytes(16)))
        self._stream: Any = cipher.encryptor()
        self._lock = threading.Lock()
        self.hardened = hardened
        self.drawn = 0  # standard normals returned so far (tests check that the source is used)

    def _words(self, n: int) -> npt.NDArray[np.uint64]:
        with self._lock:
            raw = self._stream.update(bytes(8 * n))
        return np.frombuffer(raw, dtype=np.uint64)

    def uniform(self, n: int) -> npt.NDArray[np.float64]:
        """``n`` uniforms in (0, 1] on the 2**-53 grid (53 keystream bits each)."""
        k = (self._words(n) >> np.uint64(11)).astype(np.float64)
        k += 1.0
        k *= _SCALE
        return k

    def _box_muller(self, n: int) -> npt.NDArray[np.float64]:
        half = (n + 1) // 2
        u = self.uniform(2 * half)
        radius = np.sqrt(-2.0 * np.log(u[:half]))
        angle = u[half:]
        angle *= _TWO_PI
        out = np.empty(2 * half, dtype=np.float64)
        np.multiply(radius, np.cos(angle), out=out[:half])
        np.multiply(radius, np.sin(angle), out=out[half:])
        return out[:n]

    def standard_normal(self, n: int) -> npt.NDArray[np.float64]:
        """``n`` independent N(0, 1) samples."""
        if n <= 0:
            return np.zeros(0, dtype=np.float64)
        if not self.hardened:
            z = self._box_muller(n)
        else:
            z = self._box_muller(4 * n).reshape(4, n).sum(axis=0)
            z *= 0.5
        self.drawn += n
        return z

    def normal(
        self, loc: float = 0.0, scale: float = 1.0, size: int | tuple[int, ...] = 1
    ) -> npt.NDArray[np.float64]:
        """Samples of N(loc, scale**2) with shape ``size`` (numpy's ``Generator.normal`` signature)."""
        shape = (size,) if isinstance(size, int) else tuple(size)
        n = int(np.prod(shape, dtype=np.int64))
        z = self.standard_normal(n)
        if scale != 1.0:
            z *= scale
        if loc != 0.0:
            z += loc
        return z.reshape(shape)
