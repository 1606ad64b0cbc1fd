from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError, ConfigError, InvalidInputError
from keelml.data.slices import Slice
from keelml.train import TabularConfig
from keelml.train.tabular import TabularClassifier, train_tabular

FAST = TabularConfig(epochs=15, batch_size=32, patience=3)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def stage(self, name: str, total: float | None = None) -> None:
        self.events.append(("stage", name))

    def advance(self, amount: float = 1.0) -> None:
        self.events.append(("advance", amount))

    def note(self, text: str) -> None:
        self.events.append(("note", text))


class Metrics:
    def __init__(self) -> None:
        self.steps: list[int | None] = []

    def log_params(self, params: object) -> None:
        return None

    def log_metrics(self, metrics: object, step: int | None = None) -> None:
        self.steps.append(step)


def test_mlp_learns_is_deterministic_and_round_trips(ws: Workspace) -> None:
    progress, logger = Recorder(), Metrics()
    north = Slice("north", 'region == "north"')
    first = ws.training.tabular("loans", FAST, slices=[north], progress=progress, logger=logger)
    second = ws.training.tabular("loans@1", FAST, slices=[north])
    overall = first.result.evaluation.overall
    assert overall.accuracy > 0.8 and overall.auroc is not None and overall.auroc > 0.85
    assert 0 <= overall.ece <= 1
    assert sum(map(sum, overall.confusion)) == first.result.sizes["test"] == 48
    assert set(first.result.evaluation.slices) == {"north"}
    assert first.artifact == second.artifact  # same seed, same bytes
    assert "id" not in first.result.features and "label" not in first.result.features
    n_epochs = len(first.result.history.epochs)
    assert ("stage", "training mlp") in progress.events
    assert sum(1 for kind, _ in progress.events if kind == "note") == n_epochs
    assert logger.steps == list(range(1, n_epochs + 1))
    assert first.metrics()["slice_north_accuracy"] == first.result.evaluation.slices["north"].accuracy

    loaded = TabularClassifier.from_bytes(ws.artifacts.read_bytes(first.artifact))
    rows = ws.datasets.read("loans").slice(0, 20)
    np.testing.assert_allclose(loaded.predict_proba(rows), first.result.model.predict_proba(rows))
    unseen = rows.set_column(rows.schema.get_field_index("region"), "region", pa.array(["west"] * 20))
    assert len(loaded.predict(unseen)) == 20  # an unseen category maps to <other>


def test_early_stopping_keeps_the_best_epoch(ws: Workspace) -> None:
    trained = ws.training.tabular(
        "loans", TabularConfig(model="logreg", epochs=200, patience=1, learning_rate=0.5)
    )
    history = trained.result.history
    assert history.stopped_early and len(history.epochs) < 200
    best = min(history.epochs, key=lambda e: e.val_loss)
    assert history.best_epoch == best.epoch
    assert trained.result.model.parameter_count == 2 * (2 + 4) + 2  # x, noise, 3 regions + other


def test_label_with_one_class_is_refused() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": ["a", "a", None]})
    with pytest.raises(InvalidInputError, match="1 class"):
        train_tabular(table, FAST, label="y")


def test_missing_label_and_feature_columns_are_named() -> None:
    table = pa.table({"x": [1.0, 2.0], "y": ["a", "b"]})
    with pytest.raises(ColumnNotFoundError, match="'nope'"):
        train_tabular(table, FAST, label="nope")
    with pytest.raises(ColumnNotFoundError, match="'z'"):
        train_tabular(table, TabularConfig(features=("z",)), label="y")
    with pytest.raises(InvalidInputError, match="too few"):
        train_tabular(table, FAST, label="y")


def test_dataset_without_label_needs_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace.init(tmp_path / "w")
    ws.datasets.add("plain", pa.table({"x": [1.0, 2.0]}))
    with pytest.raises(InvalidInputError, match="no label column"):
        ws.training.tabular("plain")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"model": "forest"}, "unknown tabular model"),
        ({"test_fraction": 0.7}, "test_fraction"),
        ({"hidden": (0,)}, "hidden"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_invalid_configs_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        TabularConfig(**kwargs)  # type: ignore[arg-type]


def test_config_from_mapping_names_unknown_keys() -> None:
    assert TabularConfig.from_mapping({"hidden": [8], "epochs": 3}).hidden == (8,)
    with pytest.raises(ConfigError, match="unknown keys: layers"):
        TabularConfig.from_mapping({"layers": 3})
    assert TabularConfig.from_mapping(FAST.to_json()) == FAST
