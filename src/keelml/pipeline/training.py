"""Train, track and register in one step: composes ``ws.training``, ``ws.models`` and ``ws.datasets``.

The run records params, per-epoch losses, the dataset version as an input (name, version, digest),
the config digest, code version and environment; the model is registered with explicit pip
requirements, becomes lineage node ``model:NAME@V`` (edge from its dataset version) and is pinned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from keelml.core.progress import Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace
from keelml.tracking.registry import ModelVersionInfo
from keelml.train.api import TrainedModel
from keelml.train.config import TabularConfig
from keelml.train.tabular import SliceLike

TABULAR_LOADER = "keelml.train.tabular:TabularClassifier.from_bytes"


def pip_requirements(frameworks: Sequence[str]) -> list[str]:
    """Pinned requirements of a model: keelml plus exactly the frameworks it needs (never inferred)."""
    out = [f"keelml=={metadata.version('keelml')}"]
    for dist in frameworks:
        out.append(f"{dist}=={metadata.version(dist).split('+')[0]}")
    return out


@dataclass(frozen=True, slots=True)
class TrainingRun:
    trained: TrainedModel
    run_id: str
    registered: ModelVersionInfo | None


def train_tabular(
    ws: Workspace,
    data: str | DatasetRef,
    *,
    name: str,
    config: TabularConfig | None = None,
    slices: Sequence[SliceLike] = (),
    progress: Progress | None = None,
    register: bool = True,
) -> TrainingRun:
    config = config or TabularConfig()
    datasets: Any = ws.datasets
    ref: DatasetRef = datasets.ref(data)
    record = ws.catalog.get_version(ref.name, ref.version)
    with ws.models.run(experiment=name, run_name=f"{name} on {ref}") as run:
        run.log_params({"task": "tabular", "dataset": str(ref), **config.to_json()})
        from keelml.train.api import config_digest

        run.set_tags(
            {
                "keel.config_digest": config_digest(config.to_json()),
                "keel.dataset": str(ref),
                "keel.task": "tabular",
            }
        )
        run.log_dataset(
            ref, source=datasets.dataset(ref.name).table_uri, schema=record.schema, rows=record.row_count
        )
        trained = ws.training.tabular(ref, config, slices=slices, progress=progress, logger=run)
        result = trained.result
        run.log_metrics(
            {**trained.metrics(), "best_epoch": result.history.best_epoch,
             "parameters": result.model.parameter_count}
        )  # fmt: skip
        run.log_json("evaluation.json", result.evaluation.to_json())
        run.log_json(
            "training.json", {"config": trained.config, "sizes": result.sizes, "features": result.features}
        )
        registered = None
        if register:
            registered = ws.models.register(
                name, run, artifact=trained.artifact, dataset=ref, metrics=trained.metrics(),
                loader=TABULAR_LOADER, task="tabular",
                pip_requirements=pip_requirements(["torch", "numpy", "pandas", "pyarrow"]),
            )  # fmt: skip
    return TrainingRun(trained, run.run_id, registered)
