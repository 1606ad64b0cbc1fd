"""The numeric quantile summary keeps its stated (deterministic) rank-error bound; Parquet/Arrow profiling."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keelml.core.errors import ColumnNotFoundError, EmptySourceError
from keelml.monitor import build_profile
from keelml.monitor.frame import Frame
from keelml.monitor.profile import profile_parquet, profile_partitions
from keelml.monitor.sketch import CategoricalSketch, NumericSketch


def _draw(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "ties":
        return rng.poisson(2.0, n).astype(float)
    if kind == "heavy":
        return rng.standard_cauchy(n)
    return rng.normal(size=n)


@pytest.mark.parametrize("kind", ["normal", "ties", "heavy"])
def test_merged_summary_error_stays_within_its_bound(kind: str) -> None:
    rng = np.random.default_rng(0)
    parts = [_draw(kind, rng, int(n)) for n in rng.integers(500, 20_000, 12)]
    parts[3][::50] = np.nan
    parts[5][:3] = [np.inf, -np.inf, np.nan]
    sketches = []
    for p in parts:
        s = NumericSketch.empty(k=200)  # small k: every partition is cut into blocks and merges regroup
        s.update(p)
        sketches.append(s)
    merged = sketches[0]
    for s in sketches[1:]:
        merged = merged.merge(s)
    every = np.concatenate(parts)
    finite = np.sort(every[np.isfinite(every)])
    assert merged.count == len(finite) and merged.missing == len(every) - len(finite)
    assert 0 < merged.rank_error < 0.02 and len(merged.items) <= 4 * 200
    points = np.unique(np.r_[finite[:: max(len(finite) // 3000, 1)], merged.items, finite[-1]])
    truth = np.searchsorted(finite, points, side="right") / len(finite)
    assert np.max(np.abs(merged.cdf_at(points) - truth)) <= merged.rank_error + 1e-12
    assert merged.mean == pytest.approx(finite.mean(), rel=1e-9)


def test_update_does_not_mutate_and_small_inputs_stay_exact() -> None:
    x = np.array([3.0, np.nan, 1.0, 2.0])
    before = x.copy()
    s = NumericSketch.empty()
    s.update(x)
    assert np.array_equal(x, before, equal_nan=True)
    assert s.rank_error == 0.0 and s.items.tolist() == [1.0, 2.0, 3.0] and s.quantile(0.5) == 2.0
    again = NumericSketch.from_json(s.to_json())
    assert again.items.tolist() == [1.0, 2.0, 3.0] and again.weights.tolist() == [1, 1, 1]


def test_profiles_stored_with_a_kll_sketch_still_load() -> None:
    from datasketches import kll_doubles_sketch  # type: ignore[import-untyped]

    kll = kll_doubles_sketch(200)
    kll.update(np.arange(10_000, dtype=float))
    old = {"kind": "numeric", "k": 200, "count": 10_000, "missing": 0, "mean": 4999.5, "m2": 1.0,
           "kll": base64.b64encode(bytes(kll.serialize())).decode("ascii")}  # fmt: skip
    s = NumericSketch.from_json(old)
    assert s.count == 10_000 and int(s.weights.sum()) == 10_000 and 0 < s.rank_error < 0.05
    assert abs(s.quantile(0.5) - 5000) < 10_000 * s.rank_error + 1


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    df = pd.DataFrame({"x": rng.normal(size=n), "i": rng.integers(0, 5, n), "c": rng.choice(list("abc"), n)})
    df.loc[::31, "x"] = np.nan
    df.loc[::17, "c"] = None
    return df


def test_parquet_and_arrow_profiles_match_the_pandas_one(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _frame(np.random.default_rng(1), 9_000)
    path = tmp_path / "ref.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=2_000)
    want = build_profile(Frame(df), sample_size=200, partition_rows=2_000)
    from_file = profile_parquet(path, sample_size=200)
    from_batches = profile_partitions(pq.ParquetFile(path).iter_batches(batch_size=2_000), sample_size=200)
    for got in (from_file, from_batches):
        assert got.rows == 9_000 and got.partitions == 5 and len(got.sample) == 200
        for n in ("x", "i"):
            a, b = got.columns[n], want.columns[n]
            assert isinstance(a, NumericSketch) and isinstance(b, NumericSketch)
            assert (a.count, a.missing) == (b.count, b.missing) and a.mean == pytest.approx(b.mean)
        c, wc = got.columns["c"], want.columns["c"]
        assert isinstance(c, CategoricalSketch) and isinstance(wc, CategoricalSketch)
        assert (c.counts, c.missing) == (wc.counts, wc.missing)
    # the file's string column is read dictionary-encoded; the profile is the plain read's, byte for byte
    assert from_file.sample["c"].dtype != "category"
    assert from_file.to_payload() == from_batches.to_payload()
    only = profile_parquet(path, columns=("x",), sample_size=50)
    assert list(only.columns) == ["x"] and list(only.sample.columns) == ["x", "__priority__"]


def test_profile_parquet_bad_input(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0]}), path)
    with pytest.raises(ColumnNotFoundError, match="not in"):
        profile_parquet(path, columns=("x", "nope"))
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), empty)
    with pytest.raises(EmptySourceError):
        profile_parquet(empty)
