"""``keel label suggest --model NAME@V``: a registered model scores the pool instead of the default one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from keelml import Workspace
from keelml.cli.main import app
from keelml.core.errors import InvalidInputError, NotFoundError
from keelml.core.refs import ArtifactRef
from keelml.pipeline.training import train_tabular
from keelml.train import TabularConfig
from keelml.train.tabular import TabularClassifier
from tests.labeling.conftest import pool_table


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, TabularClassifier]]:
    """One workspace for the module (MLflow set-up is the slow part): ``pets`` (30 of 120 labeled)
    and ``pets-clf@1``, a logistic regression trained on all 120 true labels."""
    ws = Workspace.init(tmp_path_factory.mktemp("registered") / "ws")
    table, truth = pool_table()
    ws.datasets.add("pets", table, label="label", id="id")
    full = table.set_column(4, "label", pa.array(truth, pa.string()))
    ws.datasets.add("pets-all", full.drop_columns(["note"]), label="label", id="id")
    config = TabularConfig(model="logreg", epochs=5, learning_rate=0.1)
    train_tabular(ws, "pets-all", name="pets-clf", config=config)
    info = ws.models.show("pets-clf@1")
    model = TabularClassifier.from_bytes(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))
    try:
        yield ws, model
    finally:
        ws.close()


def test_a_registered_model_scores_the_pool(scored: tuple[Workspace, TabularClassifier]) -> None:
    ws, model = scored
    s = ws.labels.suggest("pets", 8, strategy="margin", model="pets-clf@1")
    assert s.model == "pets-clf@1" and all(int(i) >= 30 for i in s.ids)  # only unlabeled rows
    pool = ws.datasets.read(ws.datasets.ref("pets")).slice(30)
    top2 = np.sort(model.predict_proba(pool), axis=1)[:, -2:]
    expected = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[:8] + 30
    assert [int(i) for i in s.ids] == expected.tolist()  # the model's own margins, smallest first
    assert ws.labels.suggest("pets", 5, strategy="hybrid", model="pets-clf").model == "pets-clf@1"


def test_cli_suggest_with_a_registered_model(scored: tuple[Workspace, TabularClassifier], tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws, _ = scored
    out = tmp_path / "batch.csv"
    result = CliRunner().invoke(
        app,
        [
            "--workspace",
            str(ws.root),
            "label",
            "suggest",
            "pets",
            "--budget",
            "4",
            "--model",
            "pets-clf@1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pets-clf@1" in result.output and len(out.read_text().splitlines()) == 5


def test_unknown_or_mismatched_registered_models_are_refused(
    scored: tuple[Workspace, TabularClassifier],
) -> None:
    ws, _ = scored
    with pytest.raises(NotFoundError):
        ws.labels.suggest("pets", 4, model="no-such-model@1")
    truth_two = [t if t != "fish" else "cat" for t in pool_table()[1]]
    two = pool_table()[0].set_column(4, "label", pa.array(truth_two, pa.string())).drop_columns(["note"])
    ws.datasets.add("pets-two", two, label="label", id="id")
    train_tabular(ws, "pets-two", name="two-clf", config=TabularConfig(model="logreg", epochs=2))
    with pytest.raises(InvalidInputError, match="cannot predict"):
        ws.labels.suggest("pets", 4, model="two-clf@1")  # pets has "fish" labels the model never saw
