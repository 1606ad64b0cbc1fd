"""Every message the server receives in a round: no unmasked update, no individual seed or key."""

from __future__ import annotations

import numpy as np
import pytest

from keelml.federated.secagg import SecAggClient, SecAggConfig, run_round
from keelml.federated.secagg.fixedpoint import encode, ring_dtype
from keelml.federated.secagg.wire import Message, Phase

from .conftest import vectors


@pytest.mark.parametrize(
    ("ring", "range_kw"),
    [(32, {}), (64, {"clip_bound": 2.0**20, "precision_bits": 24})],  # the default range, the wide one
)
def test_server_never_sees_an_update_or_a_secret(ring: int, range_kw: dict[str, float]) -> None:
    n, d = 12, 4000
    updates = vectors(n, d, seed=7)
    config = SecAggConfig(neighbours=6, threshold=3, **range_kw)  # type: ignore[arg-type]
    assert config.plan(n).modulus_bits == ring
    clients = {c: SecAggClient(c) for c in range(n)}
    received: list[tuple[Phase, int, bytes]] = []
    secrets: dict[int, dict[str, bytes]] = {}

    def tap(phase: Phase, cid: int, data: bytes) -> None:
        received.append((phase, cid, data))
        if phase == Phase.MASKED_INPUT:  # the client's secrets exist now; record them to look for later
            st = clients[cid].state
            secrets[cid] = {"seed": st.self_seed, "s_sk": st.s_sk, "c_sk": st.c_sk}
            secrets[cid].update({f"shares-of-{v}": b + s for v, (b, s) in st.shares.items()})
            secrets[cid].update({f"channel-key-{v}": k for v, k in st.channel_keys.items()})

    dropped_before, dropped_after = {4}, {9}
    drops = {4: Phase.MASKED_INPUT, 9: Phase.UNMASK}
    result = run_round(updates, config, drops=drops, tap=tap, clients=clients)
    assert np.allclose(result.total, sum(u for i, u in enumerate(updates) if i != 4), atol=result.error_bound)
    assert {p for p, _, _ in received} == set(Phase) and len(
        received
    ) == 4 * n - 3  # 4 misses two phases, 9 one

    plan = config.plan(n)
    inputs = {c: encode(u, plan) for c, u in enumerate(updates)}
    revealed_b: set[int] = set()
    revealed_sk: set[int] = set()
    for phase, cid, data in received:
        msg = Message.from_bytes(data)
        assert msg.sender == cid
        if phase == Phase.MASKED_INPUT:
            masked = np.frombuffer(msg.payload, dtype=ring_dtype(ring).newbyteorder("<"))
            x = inputs[cid]
            assert masked.size == d and np.mean(masked == x) < 0.01
            # masked values are uniform in the ring: no linear trace of the input is left
            signed = x.view(np.int32 if ring == 32 else np.int64)
            corr = np.corrcoef(masked.astype(np.float64), signed.astype(np.float64))[0, 1]
            assert abs(corr) < 0.1
            for other in inputs.values():
                assert not np.array_equal(masked, other)
        if phase == Phase.UNMASK:
            revealed_b |= {int(v) for v in msg.body["b"]}
            revealed_sk |= {int(v) for v in msg.body["sk"]}
        # no client's private keys, self-mask seed, or anyone's shares of a surviving client's key
        for owner, found in secrets.items():
            for name, secret in found.items():
                if name.startswith("shares-of-"):
                    v = int(name.removeprefix("shares-of-"))
                    b_share, sk_share = secret[:66], secret[66:]
                    sensitive = [sk_share] if v not in dropped_before else [b_share]
                else:
                    sensitive = [secret]
                for s in sensitive:
                    assert s not in data and s.hex().encode() not in data, (phase, cid, owner, name)
    # the server learns the self-mask seed of survivors and the masking key of the dropped, never both
    assert revealed_b.isdisjoint(revealed_sk)
    assert revealed_sk == dropped_before
    assert revealed_b == set(range(n)) - dropped_before
    assert dropped_after <= set(result.unmasked_via_shares)
