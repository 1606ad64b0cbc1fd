from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keelml import Workspace
from keelml.augment import SYNTHETIC_COLUMN, AugmentConfig, GaussianCopula, TableSpec
from keelml.augment.metrics import quality


def correlated(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 2.0, rows)  # skewed: an empirical marginal must keep the skew
    b = -0.7 * a + rng.normal(0, 1, rows)
    group = np.where(a + rng.normal(0, 1, rows) > 4, "high", "low")
    return pd.DataFrame({"a": a, "b": b, "n": rng.poisson(a).astype(np.int64), "group": group})


SPEC = TableSpec(("a", "b", "n"), ("group",), ("n",))


def test_copula_keeps_marginals_and_correlations() -> None:
    real = correlated()
    model = GaussianCopula.fit(real, SPEC, seed=0)
    synthetic = model.sample(2000, seed=1)
    score = quality(real, synthetic, SPEC)
    assert score.shape_score > 0.93 and score.trend_score > 0.93, score
    assert synthetic["a"].min() >= real["a"].min() and synthetic["a"].max() <= real["a"].max()
    assert (synthetic["n"] == synthetic["n"].round()).all()
    assert np.corrcoef(synthetic["a"], synthetic["b"])[0, 1] < -0.6
    assert model.epsilon is None and model.rows == 600


def test_copula_samples_missing_values_at_their_rate() -> None:
    real = correlated()
    real.loc[real.index[::5], "b"] = np.nan
    real.loc[real.index[::10], "group"] = None
    synthetic = GaussianCopula.fit(real, SPEC, seed=0).sample(4000, seed=2)
    assert synthetic["b"].isna().mean() == pytest.approx(0.2, abs=0.03)
    assert synthetic["group"].isna().mean() == pytest.approx(0.1, abs=0.03)


def test_dp_fit_adds_noise_that_shrinks_with_epsilon() -> None:
    real = correlated(rows=2000)
    true = np.corrcoef(real["a"], real["b"])[0, 1]
    errors = {}
    for epsilon in (0.05, 20.0):
        runs = [GaussianCopula.fit(real, SPEC, seed=s, epsilon=epsilon) for s in range(5)]
        assert all(r.epsilon == epsilon for r in runs)
        errors[epsilon] = np.mean([abs(r.correlation[0, 1] - true) for r in runs])
        assert all(np.allclose(np.diag(r.correlation), 1.0) for r in runs)
        assert all(np.linalg.eigvalsh(r.correlation).min() > 0 for r in runs)
    assert errors[20.0] < 0.1 < errors[0.05]


def test_dp_copula_run_is_entered_in_the_privacy_ledger(aws: Workspace) -> None:
    result = aws.augment.run(
        "mixed@1", AugmentConfig(target="rare", method="copula", dp_epsilon=2.0, ratio=1.0)
    )
    assert result.epsilon == 2.0 and result.ledger
    entries = aws.privacy.entries("mixed")
    assert [(e.kind, e.epsilon, e.delta, e.dataset_version) for e in entries] == [("dp-synth", 2.0, 0.0, 1)]
    table = aws.datasets.read(result.ref)
    assert sum(table.column(SYNTHETIC_COLUMN).to_pylist()) == 30
    assert aws.augment.manifest(result.ref).epsilon == 2.0


def test_a_dp_fit_over_budget_is_refused_before_writing(tmp_path: object, aws: Workspace) -> None:
    from keelml.core.errors import KeelError

    (aws.root / "keel.toml").write_text(
        (aws.root / "keel.toml").read_text() + "\n[privacy.budget]\nmixed = { epsilon = 1.0, delta = 1e-5 }\n"
    )
    fresh = Workspace.open(aws.root)
    with pytest.raises(KeelError) as info:
        fresh.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", dp_epsilon=2.0))
    assert "budget" in str(info.value)
    assert len(fresh.datasets.log("mixed")) == 1 and fresh.privacy.entries("mixed") == []
