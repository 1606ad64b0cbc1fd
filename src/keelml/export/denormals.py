"""Flush denormal floats to zero on the calling thread while a model runs (x86-64: MXCSR FTZ + DAZ).

Why: ONNX Runtime's CPU attention adds a large negative value to padded key positions before the
softmax; their probabilities underflow into denormal floats, and every later operation on a denormal
is slow on x86 cores. With 27 real tokens of 128, one 12-head attention core took 1.19 ms with
denormals and 0.35 ms flushed, and the fused int8 MiniLM 13.2 ms against 8.8 ms (Intel Xeon with AMX,
benchmarks/results/compress.md, session 9). Flushing changes only values below 1.2e-38, which the
softmax rounds to zero anyway.

ONNX Runtime's own switch (``session.set_denormal_as_zero``) covers its thread pool, and the thread
that creates the process's first session, for good; a single-threaded session computes in the thread
that calls ``run``, whichever it is. So :class:`flushed` sets the two MXCSR bits around one call and
restores the caller's state after it, and nothing else in the process sees a change.

There is no portable Python call for MXCSR: :func:`_mxcsr_functions` maps two tiny SysV x86-64
functions into executable memory with ``ctypes``. Elsewhere (ARM, Windows, a kernel that refuses
executable mappings) :data:`SUPPORTED` is False and :class:`flushed` does nothing.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import sys
from collections.abc import Callable
from types import TracebackType

FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)

# uint32 swap(uint32 bits): old = MXCSR; MXCSR |= bits; return old
_OR_BITS = bytes.fromhex("0FAE5C24F88B4424F8097C24F80FAE5424F8C3")
# void load(uint32 value): MXCSR = value
_LOAD = bytes.fromhex("897C24F80FAE5424F8C3")


_keep: list[mmap.mmap] = []  # the mapped pages, alive as long as the process


def _mxcsr_functions() -> tuple[Callable[[int], int], Callable[[int], None]] | None:
    """(or_bits, load) as ctypes functions, or None where they cannot run."""
    if platform.machine().lower() not in ("x86_64", "amd64") or sys.platform == "win32":
        return None  # the code is x86-64 System V (first argument in edi); Windows passes it in ecx
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError):  # e.g. SELinux execmem denied
        return None
    page.write(_OR_BITS + _LOAD)
    base = ctypes.addressof(ctypes.c_char.from_buffer(page))
    or_bits = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32)(base)
    load = ctypes.CFUNCTYPE(None, ctypes.c_uint32)(base + len(_OR_BITS))
    _keep.append(page)
    return or_bits, load


_FUNCTIONS = _mxcsr_functions()
SUPPORTED = _FUNCTIONS is not None


class flushed:
    """Within the block, denormal inputs read as zero and denormal results become zero (this thread).

    ``bits`` are the MXCSR bits set for the block (default flush-to-zero and denormals-are-zero); the
    caller's state is restored on leaving it, error or not.

    >>> import numpy as np
    >>> tiny = np.float32(1e-39)  # a denormal float32
    >>> with flushed():
    ...     inside = tiny * np.float32(1.0)
    >>> bool(inside == 0) == SUPPORTED, bool(tiny * np.float32(1.0) > 0)
    (True, True)
    """

    __slots__ = ("_bits", "_old")

    def __init__(self, bits: int = FTZ_DAZ) -> None:
        self._bits = bits
        self._old: int | None = None

    def __enter__(self) -> None:
        self._old = _FUNCTIONS[0](self._bits) if _FUNCTIONS is not None else None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if _FUNCTIONS is not None and self._old is not None:
            _FUNCTIONS[1](self._old)


def preserved() -> flushed:
    """Restores this thread's floating-point control state after the block, whatever the block set."""
    return flushed(0)
