"""Property tests of the mergeable sketches behind profiles."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keelml.data.digest import column_hashes
from keelml.data.sketches import HyperLogLog, Moments, QuantileSummary, TopValues

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)
SLOW_PROPERTY = settings(max_examples=15, deadline=None, derandomize=True, database=None)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
float_lists = st.lists(finite, max_size=300)


def _moments(values: list[float]) -> Moments:
    if not values:
        return Moments.empty()
    x = np.asarray(values, dtype=np.float64)
    return Moments.of(len(x), float(x.mean()), float(x.var()), float(x.min()), float(x.max()))


def _roundtrip(data: object) -> object:
    return json.loads(json.dumps(data))


# -- Moments ------------------------------------------------------------------------------------


@PROPERTY
@given(float_lists, float_lists)
def test_moments_merge_equals_moments_of_the_concatenation(a: list[float], b: list[float]) -> None:
    merged = _moments(a).merge(_moments(b))
    whole = _moments(a + b)
    assert merged.count == whole.count == len(a) + len(b)
    assert merged.minimum == whole.minimum
    assert merged.maximum == whole.maximum
    scale = max([abs(v) for v in a + b], default=1.0) or 1.0
    assert math.isclose(merged.mean, whole.mean, rel_tol=1e-9, abs_tol=1e-9 * scale)
    assert math.isclose(merged.m2, whole.m2, rel_tol=1e-7, abs_tol=1e-7 * scale * scale * max(whole.count, 1))


@PROPERTY
@given(st.lists(float_lists, min_size=1, max_size=6))
def test_moments_merge_is_associative_enough_for_any_split(parts: list[list[float]]) -> None:
    left = Moments.empty()
    for part in parts:
        left = left.merge(_moments(part))
    whole = _moments([v for p in parts for v in p])
    assert left.count == whole.count
    if whole.count:
        scale = max(abs(whole.minimum), abs(whole.maximum)) or 1.0
        assert math.isclose(left.mean, whole.mean, rel_tol=1e-9, abs_tol=1e-9 * scale)
        assert math.isclose(left.std, whole.std, rel_tol=1e-6, abs_tol=1e-6 * scale)


def test_empty_moments_are_the_merge_identity() -> None:
    m = _moments([1.0, 2.0, 4.0])
    assert Moments.empty().merge(m) == m
    assert m.merge(Moments.empty()) == m
    assert math.isnan(Moments.empty().std)


@PROPERTY
@given(float_lists)
def test_moments_json_round_trip(values: list[float]) -> None:
    m = _moments(values)
    assert Moments.from_json(_roundtrip(m.to_json())) == m


# -- QuantileSummary ----------------------------------------------------------------------------


def _rank_error(summary: QuantileSummary, data: np.ndarray) -> float:
    """Worst distance between q and the rank interval of summary.quantile(q), over a grid of q."""
    x = np.sort(data)
    n = len(x)
    worst = 0.0
    for q in np.linspace(0.0, 1.0, 41):
        v = summary.quantile(float(q))
        lo = np.searchsorted(x, v, side="left") / n
        hi = np.searchsorted(x, v, side="right") / n
        worst = max(worst, lo - q, q - hi)
    return worst


# Values with many ties as well as spread-out ones.
sample = st.one_of(
    st.lists(finite, min_size=1, max_size=600),
    st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=600),
)
sizes = st.sampled_from([8, 20, 50])


@PROPERTY
@given(sample, sizes)
def test_quantile_rank_error_single_batch(values: list[float], size: int) -> None:
    data = np.asarray(values)
    summary = QuantileSummary.of(data, size=size)
    assert summary.count == len(values)
    # documented: rank error <= 1/(2m), plus one element of discreteness
    assert _rank_error(summary, data) <= 1 / (2 * size) + 1 / len(values) + 1e-12


@PROPERTY
@given(sample, sample, sample, sizes)
def test_quantile_rank_error_after_merging(a: list[float], b: list[float], c: list[float], size: int) -> None:
    sa, sb, sc = (QuantileSummary.of(np.asarray(v), size=size) for v in (a, b, c))
    one = sa.merge(sb)
    two = one.merge(sc)
    ab = np.asarray(a + b)
    abc = np.asarray(a + b + c)
    assert one.count == len(ab)
    assert two.count == len(abc)
    # documented: each merge level adds at most 1/m to the single-batch bound
    slack = 1 / min(len(a), len(b), len(c))
    assert _rank_error(one, ab) <= 1 / (2 * size) + 1 / size + slack + 1e-12
    assert _rank_error(two, abc) <= 1 / (2 * size) + 2 / size + slack + 1e-12


def test_quantiles_of_small_inputs_are_exact() -> None:
    data = np.asarray([5.0, 1.0, 3.0, 2.0, 4.0])
    summary = QuantileSummary.of(data, size=10)
    assert summary.quantile(0.0) == 1.0
    assert summary.quantile(0.5) == 3.0
    assert summary.quantile(1.0) == 5.0
    assert math.isnan(QuantileSummary.of(np.asarray([])).quantile(0.5))


@PROPERTY
@given(sample, sizes)
def test_quantile_json_round_trip(values: list[float], size: int) -> None:
    summary = QuantileSummary.of(np.asarray(values), size=size)
    assert QuantileSummary.from_json(_roundtrip(summary.to_json())) == summary


# -- HyperLogLog --------------------------------------------------------------------------------


@SLOW_PROPERTY
@given(st.integers(10_000, 100_000), st.integers(0, 2**32 - 1))
def test_hll_estimate_within_five_percent(distinct: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**62, distinct, dtype=np.int64)
    assume(len(np.unique(values)) == distinct)
    hashes = column_hashes(pa.table({"v": values}))["v"]  # the hashes profiles really use
    repeated = np.concatenate([hashes, hashes[: distinct // 2]])  # duplicates must not count
    estimate = HyperLogLog.of(repeated).estimate()
    assert abs(estimate - distinct) / distinct <= 0.05, (distinct, estimate)


uint64s = st.lists(st.integers(0, 2**64 - 1), max_size=400).map(lambda v: np.asarray(v, dtype=np.uint64))


@PROPERTY
@given(uint64s, uint64s)
def test_hll_merge_equals_sketch_of_the_union(a: np.ndarray, b: np.ndarray) -> None:
    merged = HyperLogLog.of(a).merge(HyperLogLog.of(b))
    assert merged == HyperLogLog.of(np.concatenate([a, b]))
    assert merged == HyperLogLog.of(b).merge(HyperLogLog.of(a))


@PROPERTY
@given(uint64s)
def test_hll_json_round_trip(hashes: np.ndarray) -> None:
    h = HyperLogLog.of(hashes)
    assert HyperLogLog.from_json(_roundtrip(h.to_json())) == h


def test_hll_small_counts_and_extreme_hashes() -> None:
    assert HyperLogLog.empty().estimate() == 0.0
    # one value per bucket (the top 12 bits), with the extreme ranks 53 (rest all zero) and 1
    extremes = np.asarray([0, 2**64 - 1, 2**63, (5 << 52) | 1, (7 << 52) | (2**52 - 1)], dtype=np.uint64)
    sketch = HyperLogLog.of(extremes)
    registers = np.frombuffer(sketch.registers, dtype=np.uint8)
    assert (registers[0], registers[4095], registers[2048], registers[5], registers[7]) == (53, 1, 53, 52, 1)
    assert np.count_nonzero(registers) == 5
    assert round(sketch.estimate()) == len(extremes)
    assert HyperLogLog.of(np.concatenate([extremes, extremes])) == sketch


# -- TopValues ----------------------------------------------------------------------------------

counts = st.dictionaries(st.text(min_size=1, max_size=4), st.integers(1, 1000), max_size=12)


@PROPERTY
@given(counts, counts)
def test_top_values_merge_is_exact_under_k(a: dict[str, int], b: dict[str, int]) -> None:
    k = 30  # two inputs of at most 12 distinct values each never exceed k
    merged = TopValues.of(a, k).merge(TopValues.of(b, k))
    assert dict(merged.counts) == dict(Counter(a) + Counter(b))
    assert merged.other == 0
    assert merged == TopValues.of(b, k).merge(TopValues.of(a, k))


@PROPERTY
@given(counts, counts, st.integers(1, 5))
def test_top_values_merge_over_k_keeps_the_total(a: dict[str, int], b: dict[str, int], k: int) -> None:
    merged = TopValues.of(a, k).merge(TopValues.of(b, k))
    assert len(merged.counts) <= k
    assert sum(c for _, c in merged.counts) + merged.other == sum(a.values()) + sum(b.values())
    ranked = [c for _, c in merged.counts]
    assert ranked == sorted(ranked, reverse=True)


@PROPERTY
@given(counts, st.integers(1, 20))
def test_top_values_json_round_trip(a: dict[str, int], k: int) -> None:
    top = TopValues.of(a, k)
    assert TopValues.from_json(_roundtrip(top.to_json())) == top


@pytest.mark.parametrize("sketch", [Moments.empty(), QuantileSummary.of(np.asarray([])), HyperLogLog.empty()])
def test_empty_sketches_round_trip(sketch: object) -> None:
    assert type(sketch).from_json(_roundtrip(sketch.to_json())) == sketch  # type: ignore[attr-defined]
