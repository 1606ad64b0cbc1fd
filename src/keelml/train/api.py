"""``ws.training``: train on a dataset version of the workspace and store the model as an artifact.

Datasets are read through the runtime accessor ``ws.datasets`` (this capability never imports
``keelml.data``); slices are passed in by the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from keelml.core.errors import InvalidInputError
from keelml.core.progress import Progress
from keelml.core.refs import ArtifactRef, DatasetRef
from keelml.core.tracking import RunLogger
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.train.config import TabularConfig, TextConfig, is_private
from keelml.train.private import PrivacyReport, PrivateTraining
from keelml.train.tabular import (
    SliceLike,
    TabularResult,
    labels_of,
    split_indices,
    synthetic_rows,
    train_tabular,
)
from keelml.train.text import TextClassifier, TextResult, new_text_model, train_text


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
        privacy = self.result.privacy
        if privacy is not None:  # read by the max_privacy_epsilon gate and the model card
            out.update({"privacy_epsilon": privacy.epsilon, "privacy_delta": privacy.delta,
                        "privacy_noise_multiplier": privacy.noise_multiplier})  # fmt: skip
        return out


class Training:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def _private(self, ref: DatasetRef, config: TabularConfig | TextConfig) -> PrivateTraining | None:
        """For a DP config: ``ws.privacy`` as the accountant, and its budget check before training."""
        if not is_private(config):
            return None
        privacy: Any = self._ws.privacy

        def check(report: PrivacyReport) -> None:
            privacy.check(ref, report.epsilon, report.delta, details={"mechanism": report.mechanism()})

        return PrivateTraining(privacy, before=check)

    def _spend(self, ref: DatasetRef, report: PrivacyReport | None, task: str, logger: Any) -> None:
        """Record a finished private run in the ledger (refused, and the model dropped, if over budget)."""
        if report is None:
            return
        self._ws.privacy.spend(
            ref, epsilon=report.epsilon, delta=report.delta, kind="dp-train",
            run_id=getattr(logger, "run_id", None), accountant=report.accountant,
            details={"task": task, "mechanism": report.mechanism(), **report.to_json()},
        )  # fmt: skip

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
            progress=progress, logger=logger, private=self._private(ref, config),
        )  # fmt: skip
        self._spend(ref, result.privacy, "tabular", logger)
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
            datasets.read(ref), config, label=label, slices=slices, progress=progress, logger=logger,
            private=self._private(ref, config),
        )  # fmt: skip
        self._spend(ref, result.privacy, "text", logger)
        artifact = self._ws.artifacts.put_bytes(result.model.to_bytes())
        as_json = config.to_json()
        return TrainedModel("text", ref, artifact, as_json, config_digest(as_json), result)

    def text_model(self, config: Mapping[str, Any], classes: Sequence[str]) -> TextClassifier:
        """A fresh text classifier for ``config`` (TextConfig keys) and ``classes``: what federated
        text runs start every client from (they train its adapter and head, and save it like this one)."""
        return new_text_model(TextConfig.from_mapping(config), classes)

    def test_split(
        self, data: str | DatasetRef, config: dict[str, Any], *, task: str
    ) -> tuple[pa.Table, str]:
        """(the test rows a model with this training config was evaluated on, the label column)."""
        kind = TextConfig if task == "text" else TabularConfig
        parsed = kind.from_mapping(config)
        datasets: Any = self._ws.datasets
        ref: DatasetRef = datasets.ref(data)
        label = parsed.label or datasets.dataset(ref.name).label_column
        if label is None:
            raise InvalidInputError(
                f"dataset {ref.name!r} has no label column", expected="a label column", fix="pass the label"
            )
        table, y, _ = labels_of(datasets.read(ref), label)
        test = split_indices(y, parsed, train_only=synthetic_rows(table))["test"]
        return table.take(pa.array(test)), label

    def split(self, data: str | DatasetRef, config: Any, *, task: str) -> tuple[dict[str, pa.Table], str]:
        """({train, validation, test} rows exactly as a model with this config was trained, the label)."""
        kind = TextConfig if task == "text" else TabularConfig
        parsed = config if isinstance(config, kind) else kind.from_mapping(config)
        datasets: Any = self._ws.datasets
        ref: DatasetRef = datasets.ref(data)
        label = parsed.label or datasets.dataset(ref.name).label_column
        if label is None:
            raise InvalidInputError(
                f"dataset {ref.name!r} has no label column", expected="a label column", fix="pass the label"
            )
        table, y, _ = labels_of(datasets.read(ref), label)
        parts = split_indices(y, parsed, train_only=synthetic_rows(table))
        return {k: table.take(pa.array(v)) for k, v in parts.items()}, label


@workspace_accessor("training")
def _training(ws: Workspace) -> Training:
    return Training(ws)
