from __future__ import annotations

from pathlib import Path

import pytest

from keelml import Workspace
from keelml.core.errors import BackendUnavailableError, InvalidInputError
from keelml.pipeline.training import TrainingRun
from keelml.tracking import PromotionRefusedError
from keelml.tracking.registry import ModelNotFoundError
from tests.tracking.conftest import GATES, with_gates

Registered = tuple[Workspace, list[TrainingRun]]


def test_run_records_params_metrics_per_epoch_dataset_and_environment(registered: Registered) -> None:
    ws, runs = registered
    client = ws.models.client
    run = client.get_run(runs[0].run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "logreg" and run.data.params["dataset"] == "loans@1"
    epochs = len(runs[0].trained.result.history.epochs)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == list(
        range(1, epochs + 1)
    )
    assert run.data.tags["keel.config_digest"] == runs[0].trained.config_digest
    assert "keel.env.python" in run.data.tags and "keel.env.torch" in run.data.tags
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "loans"
    ref = ws.datasets.ref("loans@1")
    assert ref.digest in dataset_input.dataset.source
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"evaluation.json", "training.json"} <= artifacts
    assert str(ws.models.uri).startswith("sqlite:////")  # resolved against the workspace root


def test_registered_versions_are_lineage_nodes_and_pinned(registered: Registered) -> None:
    ws, runs = registered
    assert [v.version for v in ws.models.versions("loan-clf")] == [1, 2]
    graph = ws.catalog.lineage.graph("model:loan-clf@2", "upstream")
    assert "dataset:loans@1" in {n.id for n in graph.nodes}
    assert {p.node_id for p in ws.catalog.lineage.pins()} >= {"model:loan-clf@1", "model:loan-clf@2"}
    assert "dataset:loans@1" in ws.catalog.lineage.protected()
    info = ws.models.show("loan-clf@1")
    assert info.dataset == "loans@1" and info.artifact == runs[0].trained.artifact.digest
    assert info.metrics["test_accuracy"] == runs[0].trained.metrics()["test_accuracy"]
    import mlflow

    folder = mlflow.artifacts.download_artifacts("models:/loan-clf/1")
    requirements = Path(folder, "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and "keelml==" in requirements
    model = mlflow.pyfunc.load_model("models:/loan-clf/1")
    assert model.predict(ws.datasets.read("loans").to_pandas().head(4)).shape == (4, 2)


def test_promotion_runs_gates_and_rollback_steps_back(registered: Registered) -> None:
    ws, _ = registered
    first = ws.models.promote("loan-clf@1", "production")
    statuses = {g.name: g.status for g in first.gates}
    assert statuses["min test_accuracy"] == "passed"
    assert statuses["max slice gap (accuracy)"] == "passed"
    assert statuses["max latency"] == statuses["max privacy epsilon"] == "not evaluated"
    second = ws.models.promote("loan-clf@2", "production")
    assert second.previous == 1
    assert ws.models.show("loan-clf@production").version == 2
    assert ws.models.rollback("loan-clf", "production").version == 1
    assert ws.models.show("loan-clf@production").version == 1
    with pytest.raises(Exception, match="no earlier version"):
        ws.models.rollback("loan-clf", "production")


def test_failed_gates_refuse_and_force_needs_a_reason(registered: Registered) -> None:
    ws, _ = registered
    strict = with_gates(ws, "[gates]\nmin_metric = { test_accuracy = 0.999, test_auroc = 0.5 }\n")
    try:
        with pytest.raises(PromotionRefusedError) as caught:
            strict.models.promote("loan-clf@1", "staging")
        assert [g.name for g in caught.value.gates if g.status == "failed"] == ["min test_accuracy"]
        assert "min test_accuracy" in str(caught.value)
        with pytest.raises(InvalidInputError, match="needs a reason"):
            strict.models.promote("loan-clf@1", "staging", force_reason=" ")
        forced = strict.models.promote("loan-clf@1", "staging", force_reason="pilot on 1% of traffic")
        assert forced.forced_reason == "pilot on 1% of traffic"
        assert strict.models.show("loan-clf@staging").tags["keel.forced_reason"] == "pilot on 1% of traffic"
    finally:
        with_gates(ws, GATES.replace("[gates]", "").join(["[gates]", ""]))


@pytest.mark.parametrize("spec", ["loan-clf@99", "nope", "nope@3", "loan-clf@canary"])
def test_promoting_a_missing_version_is_not_found(registered: Registered, spec: str) -> None:
    ws, _ = registered
    with pytest.raises(ModelNotFoundError, match="no registered model version"):
        ws.models.promote(spec, "production")


def test_unknown_alias_is_refused(registered: Registered) -> None:
    with pytest.raises(InvalidInputError, match="unknown alias"):
        registered[0].models.promote("loan-clf@1", "prod")


def test_a_failed_run_is_marked_failed(registered: Registered) -> None:
    ws, _ = registered
    with pytest.raises(RuntimeError), ws.models.run("failing", "boom") as run:
        raise RuntimeError("boom")
    assert ws.models.client.get_run(run.run_id).info.status == "FAILED"


def test_unreachable_tracking_uri_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace.init(tmp_path / "w")
    text = (ws.root / "keel.toml").read_text().replace("sqlite:///.keel/mlflow.db", "http://127.0.0.1:9")
    (ws.root / "keel.toml").write_text(text)
    with pytest.raises(BackendUnavailableError, match="cannot reach the MLflow tracking backend") as caught:
        Workspace.open(ws.root).models.list()
    assert caught.value.exit_code == 7 and "keel.toml" in (caught.value.fix or "")
