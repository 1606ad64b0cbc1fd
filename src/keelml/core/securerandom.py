"""Gaussian noise from a cryptographically secure source, for differential privacy.

A DP guarantee assumes the noise is unpredictable. NumPy's and torch's generators (PCG64, Mersenne
Twister, Philox) are not: their state can be recovered from outputs, and a seeded run is replayable,
so whoever knows the seed can subtract the noise. :class:`SecureGaussian` draws from an AES-256-CTR
keystream (the ``cryptography`` package; AES-NI makes it ~1 GB/s) keyed by ``os.urandom(32)``.

Uniforms take 53 keystream bits each, ``u = (k + 1) / 2**53`` in (0, 1], and the Box-Muller transform
in float64 turns pairs of them into independent standard normals (both outputs, cosine and sine, are
used). With ``hardened`` (the default) each sample is ``(z1 + z2 + z3 + z4) / 2`` of four such normals,
which is again N(0, 1): the defence of Holohan and Braghin (2021, arXiv:2107.10138, section 5.1)
against floating-point attacks on the Gaussian mechanism, and the procedure of Opacus' ``secure_mode``
(which needs torchcsprng, not available for current torch). Both numpy's ``Generator.normal(loc,
scale, size)`` and this class answer the same call, so the server-side noise of federated runs can use
either; :meth:`SecureGaussian.normal_tensor` returns the same samples as a torch tensor, with torch's
vectorised log / sin / cos doing the transform (DP-SGD's optimizer uses it).

Samples are made in chunks of at most ``CHUNK`` outputs: the keystream goes into one reused buffer
(no allocation per call), and memory stays bounded for models of any size.

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
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError, missing_dependency

SOURCE = "aes-256-ctr (os.urandom key), Box-Muller float64, sum of 4 / 2"
CHUNK = 1 << 18  # outputs per chunk: 4 normals each when hardened, so 8 MiB of keystream
_TWO_PI = 2.0 * math.pi
_SCALE = 2.0**-53
_BLOCK = 16  # AES block: CTR's update_into wants this much room beyond the input, minus one byte


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
        self._zeros = b""  # CTR encrypts zeros: its output is the bare keystream
        self._out = bytearray()
        self.hardened = hardened
        self.drawn = 0  # standard normals returned so far (tests check that the source is used)

    def uniform(self, n: int) -> npt.NDArray[np.float64]:
        """``n`` uniforms in (0, 1] on the 2**-53 grid (53 keystream bits each)."""
        with self._lock:
            nbytes = 8 * n
            if len(self._zeros) < nbytes:
                self._zeros, self._out = bytes(nbytes), bytearray(nbytes + _BLOCK)
            self._stream.update_into(memoryview(self._zeros)[:nbytes], self._out)
            words = np.frombuffer(self._out, dtype=np.uint64, count=n)
            # the top 53 bits; below 2**53 they convert exactly, and the signed conversion is the fast one
            k = (
                (words >> np.uint64(11)).view(np.int64).astype(np.float64)
            )  # a new array: the buffer is reused
        k += 1.0
        k *= _SCALE
        return k

    def _chunks(self, n: int, emit: Callable[[int, int, npt.NDArray[np.float64]], None]) -> None:
        """Call ``emit(start, stop, uniforms)`` per chunk, with the uniforms that chunk's outputs need."""
        per = 4 if self.hardened else 1
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            emit(start, stop, self.uniform(2 * ((per * (stop - start) + 1) // 2)))
        self.drawn += n

    def standard_normal(self, n: int) -> npt.NDArray[np.float64]:
        """``n`` independent N(0, 1) samples."""
        out = np.empty(max(n, 0), dtype=np.float64)

        def emit(start: int, stop: int, u: npt.NDArray[np.float64]) -> None:
            half = len(u) // 2
            radius = np.log(u[:half])
            radius *= -2.0
            np.sqrt(radius, out=radius)
            angle = u[half:]
            angle *= _TWO_PI
            z = np.empty((2, half), dtype=np.float64)  # both Box-Muller outputs: cosines, then sines
            np.cos(angle, out=z[0])
            np.sin(angle, out=z[1])
            z *= radius
            self._combine(z.reshape(-1), out[start:stop])

        self._chunks(n, emit)
        return out

    def _combine(self, z: Any, out: Any) -> None:
        """Plain: the first normals; hardened: (z1 + z2 + z3 + z4) / 2, summed in this order."""
        m = len(out)
        if not self.hardened:
            out[:] = z[:m]
            return
        out[:] = z[:m]
        out += z[m : 2 * m]
        out += z[2 * m : 3 * m]
        out += z[3 * m :]
        out *= 0.5

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

    def normal_tensor(self, scale: float, n: int, dtype: Any = None) -> Any:
        """``n`` samples of N(0, scale**2) as a 1-D torch tensor of ``dtype`` (default float32): the same
        keystream, uniforms and float64 Box-Muller as :meth:`normal`, with torch's vectorised log / sqrt /
        sin / cos (about twice numpy's speed per CPU second); cast at the end.

        The transform runs on the calling thread (torch's thread count is set to 1 for its duration and
        restored): on a shared 2-core machine two threads made it 4x slower, not faster, because a worker
        that waits at each op's barrier while the other is descheduled costs more than it brings."""
        import torch

        out = torch.empty(max(n, 0), dtype=dtype or torch.float32)
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)

        def emit(start: int, stop: int, u: npt.NDArray[np.float64]) -> None:
            t = torch.from_numpy(u)
            half = len(u) // 2
            radius = t[:half].log_().mul_(-2.0).sqrt_()
            angle = t[half:].mul_(_TWO_PI)
            z = torch.empty((2, half), dtype=torch.float64)
            torch.cos(angle, out=z[0])
            torch.sin(angle, out=z[1])
            z.mul_(radius)
            z = z.view(-1)
            chunk = torch.empty(stop - start, dtype=torch.float64)
            self._combine(z, chunk)
            if scale != 1.0:
                chunk.mul_(scale)
            out[start:stop].copy_(chunk)

        try:
            self._chunks(n, emit)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        return out
