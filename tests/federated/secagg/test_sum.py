"""The aggregate equals the plain sum within the fixed-point error bound (property-based)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keelml.federated.secagg import (
    SecAggConfig,
    ThresholdNotMetError,
    UpdateOutOfRangeError,
    graph,
    secure_sum,
)

from .conftest import vectors


@st.composite
def rounds(draw: st.DrawFn) -> tuple[int, int, SecAggConfig, float, frozenset[int], frozenset[int]]:
    n = draw(st.integers(3, 16))
    d = draw(st.integers(1, 40))
    fraction = draw(st.sampled_from([0.0, 0.1, 0.3]))
    after = math.floor(fraction * n)
    before = draw(st.integers(0, 1)) if n >= 8 else 0
    drops = after + before
    full = draw(st.booleans())
    if full or n - 1 < drops + 2:
        k = n - 1
        config_kw: dict[str, object] = {"full_graph": True}
    else:  # an even k that keeps every neighbourhood at or above t whoever drops
        k = draw(st.sampled_from([v for v in range(2, n - 1) if v % 2 == 0 and v >= drops + 2] or [n - 1]))
        config_kw = {"neighbours": k} if k < n - 1 else {"full_graph": True}
    threshold = max(2, k - drops)
    if n - drops < max(threshold, 3):
        threshold, drops, after, before = 2, 0, 0, 0
    clients = draw(st.permutations(range(n)))
    dropped_after = frozenset(clients[:after])
    dropped_before = frozenset(clients[after : after + before])
    precision = draw(st.sampled_from([None, 16, 24, 32]))  # None: the default, as many bits as fit
    bound = draw(st.sampled_from([100.0, 1024.0]))  # 1024: the default range
    config = SecAggConfig(threshold=threshold, precision_bits=precision, clip_bound=bound, **config_kw)  # type: ignore[arg-type]
    seed = draw(st.integers(0, 2**16))
    return n, d, config, seed, dropped_after, dropped_before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_secure_sum_matches_plain_sum(
    case: tuple[int, int, SecAggConfig, float, frozenset[int], frozenset[int]],
) -> None:
    n, d, config, seed, after, before = case
    updates = vectors(n, d, seed=int(seed), scale=10.0)
    result = secure_sum(updates, config, dropped_after_masking=after, dropped_before_masking=before)
    kept = [i for i in range(n) if i not in before]
    exact = np.sum([updates[i] for i in kept], axis=0)
    assert result.survivors == tuple(kept)
    assert result.dropped == tuple(sorted(before))
    assert result.unmasked_via_shares == tuple(sorted(after))
    assert np.abs(result.total - exact).max() <= result.error_bound
    assert result.error_bound <= len(kept) * 0.5 / 2 ** config.plan(n).precision_bits + 1e-9


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3])
def test_default_sparse_graph_with_dropout_after_masking(
    fraction: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # k = 12, t = 4: a client survives losing up to 8 of its 12 neighbours. With 12 of 40 dropped, a random
    # ring still puts 9 dropped clients around someone in ~0.4 % of rounds (ring_failure_rate below), so
    # the ring is seeded here; the failure case has its own test.
    monkeypatch.setattr(graph, "_RING_RNG", random.Random(0))
    n, d = 40, 500
    updates = vectors(n, d, seed=1)
    after = set(range(0, n, max(1, round(1 / fraction)))) if fraction else set()
    after = set(list(after)[: math.floor(fraction * n)])
    config = SecAggConfig(threshold=4)
    result = secure_sum(updates, config, dropped_after_masking=after)
    assert result.neighbours == 12
    assert np.allclose(result.total, np.sum(updates, axis=0), atol=result.error_bound, rtol=0)
    assert set(result.unmasked_via_shares) == after


def ring_failure_rate(n: int, k: int, t: int, dropped: set[int], rounds: int) -> float:
    """Share of the rings drawn by graph._RING_RNG in which some client keeps < t surviving neighbours."""
    failed = 0
    for _ in range(rounds):
        g = graph.harary_graph(list(range(n)), k)
        failed += any(len(g[c] - dropped) < t for c in g)
    return failed / rounds


def test_thirty_percent_dropout_fails_rarely_and_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = set(range(0, 36, 3))  # 12 of 40
    monkeypatch.setattr(graph, "_RING_RNG", random.Random(1))
    assert 0.001 < ring_failure_rate(40, 12, 4, dropped, rounds=20_000) < 0.01
    # A ring with 11 dropped clients around client 4 (CI once drew one with 9) fails, and says so.
    near = [9, 12, 15, 18, 21, 24, 4, 0, 3, 6, 33, 36]
    monkeypatch.setattr(graph, "_RING_RNG", _FixedOrder([*near, *(c for c in range(40) if c not in near)]))
    with pytest.raises(ThresholdNotMetError, match="too few") as info:
        secure_sum(vectors(40, 8, seed=1), SecAggConfig(threshold=4), dropped_after_masking=dropped)
    assert "t = 4" in str(info.value) and info.value.fix


class _FixedOrder(random.Random):
    """A 'shuffle' that lays the ring out in a chosen order."""

    def __init__(self, order: list[int]) -> None:
        super().__init__(0)
        self.order = order

    def shuffle(self, x: list[int]) -> None:  # type: ignore[override]
        x[:] = self.order


def test_matrix_shaped_updates_keep_their_shape() -> None:
    rng = np.random.default_rng(3)
    updates = [rng.normal(size=(4, 5)).astype(np.float32) for _ in range(5)]
    result = secure_sum(updates, SecAggConfig())
    assert result.total.shape == (4, 5)
    exact = np.sum([u.astype(np.float64) for u in updates], axis=0)
    assert np.abs(result.total - exact).max() <= result.error_bound


def test_small_ring_wraps_correctly() -> None:
    updates = [np.array([-3.0, 2.5, 0.0]), np.array([-1.0, -2.5, 1.0]), np.array([0.5, 0.25, -7.0])]
    result = secure_sum(updates, SecAggConfig(modulus_bits=32, precision_bits=8, clip_bound=8.0))
    assert result.total.tolist() == [-3.5, 0.25, -6.0]


def test_too_many_dropouts_fail_with_a_clear_message() -> None:
    updates = vectors(6, 8)
    config = SecAggConfig(full_graph=True, threshold=4)  # k = 5: two lost neighbours leave 3 < t
    with pytest.raises(ThresholdNotMetError, match="too few") as info:
        secure_sum(updates, config, dropped_after_masking={0, 1})
    assert "t = 4" in str(info.value) and info.value.fix


def test_dropped_before_masking_below_threshold_fails() -> None:
    with pytest.raises(ThresholdNotMetError):
        secure_sum(vectors(5, 4), SecAggConfig(full_graph=True, threshold=4), dropped_before_masking={2})


def test_the_ring_is_the_smallest_that_holds_the_declared_range() -> None:
    from keelml.core.errors import ConfigError
    from keelml.federated.secagg import run_round
    from keelml.federated.secagg.wire import Message, Phase

    narrow = SecAggConfig(clip_bound=64.0, precision_bits=16)
    assert narrow.plan(200).modulus_bits == 32
    assert narrow.plan(600).modulus_bits == 64  # 600 * 64 * 2**16 no longer fits below 2**31
    assert SecAggConfig(clip_bound=2.0**20, precision_bits=24).plan(5).modulus_bits == 64
    with pytest.raises(ConfigError, match="wrap around"):
        SecAggConfig(modulus_bits=32, precision_bits=24).plan(5)
    updates = vectors(7, 33, seed=4, scale=10.0)
    payloads: list[int] = []

    def tap(phase: Phase, client: int, data: bytes) -> None:
        if phase == Phase.MASKED_INPUT:
            payloads.append(len(Message.from_bytes(data).payload))

    result = run_round(updates, narrow, drops={2: Phase.UNMASK, 5: Phase.MASKED_INPUT}, tap=tap)
    exact = np.sum([u for i, u in enumerate(updates) if i != 5], axis=0)
    assert np.abs(result.total - exact).max() <= result.error_bound
    assert payloads == [4 * 33] * 6  # uint32 words: half the bytes of the 64-bit ring


def test_default_range_takes_the_32_bit_ring_with_the_most_precision_that_fits() -> None:
    from keelml.core.errors import ConfigError
    from keelml.federated.secagg.config import MAX_AUTO_PRECISION, MIN_AUTO_PRECISION

    default = SecAggConfig()
    assert default.clip_bound == 1024.0 and default.precision_bits is None
    got = {n: (p.modulus_bits, p.precision_bits) for n in (3, 50, 200, 511, 512) for p in [default.plan(n)]}
    assert got == {3: (32, 19), 50: (32, 15), 200: (32, 13), 511: (32, 12), 512: (64, 24)}
    for n in range(3, 1100, 7):  # never wraps; never leaves a usable fractional bit unused
        plan = default.plan(n)
        span = n * (plan.clip_bound * 2**plan.precision_bits + 1)
        assert span < 2 ** (plan.modulus_bits - 1)
        if plan.modulus_bits == 32 and plan.precision_bits < MAX_AUTO_PRECISION:
            assert n * (plan.clip_bound * 2 ** (plan.precision_bits + 1) + 1) >= 2**31
        else:
            assert plan.modulus_bits == 64 or plan.precision_bits == MAX_AUTO_PRECISION
        assert plan.modulus_bits == 64 or plan.precision_bits >= MIN_AUTO_PRECISION
    assert SecAggConfig(modulus_bits=64).plan(50).precision_bits == MAX_AUTO_PRECISION
    with pytest.raises(ConfigError, match="wrap around") as info:
        SecAggConfig(modulus_bits=32).plan(600)  # 11 bits would fit: fewer than the 12 allowed
    assert "precision_bits=12" in str(info.value) and "modulus_bits" in info.value.fix
    # the extremes of the default range (40 clients: 15 fractional bits, the most that fit) do not wrap
    for sign in (1.0, -1.0):
        updates = [np.full(3, sign * 1024.0) for _ in range(40)]
        assert secure_sum(updates, default).total.tolist() == [sign * 40960.0] * 3
    with pytest.raises(UpdateOutOfRangeError, match="1024") as err:
        secure_sum([np.array([1.0, 1500.0])] * 3, default)
    assert "SecAggConfig(clip_bound=2048)" in err.value.fix


def test_encode_parts_is_encode_of_the_weighted_concatenation() -> None:
    from keelml.federated.secagg import UpdateOutOfRangeError
    from keelml.federated.secagg.fixedpoint import encode, encode_parts

    rng = np.random.default_rng(5)
    parts = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=5)]
    for config in (SecAggConfig(clip_bound=50.0, precision_bits=16), SecAggConfig(precision_bits=30)):
        plan = config.plan(4)
        flat = np.concatenate([3.5 * p.astype(np.float64).ravel() for p in parts] + [[3.5]])
        got = encode_parts(parts, 3.5, plan, append_weight=True)
        assert got.dtype == encode(flat, plan).dtype and np.array_equal(got, encode(flat, plan))
        out = np.zeros_like(got)
        assert encode_parts(parts, 3.5, plan, append_weight=True, out=out) is out
    bad = [np.array([1.0, np.nan])]
    with pytest.raises(UpdateOutOfRangeError, match="index 1"):
        encode_parts(bad, 1.0, SecAggConfig().plan(3))
    with pytest.raises(UpdateOutOfRangeError, match="value 60"):
        encode_parts([np.array([0.5, 20.0])], 3.0, SecAggConfig(clip_bound=50.0).plan(3))
