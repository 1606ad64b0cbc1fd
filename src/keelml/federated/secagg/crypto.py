"""Cryptographic primitives: X25519 + HKDF key agreement, ChaCha20-Poly1305, AES-256-CTR mask expansion.

Everything comes from the ``cryptography`` package (OpenSSL). Masks are an AES-256-CTR keystream keyed
by a 256-bit seed (with AES-NI about 15% faster than ChaCha20, and masks dominate a round's work), read
as little-endian words of the ring's width (uint32 for a 32-bit ring, else uint64): expanding 100k
coordinates costs about 0.1 ms.

>>> a, b = KeyPair.generate(), KeyPair.generate()
>>> agree(a.private, b.public, b"round", b"info") == agree(b.private, a.public, b"round", b"info")
True
>>> expand_mask(bytes(32), 4, 64).dtype, expand_mask(bytes(32), 4, 32).dtype
(dtype('uint64'), dtype('uint32'))
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keelml.federated.secagg.errors import MessageRejectedError
from keelml.federated.secagg.fixedpoint import Ring, reduce, ring_dtype

KEY_BYTES = 32
_COUNTER_ZERO = bytes(16)
NONCE_BYTES = 12
_RAW = serialization.Encoding.Raw
_PUBLIC_RAW = serialization.PublicFormat.Raw
_PRIVATE_RAW = serialization.PrivateFormat.Raw


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An X25519 key pair as raw 32-byte strings (what gets secret-shared and stored)."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        key = X25519PrivateKey.generate()
        private = key.private_bytes(_RAW, _PRIVATE_RAW, serialization.NoEncryption())
        return cls(private, key.public_key().public_bytes(_RAW, _PUBLIC_RAW))

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        key = X25519PrivateKey.from_private_bytes(private)
        return cls(private, key.public_key().public_bytes(_RAW, _PUBLIC_RAW))


PrivateKey = X25519PrivateKey


def load_private(private: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(private)


def agree(private: bytes | X25519PrivateKey, peer_public: bytes, salt: bytes, info: bytes) -> bytes:
    """X25519 shared secret passed through HKDF-SHA256 into a 256-bit key bound to ``salt`` and ``info``.

    ``private`` may be a loaded key, so that a loop over neighbours parses it once.
    """
    key = load_private(private) if isinstance(private, bytes) else private
    try:
        peer = X25519PublicKey.from_public_bytes(peer_public)
        shared = key.exchange(peer)
    except ValueError as exc:  # wrong length, or a low-order point giving an all-zero secret
        raise MessageRejectedError(
            "invalid X25519 public key",
            expected="a 32-byte X25519 public key that is not a low-order point",
            received=f"{len(peer_public)} bytes",
            fix="the peer's advertised key is corrupt; drop that client from the round",
        ) from exc
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(shared)


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """ChaCha20-Poly1305 with a random nonce, prepended to the ciphertext."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, associated)


def open_sealed(key: bytes, sealed: bytes, associated: bytes, what: str) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except (InvalidTag, ValueError) as exc:
        raise MessageRejectedError(
            f"{what} failed authentication",
            expected="a ciphertext sealed for this round, phase, sender and receiver",
            received=f"{len(sealed)} bytes that do not verify (tampered, replayed or misdirected)",
            fix="abort this client's participation; the server or network altered the message",
        ) from exc


def expand_mask(seed: bytes, length: int, bits: int) -> Ring:
    """``length`` uniform elements of Z / 2**bits from a 256-bit seed: an AES-256-CTR keystream.

    The initial counter block is zero: every seed keys exactly one stream, so a counter block never
    repeats under a key (a mask of 2**32 blocks would be 64 GiB).
    """
    out = np.zeros(length, dtype=ring_dtype(bits))
    apply_mask(out, seed)
    return reduce(out, bits)


def apply_mask(acc: Ring, seed: bytes, *, subtract: bool = False) -> None:
    """``acc += mask`` (or ``-=``) in place, with the wraparound of acc's dtype (uint32 or uint64).

    The mask is ``expand_mask(seed, acc.size, 8 * acc.itemsize)``. The keystream lands in a reused
    per-thread buffer: a fresh output per mask costs page faults that dominate the cipher on a busy
    machine. Masks reduced mod 2**bits later give the same sum, since 2**bits divides 2**64.
    """
    if len(seed) != KEY_BYTES:
        raise ValueError(f"mask seeds are {KEY_BYTES} bytes, got {len(seed)}")
    size = acc.nbytes
    scratch = getattr(_local, "scratch", None)
    if scratch is None or len(scratch) < size:
        scratch = _local.scratch = bytearray(size)
    encryptor = Cipher(algorithms.AES256(seed), modes.CTR(_COUNTER_ZERO)).encryptor()
    encryptor.update_into(_zeros(size), scratch)
    words = np.frombuffer(scratch, dtype=acc.dtype.newbyteorder("<"), count=acc.size)
    if subtract:
        np.subtract(acc, words, out=acc)
    else:
        np.add(acc, words, out=acc)


_local = threading.local()
_zero_pool = memoryview(b"")


def _zeros(size: int) -> memoryview:
    """A shared zero buffer to encrypt: a fresh one per mask costs about 5x the cipher itself."""
    global _zero_pool
    if len(_zero_pool) < size:
        _zero_pool = memoryview(bytes(size))
    return _zero_pool[:size]
