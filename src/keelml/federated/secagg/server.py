"""The server side of SecAgg+: a state machine that emits requests and collects replies per phase.

The server only ever sees public keys, sealed shares (addressed to other clients), masked vectors and,
in the last phase, shares of exactly one secret per client: the self-mask seed of a client whose masked
input arrived, or the masking key of a client that vanished before sending it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from keelml.federated.secagg import crypto, shamir
from keelml.federated.secagg.client import pair_seed
from keelml.federated.secagg.config import RoundPlan, SecAggConfig
from keelml.federated.secagg.errors import MessageRejectedError, ThresholdNotMetError
from keelml.federated.secagg.fixedpoint import Ring, reduce, ring_dtype
from keelml.federated.secagg.graph import harary_graph
from keelml.federated.secagg.wire import SERVER, Message, Phase


class SecAggServer:
    """Runs one round for the given client ids; see :func:`keelml.federated.secagg.secure_sum`."""

    def __init__(self, config: SecAggConfig, clients: Sequence[int], round_id: bytes | None = None) -> None:
        if len(set(clients)) != len(clients) or any(not 0 <= c < SERVER for c in clients):
            raise ValueError("client ids must be distinct integers in [0, 2**64 - 1)")
        self.config = config
        self.plan: RoundPlan = config.plan(len(clients))
        self.round_id = round_id if round_id is not None else os.urandom(16)
        self.graph = harary_graph(list(clients), self.plan.neighbours)
        self.phase: Phase = Phase.ADVERTISE
        self.active: set[int] = set(clients)  # who the current phase is addressed to
        self.keys: dict[int, tuple[bytes, bytes]] = {}
        self.sealed: dict[int, dict[int, str]] = {}  # sender -> receiver -> sealed share (hex)
        self.shared: set[int] = set()  # U2: clients whose shares went out
        self.masked: set[int] = set()  # U3: clients whose masked input arrived
        self.total: Ring | None = None
        self.length: int | None = None
        self.b_shares: dict[int, dict[int, bytes]] = {}
        self.sk_shares: dict[int, dict[int, bytes]] = {}
        self.responders: set[int] = set()
        self.rejections: list[tuple[int, MessageRejectedError]] = []
        self.server_seconds: dict[Phase, float] = {}
        self._seen: set[int] = set()

    # -- requests -------------------------------------------------------------------------------

    def requests(self) -> dict[int, bytes]:
        """The message for every client addressed in the current phase."""
        started = time.perf_counter()
        out = {cid: self._request(cid).to_bytes() for cid in sorted(self.active)}
        self._clock(started)
        return out

    def _request(self, cid: int) -> Message:
        nbrs = self.graph[cid]
        if self.phase == Phase.ADVERTISE:
            body = {"plan": asdict(self.plan), "neighbours": sorted(nbrs)}
        elif self.phase == Phase.SHARE_KEYS:
            body = {
                "keys": {str(v): [self.keys[v][0].hex(), self.keys[v][1].hex()] for v in nbrs & self.active}
            }
        elif self.phase == Phase.MASKED_INPUT:
            body = {"sealed": {str(v): self.sealed[v][cid] for v in nbrs & self.shared}}
        else:
            body = {
                "survivors": sorted(nbrs & self.masked),
                "dropped": sorted((nbrs & self.shared) - self.masked),
            }
        return Message(self.phase, self.round_id, SERVER, cid, body)

    # -- replies --------------------------------------------------------------------------------

    def collect(self, replies: Mapping[int, bytes]) -> None:
        """Take this phase's replies (absent ones are dropouts), reject bad ones, move to the next phase."""
        started, phase = time.perf_counter(), self.phase
        for cid, data in replies.items():
            try:
                self.accept(cid, data)
            except MessageRejectedError as err:
                self.rejections.append((cid, err))
        try:
            self._advance()
        finally:
            self._clock(started, phase)

    def accept(self, cid: int, data: bytes) -> None:
        """Check and store one reply; raises :class:`MessageRejectedError` for a bad one."""
        if cid not in self.active:
            raise MessageRejectedError(
                f"reply from client {cid}, which this phase did not address",
                expected=f"a client among the {len(self.active)} addressed in phase {self.phase.name}",
                received=f"client {cid}",
                fix="drop the message: it is late, replayed or from a client that already dropped",
            )
        msg = Message.from_bytes(data)
        msg.expect(round_id=self.round_id, phase=self.phase, sender=cid, receiver=SERVER)
        if cid in self._seen:
            raise MessageRejectedError(
                f"second reply from client {cid} in phase {self.phase.name}",
                expected="exactly one reply per client and phase",
                received="a duplicate (replayed) message",
                fix="drop the duplicate",
            )
        try:
            self._store(cid, msg)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MessageRejectedError):
                raise
            raise MessageRejectedError(
                f"malformed {self.phase.name} reply from client {cid}",
                expected="the fields this phase defines",
                received=f"{type(exc).__name__}: {exc}",
                fix="check that server and clients run the same keelml version",
            ) from exc
        self._seen.add(cid)

    def _store(self, cid: int, msg: Message) -> None:
        if self.phase == Phase.ADVERTISE:
            c_pk, s_pk = bytes.fromhex(msg.body["c_pk"]), bytes.fromhex(msg.body["s_pk"])
            if len(c_pk) != crypto.KEY_BYTES or len(s_pk) != crypto.KEY_BYTES:
                raise ValueError("public keys must be 32 bytes")
            self.keys[cid] = (c_pk, s_pk)
        elif self.phase == Phase.SHARE_KEYS:
            sealed = {int(v): str(ct) for v, ct in msg.body["sealed"].items()}
            expected = self.graph[cid] & self.active
            if set(sealed) != expected:
                raise ValueError(f"sealed shares for {sorted(sealed)}, expected {sorted(expected)}")
            self.sealed[cid] = sealed
        elif self.phase == Phase.MASKED_INPUT:
            vector = np.frombuffer(msg.payload, dtype=ring_dtype(self.plan.modulus_bits).newbyteorder("<"))
            if self.length is None:
                self.length = vector.size
            if vector.size != self.length or msg.body.get("length") != vector.size:
                raise ValueError(f"masked vector of length {vector.size}, expected {self.length}")
            if self.total is None:
                self.total = vector.astype(ring_dtype(self.plan.modulus_bits))  # a native-order copy
            else:
                self.total += vector
        else:
            b = {int(v): bytes.fromhex(s) for v, s in msg.body["b"].items()}
            sk = {int(v): bytes.fromhex(s) for v, s in msg.body["sk"].items()}
            if not set(b) <= self.graph[cid] or not set(sk) <= self.graph[cid]:
                raise ValueError("shares for clients that are not this client's neighbours")
            for owner, share in b.items():
                self.b_shares.setdefault(owner, {})[cid + 1] = share
            for owner, share in sk.items():
                self.sk_shares.setdefault(owner, {})[cid + 1] = share

    def _advance(self) -> None:
        arrived, self._seen = self._seen, set()
        t = self.plan.threshold
        if self.phase == Phase.ADVERTISE:
            # A client with fewer than t live neighbours cannot share its secrets safely; dropping it now
            # costs nothing because nobody has masked against it yet.
            live = set(arrived)
            while short := {c for c in live if len(self.graph[c] & live) < t}:
                live -= short
            self._require(len(live), max(t, 3), "clients with enough live neighbours after key advertisement")
            self.active, self.phase = live, Phase.SHARE_KEYS
        elif self.phase == Phase.SHARE_KEYS:
            self.shared = set(arrived)
            for c in sorted(self.shared):
                self._require(
                    len(self.graph[c] & self.shared), t, f"neighbours of client {c} that shared keys"
                )
            self.active, self.phase = set(self.shared), Phase.MASKED_INPUT
        elif self.phase == Phase.MASKED_INPUT:
            self.masked = set(arrived)
            self._require(len(self.masked), max(t, 3), "clients whose masked input arrived")
            for c in sorted(self.shared):  # survivors need t share holders for b, dropped ones for s_sk
                self._require(len(self.graph[c] & self.masked), t, f"surviving neighbours of client {c}")
            self.active, self.phase = set(self.masked), Phase.UNMASK
        else:
            self.responders = set(arrived)
            self.active = set()

    def _require(self, have: int, need: int, what: str) -> None:
        if have < need:
            raise ThresholdNotMetError(
                f"secure aggregation round failed in phase {self.phase.name}: too few {what}",
                expected=f"at least {need} (threshold t = {self.plan.threshold}, k = {self.plan.neighbours})",
                received=str(have),
                fix="retry with more clients, or lower the threshold / raise neighbours in SecAggConfig",
            )

    # -- result ---------------------------------------------------------------------------------

    def unmask(self) -> Ring:
        """Remove every mask from the sum of masked inputs; needs the UNMASK replies collected."""
        if self.phase != Phase.UNMASK or self.active or self.total is None or self.length is None:
            raise RuntimeError("unmask() needs a round whose UNMASK replies were collected")
        started = time.perf_counter()
        bits, t = self.plan.modulus_bits, self.plan.threshold
        total = self.total
        for cid in sorted(self.masked):
            seed = shamir.combine(
                self._enough(self.b_shares.get(cid, {}), t, f"self-mask seed of client {cid}")
            )
            crypto.apply_mask(total, seed, subtract=True)
        for cid in sorted(self.shared - self.masked):
            secret = self._enough(self.sk_shares.get(cid, {}), t, f"masking key of dropped client {cid}")
            s_sk_bytes = shamir.combine(secret)
            s_sk = crypto.load_private(s_sk_bytes)
            if crypto.KeyPair.from_private(s_sk_bytes).public != self.keys[cid][1]:
                raise MessageRejectedError(
                    f"reconstructed masking key of client {cid} does not match its public key",
                    expected="shares that interpolate to the advertised key",
                    received="inconsistent shares",
                    fix="a neighbour returned a corrupt share; rerun the round",
                )
            for peer in sorted(self.graph[cid] & self.masked):
                seed = pair_seed(s_sk, self.keys[peer][1], self.round_id, cid, peer)
                crypto.apply_mask(total, seed, subtract=peer < cid)  # take back out what the peer put in
        reduce(total, bits)
        self.server_seconds[Phase.UNMASK] = self.server_seconds.get(Phase.UNMASK, 0.0) + (
            time.perf_counter() - started
        )
        return total

    def _enough(self, shares: dict[int, bytes], t: int, what: str) -> dict[int, bytes]:
        if len(shares) < t:
            raise ThresholdNotMetError(
                f"secure aggregation round failed: too few shares to reconstruct the {what}",
                expected=f"at least t = {t} shares from its neighbours",
                received=f"{len(shares)} (too many neighbours dropped after sending their masked input)",
                fix="retry the round, or lower the threshold / raise neighbours in SecAggConfig",
            )
        return dict(sorted(shares.items())[:t])

    def _clock(self, started: float, phase: Phase | None = None) -> None:
        phase = self.phase if phase is None else phase
        self.server_seconds[phase] = self.server_seconds.get(phase, 0.0) + time.perf_counter() - started
