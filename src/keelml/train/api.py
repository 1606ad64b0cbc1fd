"""``ws.training``: train on a dataset version of the workspace and store the model as an artifact.

Datasets are read through the runtime accessor ``ws.datasets`` (this capability never imports
``keelml.data``); slices are passed in by the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keelml.core.errors import InvalidInputError
from keelml.core.progress import Progress
from keelml.core.refs import ArtifactRef, DatasetRef
from keelml.core.tracking import RunLogger
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.train.config import TabularConfig, TextConfig
from keelml.train.tabular import SliceLike, TabularResult, train_tabular
from keelml.train.text import TextResult, train_text


def config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a config.

    >>> config_digest({"b": 1, "a": 2}) == config_digest({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A trained model, where its weights are stored, and what it was trained on."""

    task: str
    dataset: DatasetRef
    artifact: ArtifactRef
    config: dict[str, Any]
    config_digest: str
    result: TabularResult | TextResult

    def metrics(self) -> dict[str, float]:
        """Flat metric names: ``test_accuracy``, ``slice_NAME_accuracy``, ..."""
        out = {f"test_{k}": v for k, v in self.result.evaluation.overall.scalars().items()}
        for name, m in self.result.evaluation.slices.items():
            out.update({f"slice_{name}_{k}": v for k, v in m.scalars().items()})
        return out


class Training:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def tabular(
        self,
        data: str | DatasetRef,
        config: TabularConfig | None = None,
        *,
        slices: Sequence[SliceLike] = (),
        progress: Progress | None = None,
        logger: RunLogger | None = None,
    ) -> TrainedModel:
        config = config or TabularConfig()
        datasets: Any = self._ws.datasets
        ref: DatasetRef = datasets.ref(data)
        record = datasets.dataset(ref.name)
        label = config.label or record.label_column
        if label is None:
            raise InvalidInputError(
                f"dataset {ref.name!r} has no label column and none was given",
                expected="a label column",
                received="none",
                fix="pass --label COLUMN (or label = ... in the training config)",
            )
        exclude = [c for c in (record.id_column, record.time_column) if c]
        result = train_tabular(
            datasets.read(ref), config, label=label, exclude=exclude, slices=slices,
            progress=progress, logger=logger,
        )  # fmt: skip
        artifact = self._ws.artifacts.put_bytes(result.model.to_bytes())
        as_json = config.to_json()
        return TrainedModel("tabular", ref, artifact, as_json, config_digest(as_json), result)

    def text(
        self,
        data: str | DatasetRef,
        config: TextConfig | None = None,
        *,
        slices: Sequence[SliceLike] = (),
        progress: Progress | None = None,
        logger: RunLogger | None = None,
    ) -> TrainedModel:
        """Fine-tune a text classifier (LoRA by default) on a dataset version."""
        config = config or TextConfig()
        datasets: Any = self._ws.datasets
        ref: DatasetRef = datasets.ref(data)
        label = config.label or datasets.dataset(ref.name).label_column
        if label is None:
            raise InvalidInputError(
                f"dataset {ref.name!r} has no label column and none was given",
                expected="a label column",
                received="none",
                fix="pass --label COLUMN",
            )
        result = train_text(
            datasets.read(ref), config, label=label, slices=slices, progress=progress, logger=logger
        )
        artifact = self._ws.artifacts.put_bytes(result.model.to_bytes())
        as_json = config.to_json()
        return TrainedModel("text", ref, artifact, as_json, config_digest(as_json), result)


@workspace_accessor("training")
def _training(ws: Workspace) -> Training:
    return Training(ws)
