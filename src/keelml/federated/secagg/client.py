"""The client side of SecAgg+: one object per client and round, driven by server messages.

The whole state round-trips through :meth:`SecAggClient.to_bytes`, so a Flower ClientApp that is
rebuilt for every message (as in simulation and deployment) keeps its keys and shares in the node's
context state between phases.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.federated.secagg import crypto, shamir
from keelml.federated.secagg.config import RoundPlan
from keelml.federated.secagg.errors import MessageRejectedError, ThresholdNotMetError
from keelml.federated.secagg.fixedpoint import Ring, encode, reduce, ring_dtype
from keelml.federated.secagg.wire import SERVER, Message, Phase

SHARE_INFO = b"keelml/secagg/v1/share-encryption"
PAIR_INFO = b"keelml/secagg/v1/pairwise-mask"


def share_associated_data(round_id: bytes, sender: int, receiver: int) -> bytes:
    """What a sealed share is bound to: this round, the share phase, its sender and its receiver."""
    return round_id + struct.pack("<BQQ", int(Phase.SHARE_KEYS), sender, receiver)


def pair_seed(
    private: bytes | crypto.PrivateKey, peer_public: bytes, round_id: bytes, a: int, b: int
) -> bytes:
    """The 256-bit seed of the pairwise mask between clients ``a`` and ``b`` (symmetric in a, b)."""
    low, high = min(a, b), max(a, b)
    return crypto.agree(private, peer_public, round_id, PAIR_INFO + struct.pack("<QQ", low, high))


@dataclass
class ClientState:
    cid: int
    round_id: bytes = b""
    next_phase: Phase | None = None  # None: idle, only a new ADVERTISE is accepted
    plan: dict[str, Any] = field(default_factory=dict)
    neighbours: list[int] = field(default_factory=list)
    c_sk: bytes = b""
    c_pk: bytes = b""
    s_sk: bytes = b""
    s_pk: bytes = b""
    self_seed: bytes = b""
    peer_keys: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # v -> (c_pk, s_pk)
    shares: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # v -> (b share, s_sk share)
    channel_keys: dict[int, bytes] = field(default_factory=dict)  # v -> AEAD key shared with v (local only)

    def to_bytes(self) -> bytes:
        """A compact binary form (length-prefixed fields): it is rewritten after every message."""
        out = [
            _STATE_HEADER.pack(_STATE_MAGIC, self.cid, 0 if self.next_phase is None else int(self.next_phase))
        ]
        blobs = [self.round_id, json.dumps(self.plan).encode(), self.c_sk, self.c_pk, self.s_sk, self.s_pk]
        out += [_blob(b) for b in (*blobs, self.self_seed)]
        out.append(struct.pack(f"<I{len(self.neighbours)}Q", len(self.neighbours), *self.neighbours))
        out.append(_pairs(self.peer_keys))
        out.append(_pairs(self.shares))
        out.append(_pairs({v: (k,) for v, k in self.channel_keys.items()}))
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> ClientState:
        magic, cid, phase = _STATE_HEADER.unpack_from(data)
        if magic != _STATE_MAGIC:
            raise ValueError(f"not a keelml SecAgg client state (magic {magic!r})")
        reader = _Reader(data, _STATE_HEADER.size)
        round_id, plan, c_sk, c_pk, s_sk, s_pk, seed = (reader.blob() for _ in range(7))
        (count,) = reader.unpack("<I")
        neighbours = list(reader.unpack(f"<{count}Q"))
        peer_keys, shares, channel = reader.pairs(), reader.pairs(), reader.pairs()
        return cls(
            cid=cid,
            round_id=round_id,
            next_phase=None if phase == 0 else Phase(phase),
            plan=json.loads(plan),
            neighbours=neighbours,
            c_sk=c_sk,
            c_pk=c_pk,
            s_sk=s_sk,
            s_pk=s_pk,
            self_seed=seed,
            peer_keys={v: (p[0], p[1]) for v, p in peer_keys.items()},
            shares={v: (p[0], p[1]) for v, p in shares.items()},
            channel_keys={v: p[0] for v, p in channel.items()},
        )


_STATE_MAGIC = b"KSC1"
_STATE_HEADER = struct.Struct("<4sQB")


def _blob(value: bytes) -> bytes:
    return struct.pack("<H", len(value)) + value


def _pairs(entries: Mapping[int, tuple[bytes, ...]]) -> bytes:
    """``{id: (bytes, ...)}`` with the same number of fields per id."""
    width = len(next(iter(entries.values()))) if entries else 0
    out = [struct.pack("<IB", len(entries), width)]
    for v, fields in entries.items():
        out.append(struct.pack("<Q", v))
        out += [_blob(f) for f in fields]
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data, self.offset = data, offset

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return values

    def blob(self) -> bytes:
        (size,) = self.unpack("<H")
        start, self.offset = self.offset, self.offset + size
        if self.offset > len(self.data):
            raise ValueError("truncated keelml SecAgg client state")
        return self.data[start : self.offset]

    def pairs(self) -> dict[int, tuple[bytes, ...]]:
        count, width = self.unpack("<IB")
        out = {}
        for _ in range(count):
            (v,) = self.unpack("<Q")
            out[v] = tuple(self.blob() for _ in range(width))
        return out


class SecAggClient:
    """Answers the four server messages of a round; refuses anything out of order."""

    def __init__(self, cid: int, state: ClientState | None = None) -> None:
        self.state = state if state is not None else ClientState(cid)

    def to_bytes(self) -> bytes:
        return self.state.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SecAggClient:
        state = ClientState.from_bytes(data)
        return cls(state.cid, state)

    @property
    def plan(self) -> RoundPlan:
        """The current round's plan (ring, fixed-point range); only valid once a round started."""
        return self._plan()

    @property
    def needs_update(self) -> bool:
        """Whether the next message is the one that asks for this client's (masked) update."""
        return self.state.next_phase == Phase.MASKED_INPUT

    def handle(
        self,
        data: bytes | Message,
        update: npt.NDArray[np.floating] | None = None,
        *,
        encoded: Ring | None = None,
    ) -> bytes:
        """Answer one server message. The MASKED_INPUT phase needs this client's ``update``, or the
        same already encoded for :attr:`plan` (``encoded``, e.g. from ``fixedpoint.encode_parts``;
        it is masked in place).
        """
        msg = data if isinstance(data, Message) else Message.from_bytes(data)
        st = self.state
        if msg.phase == Phase.ADVERTISE:  # a new round always starts here and discards the old one
            msg.expect(round_id=msg.round_id, phase=Phase.ADVERTISE, sender=SERVER, receiver=st.cid)
            reply = self._advertise(msg)
        else:
            if st.next_phase is None:
                raise MessageRejectedError(
                    "secure-aggregation message outside a round",
                    expected="an ADVERTISE message first",
                    received=f"phase {msg.phase.name} with no round in progress (replayed or late)",
                    fix="drop the message",
                )
            msg.expect(round_id=st.round_id, phase=st.next_phase, sender=SERVER, receiver=st.cid)
            if msg.phase == Phase.SHARE_KEYS:
                reply = self._share_keys(msg)
            elif msg.phase == Phase.MASKED_INPUT:
                if encoded is None:
                    if update is None:
                        raise ValueError("the MASKED_INPUT phase needs this client's update")
                    encoded = encode(update, self._plan())  # raises before anything is masked
                reply = self._masked_input(msg, encoded)
            else:
                reply = self._unmask(msg)
        return reply.to_bytes()

    # -- phases ---------------------------------------------------------------------------------

    def _reply(self, phase: Phase, body: dict[str, Any], payload: bytes | memoryview = b"") -> Message:
        return Message(phase, self.state.round_id, self.state.cid, SERVER, body, payload)

    def _plan(self) -> RoundPlan:
        return RoundPlan(**self.state.plan)

    def _advertise(self, msg: Message) -> Message:
        st = self.state
        neighbours = [int(v) for v in msg.body["neighbours"]]
        plan = RoundPlan(**msg.body["plan"])
        if st.cid in neighbours or len(set(neighbours)) != len(neighbours) or plan.threshold < 2:
            raise MessageRejectedError(
                "inconsistent round plan",
                expected="distinct neighbours other than this client and a threshold >= 2",
                received=f"neighbours={neighbours}, threshold={plan.threshold}",
                fix="check the server's configuration",
            )
        fresh = ClientState(st.cid, round_id=msg.round_id, next_phase=Phase.SHARE_KEYS)
        fresh.plan = msg.body["plan"]
        fresh.neighbours = neighbours
        c, s = crypto.KeyPair.generate(), crypto.KeyPair.generate()
        fresh.c_sk, fresh.c_pk, fresh.s_sk, fresh.s_pk = c.private, c.public, s.private, s.public
        self.state = fresh
        return self._reply(Phase.ADVERTISE, {"c_pk": c.public.hex(), "s_pk": s.public.hex()})

    def _share_keys(self, msg: Message) -> Message:
        st = self.state
        keys = {int(v): (bytes.fromhex(c), bytes.fromhex(s)) for v, (c, s) in msg.body["keys"].items()}
        if not set(keys) <= set(st.neighbours):
            raise MessageRejectedError(
                "public keys for clients that are not this client's neighbours",
                expected=f"a subset of {sorted(st.neighbours)}",
                received=str(sorted(set(keys) - set(st.neighbours))),
                fix="drop the message",
            )
        flat = [k for pair in keys.values() for k in pair] + [st.c_pk, st.s_pk]
        if len(set(flat)) != len(flat):
            raise MessageRejectedError(
                "repeated public keys",
                expected="distinct keys per client",
                received="a key seen twice",
                fix="drop the round",
            )
        plan = self._plan()
        _need(len(keys), plan.threshold, f"client {st.cid}: neighbours that advertised keys")
        st.peer_keys = keys
        st.self_seed = os.urandom(shamir.SECRET_BYTES)
        xs = [v + 1 for v in keys]  # share points must be non-zero
        b_shares = shamir.split(st.self_seed, plan.threshold, xs)
        sk_shares = shamir.split(st.s_sk, plan.threshold, xs)
        sealed = {}
        c_sk = crypto.load_private(st.c_sk)
        for v, (c_pk, _) in keys.items():
            key = st.channel_keys[v] = crypto.agree(c_sk, c_pk, st.round_id, SHARE_INFO)  # reused to open
            plaintext = b_shares[v + 1] + sk_shares[v + 1]
            sealed[str(v)] = crypto.seal(key, plaintext, share_associated_data(st.round_id, st.cid, v)).hex()
        st.next_phase = Phase.MASKED_INPUT
        return self._reply(Phase.SHARE_KEYS, {"sealed": sealed})

    def _masked_input(self, msg: Message, encoded: Ring) -> Message:
        st = self.state
        plan = self._plan()
        senders = {int(v): bytes.fromhex(ct) for v, ct in msg.body["sealed"].items()}
        unknown = set(senders) - set(st.peer_keys)
        if unknown:
            raise MessageRejectedError(
                "sealed shares from clients that never advertised keys to this client",
                expected=f"senders among {sorted(st.peer_keys)}",
                received=str(sorted(unknown)),
                fix="drop the message",
            )
        _need(len(senders), plan.threshold, f"client {st.cid}: neighbours that sent shares")
        if encoded.dtype != ring_dtype(plan.modulus_bits) or encoded.ndim != 1:
            raise ValueError(
                f"an encoded update must be a flat {ring_dtype(plan.modulus_bits)} vector, "
                f"got {encoded.dtype} with shape {encoded.shape}"
            )
        shares = {}
        s_sk = crypto.load_private(st.s_sk)
        for v, sealed in senders.items():
            key = st.channel_keys[v]
            plain = crypto.open_sealed(
                key, sealed, share_associated_data(st.round_id, v, st.cid), f"share from client {v}"
            )
            if len(plain) != 2 * shamir.SHARE_BYTES:
                raise MessageRejectedError("share of the wrong length", received=f"{len(plain)} bytes")
            shares[v] = (plain[: shamir.SHARE_BYTES], plain[shamir.SHARE_BYTES :])
        st.shares = shares
        masked = encoded
        crypto.apply_mask(masked, st.self_seed)
        for v in sorted(shares):
            seed = pair_seed(s_sk, st.peer_keys[v][1], st.round_id, st.cid, v)
            crypto.apply_mask(masked, seed, subtract=st.cid > v)  # the lower id adds, the higher subtracts
        reduce(masked, plan.modulus_bits)
        st.next_phase = Phase.UNMASK
        return self._reply(Phase.MASKED_INPUT, {"length": int(masked.size)}, _little_endian(masked))

    def _unmask(self, msg: Message) -> Message:
        st = self.state
        plan = self._plan()
        survivors = {int(v) for v in msg.body["survivors"]}
        dropped = {int(v) for v in msg.body["dropped"]}
        # The one rule that keeps an input secret: never reveal both the self-mask seed and the
        # masking key of the same client.
        if survivors & dropped or not (survivors | dropped) <= set(st.shares):
            raise MessageRejectedError(
                "inconsistent unmask request",
                expected="disjoint survivor and dropped sets, all among the neighbours that sent shares",
                received=f"survivors={sorted(survivors)}, dropped={sorted(dropped)}",
                fix="abort the round: answering could reveal a client's input",
            )
        _need(len(survivors), plan.threshold, f"client {st.cid}: surviving neighbours")
        st.next_phase = None  # answer once; a replayed unmask request is refused
        body = {
            "b": {str(v): st.shares[v][0].hex() for v in sorted(survivors)},
            "sk": {str(v): st.shares[v][1].hex() for v in sorted(dropped)},
        }
        st.shares, st.self_seed, st.s_sk, st.c_sk, st.channel_keys = {}, b"", b"", b"", {}
        return self._reply(Phase.UNMASK, body)


def _little_endian(vector: Ring) -> memoryview:
    """The vector's bytes without a copy (the message is assembled in one copy later)."""
    little = (
        vector
        if vector.dtype.byteorder in "<=" and np.little_endian
        else vector.astype(vector.dtype.newbyteorder("<"))
    )
    return np.ascontiguousarray(little).data.cast("B")


def _need(have: int, threshold: int, what: str) -> None:
    if have < threshold:
        raise ThresholdNotMetError(
            f"too few clients left to continue securely ({what})",
            expected=f"at least the reconstruction threshold t = {threshold}",
            received=str(have),
            fix="lower the threshold, raise the number of neighbours, or sample more reliable clients",
        )
