"""DP-SGD through training: calibration, the ledger, refusal before training, incompatible layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError
from keelml.privacy import PrivacyBudgetExceededError, compute_epsilon
from keelml.train.config import TabularConfig, TextConfig
from keelml.train.private import IncompatibleLayerError, PrivateTraining, check_compatible
from keelml.train.tabular import TabularClassifier, train_tabular
from tests.train.conftest import loans

FAST = {"epochs": 2, "batch_size": 32, "hidden": (16,)}


@pytest.fixture
def dws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    with (ws.root / "keel.toml").open("a") as fh:
        fh.write("\n[privacy.budget]\nloans = { epsilon = 5.0, delta = 1e-4 }\n")
    ws = Workspace.open(ws.root)
    ws.datasets.add("loans", loans(400), label="label", id="id")
    return ws


def test_private_tabular_run_calibrates_records_and_reloads(dws: Workspace) -> None:
    trained = dws.training.tabular("loans", TabularConfig(dp_epsilon=3.0, **FAST))  # type: ignore[arg-type]
    report = trained.result.privacy
    assert report is not None and report.target_epsilon == 3.0
    assert 2.9 < report.epsilon <= 3.0  # calibrated, never above the target
    assert report.sample_rate == pytest.approx(1 / 9) and report.steps == 18  # 280 rows, lots of 32
    assert report.epsilon == pytest.approx(
        compute_epsilon(
            noise_multiplier=report.noise_multiplier,
            sample_rate=report.sample_rate,
            steps=report.steps,
            delta=1e-5,
        )
    )
    assert trained.metrics()["privacy_epsilon"] == report.epsilon
    assert len(trained.result.history.epochs) == 2  # no early stopping on validation rows
    (entry,) = dws.privacy.entries("loans")
    assert entry.kind == "dp-train" and entry.epsilon == report.epsilon and entry.dataset_version == 1
    assert entry.details["mechanism"]["steps"] == 18
    assert dws.privacy.remaining("loans").remaining_epsilon == pytest.approx(5.0 - report.epsilon)
    model = TabularClassifier.from_bytes(dws.artifacts.read_bytes(trained.artifact))
    assert len(model.predict(loans(5))) == 5
    assert not any(hasattr(p, "grad_sample") and p.grad_sample is not None for p in model.module.parameters())


def test_over_budget_run_is_refused_before_training(dws: Workspace, explains: Callable[..., str]) -> None:
    dws.privacy.spend("loans", epsilon=4.0, delta=1e-6, kind="dp-synth")
    with pytest.raises(PrivacyBudgetExceededError) as info:
        dws.training.tabular("loans", TabularConfig(dp_epsilon=3.0, **FAST))  # type: ignore[arg-type]
    explains(info.value, "remaining budget: epsilon 1")
    assert len(dws.privacy.entries("loans")) == 1


def test_noise_multiplier_reports_the_epsilon_reached(dws: Workspace) -> None:
    config = TabularConfig(dp_noise_multiplier=2.0, model="logreg", **FAST)  # type: ignore[arg-type]
    report = dws.training.tabular("loans", config).result.privacy
    assert report is not None and report.noise_multiplier == 2.0 and report.target_epsilon is None
    assert report.epsilon == pytest.approx(
        compute_epsilon(noise_multiplier=2.0, sample_rate=1 / 9, steps=18, delta=1e-5)
    )


def test_hooks_mode_and_virtual_batches(dws: Workspace) -> None:
    config = TabularConfig(dp_noise_multiplier=1.0, dp_clipping="hooks", dp_physical_batch=8, **FAST)  # type: ignore[arg-type]
    result = dws.training.tabular("loans", config).result
    assert result.privacy is not None and result.privacy.clipping == "hooks"
    assert result.evaluation.overall.accuracy is not None


def test_private_run_needs_the_accountant(explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        train_tabular(loans(), TabularConfig(dp_epsilon=3.0, **FAST), label="label", exclude=["id"])  # type: ignore[arg-type]
    explains(info.value, "privacy accountant")


def test_delta_must_be_below_one_over_n(explains: Callable[..., str]) -> None:
    from keelml import privacy

    config = TabularConfig(dp_epsilon=3.0, dp_delta=0.01, **FAST)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as info:
        train_tabular(loans(), config, label="label", exclude=["id"], private=PrivateTraining(privacy))  # type: ignore[arg-type]
    explains(info.value, "not below 1/N", "--dp-delta")


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"dp_epsilon": 3.0, "dp_noise_multiplier": 1.0}, "not both"),
        ({"dp_epsilon": -1.0}, "dp_epsilon must be a positive"),
        ({"dp_epsilon": 1.0, "dp_delta": 0.0}, "dp_delta"),
        ({"dp_noise_multiplier": 1.0, "dp_clipping": "fast"}, "clipping mode"),
        ({"dp_noise_multiplier": 1.0, "dp_max_grad_norm": 0.0}, "dp_max_grad_norm"),
    ],
)
def test_bad_dp_options(kw: dict[str, object], needle: str, explains: Callable[..., str]) -> None:
    for kind in (TabularConfig, TextConfig):
        with pytest.raises(InvalidInputError) as info:
            kind(**kw)  # type: ignore[arg-type]
        explains(info.value, needle)


def test_non_private_configs_serialise_as_before() -> None:
    assert not any(k.startswith("dp_") for k in TabularConfig().to_json())
    private = TabularConfig(dp_epsilon=3.0)
    assert TabularConfig.from_mapping(private.to_json()) == private


def test_batchnorm_is_named_with_the_fix(explains: Callable[..., str]) -> None:
    from torch import nn

    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(IncompatibleLayerError) as info:
        check_compatible(model)
    explains(info.value, "BatchNorm", "GroupNorm", "ModuleValidator.fix")
    check_compatible(nn.Sequential(nn.Linear(4, 8), nn.GroupNorm(2, 8), nn.Linear(8, 2)))
