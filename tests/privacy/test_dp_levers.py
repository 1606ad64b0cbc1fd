"""The DP utility options: tanh activation, a fixed input range, a moving average of the DP weights."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keelml import ArtifactRef, Workspace, privacy
from keelml.core.errors import InvalidInputError
from keelml.train import private as private_module
from keelml.train.config import TabularConfig
from keelml.train.preprocess import Preprocessor
from keelml.train.private import PrivateTraining, _update_average, ema_decay
from keelml.train.tabular import TabularClassifier, labels_of, split_indices, train_tabular
from tests.cli.conftest import Result
from tests.train.conftest import loans

FAST = {"epochs": 2, "batch_size": 32, "hidden": (16,)}


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"activation": "sigmoid"}, "unknown activation"),
        ({"input_range": (1.0, 1.0)}, "input_range"),
        ({"input_range": (0.0, float("inf"))}, "input_range"),
        ({"input_range": (0.0,)}, "input_range"),
        ({"dp_ema": 1.0}, "dp_ema"),
        ({"dp_ema": 0.0}, "dp_ema"),
    ],
)
def test_bad_options_are_refused(kw: dict[str, object], needle: str, explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        TabularConfig(**kw)  # type: ignore[arg-type]
    explains(info.value, needle)


def test_defaults_serialise_as_before_and_options_round_trip() -> None:
    plain = TabularConfig().to_json()
    assert not {"activation", "input_range", "dp_ema"} & set(plain)
    config = TabularConfig(activation="tanh", input_range=(0.0, 16.0), dp_epsilon=3.0, dp_ema=0.9)
    out = config.to_json()
    assert out["activation"] == "tanh" and out["input_range"] == [0.0, 16.0] and out["dp_ema"] == 0.9
    assert TabularConfig.from_mapping(out) == config
    # the moving average belongs to DP-SGD: a non-private config drops it like the other dp_ keys
    assert "dp_ema" not in TabularConfig(dp_ema=0.9).to_json()


def test_fixed_range_reads_no_statistic_of_the_rows() -> None:
    a = pd.DataFrame({"p": [0.0, 1.0, 2.0], "c": ["x", "y", "x"]})
    b = pd.DataFrame({"p": [16.0, 9.0, np.nan], "c": ["x", "y", "x"]})
    fixed_a = Preprocessor.fit(a, fixed_range=(0.0, 16.0))
    assert fixed_a == Preprocessor.fit(b, fixed_range=(0.0, 16.0))  # same for any rows
    assert Preprocessor.fit(a) != Preprocessor.fit(b)  # standardisation reads them
    got = fixed_a.transform(b)[:, 0]
    assert got.tolist() == [1.0, 0.125, 0.0]  # (x - 8) / 8, missing -> midpoint
    assert Preprocessor.from_json(fixed_a.to_json()) == fixed_a  # the saved format is unchanged


def test_update_average_is_an_exponential_moving_average() -> None:
    import torch

    average, param = [torch.zeros(3)], [torch.ones(3)]
    _update_average(average, param, 0.75)
    _update_average(average, param, 0.75)
    assert average[0].tolist() == pytest.approx([1 - 0.75**2] * 3)


def test_private_tanh_fixed_range_ema_run_trains_and_reloads() -> None:
    import torch

    table = loans(200)
    base = {"dp_noise_multiplier": 1.0, "activation": "tanh", "input_range": (-4.0, 4.0), **FAST, "epochs": 1}
    configs = {ema: TabularConfig(dp_ema=ema, **base) for ema in (None, 0.5)}  # type: ignore[arg-type]
    runs = {
        ema: train_tabular(table, c, label="label", exclude=["id"], private=PrivateTraining(privacy))
        for ema, c in configs.items()
    }
    last, averaged = runs[None].model, runs[0.5].model
    assert any(isinstance(m, torch.nn.Tanh) for m in averaged.module.modules())
    assert all(c.mean == 0.0 and c.std == 4.0 for c in averaged.preprocessor.numeric)
    # same seed, same noise and lots: the averaged weights differ from the last iterate's
    w_last, w_avg = (next(m.module.parameters()).detach() for m in (last, averaged))
    assert not torch.allclose(w_last, w_avg)
    assert runs[0.5].privacy == runs[None].privacy  # post-processing: the same guarantee
    again = TabularClassifier.from_bytes(averaged.to_bytes())
    rows = loans(20).to_pandas()
    assert np.allclose(again.predict_proba(rows), averaged.predict_proba(rows))
    assert runs[0.5].evaluation.overall.accuracy is not None


def test_the_decay_warms_up_then_holds() -> None:
    decays = [ema_decay(0.95, t) for t in range(400)]
    assert decays[0] == pytest.approx(0.1) and decays[1] == pytest.approx(2 / 11)
    assert all(a <= b for a, b in itertools.pairwise(decays)) and max(decays) == 0.95
    assert decays.index(0.95) == 170  # (1 + t) / (10 + t) >= 0.95 from t = 170 on


def test_saved_and_evaluated_weights_are_the_warmed_up_average_of_the_noisy_iterates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    seen: list[tuple[list[torch.Tensor], float]] = []
    start: list[torch.Tensor] = []
    update = private_module._update_average

    def spy(average: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
        if not seen:
            start.extend(a.clone() for a in average)  # the average starts at the initial weights
        seen.append(([p.detach().clone() for p in params], decay))
        update(average, params, decay)

    monkeypatch.setattr(private_module, "_update_average", spy)
    table = loans(200)
    config = TabularConfig(dp_noise_multiplier=1.0, dp_ema=0.99, dp_secure_noise=False, **FAST)  # type: ignore[arg-type]
    result = train_tabular(table, config, label="label", exclude=["id"], private=PrivateTraining(privacy))
    # one update per noisy step (Poisson may draw an empty lot: no step, no update), decays warming up
    assert result.privacy is not None and result.privacy.steps - 3 <= len(seen) <= result.privacy.steps
    assert [d for _, d in seen] == [ema_decay(0.99, t) for t in range(len(seen))]
    expected = start
    for params, decay in seen:
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, params, strict=True)]
    weights = [p.detach() for p in result.model.module.parameters()]
    assert all(torch.allclose(w, e, atol=1e-6) for w, e in zip(weights, expected, strict=True))
    assert not all(torch.allclose(w, p) for w, p in zip(weights, seen[-1][0], strict=True))  # not the last
    # the saved model is that average, and the reported accuracy is that model's on the test rows
    again = TabularClassifier.from_bytes(result.model.to_bytes())
    assert all(torch.equal(a, b) for a, b in zip(again.module.parameters(), weights, strict=True))
    _, y, classes = labels_of(table, "label")
    test = split_indices(y, config)["test"]
    predicted = again.predict(table.take(test).to_pandas())
    accuracy = float(np.mean([classes.index(c) for c in predicted] == y[test]))
    assert result.evaluation.overall.accuracy == pytest.approx(accuracy)


@pytest.mark.slow  # a workspace, a training run and the registry through the CLI
def test_cli_flags_reach_the_config(tmp_path: Path, keel: Callable[..., Result]) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "ws"
    assert keel("init", root).code == 0
    pq.write_table(loans(200), tmp_path / "loans.parquet")
    added = keel(
        "-w", root, "data", "add", "loans", tmp_path / "loans.parquet", "--label", "label", "--id", "id"
    )
    assert added.code == 0, added.err
    args = ("-w", root, "train", "tabular", "--data", "loans", "--epochs", "1", "--noise-multiplier", "1")
    bad = keel(*args, "--input-range", "0,x")
    assert bad.code == 4 and "--input-range" in bad.err and "fix:" in bad.err
    reversed_range = keel(*args, "--input-range", "4,-4")
    assert reversed_range.code == 4 and "low < high" in reversed_range.err
    result = keel(*args, "--activation", "tanh", "--input-range=-4,4", "--name", "dp-tanh")
    assert result.code == 0, result.err
    ws = Workspace.open(root)
    artifact = ws.models.show("dp-tanh@1").artifact
    assert artifact is not None
    model = TabularClassifier.from_bytes(ws.artifacts.read_bytes(ArtifactRef(artifact)))
    assert model.config.activation == "tanh" and model.config.input_range == (-4.0, 4.0)
