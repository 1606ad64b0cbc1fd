"""Distillation: a smaller student learns the teacher's softened outputs plus the hard labels.

Text: the student is the teacher's (adapter-merged) encoder cut to its first ``layers`` layers, so it
starts from the teacher's weights, with the teacher's head; ``FitSettings.hidden_weight > 0`` also
matches the student's pooled features (the head's input) to the teacher's. Tabular: a narrower MLP
(``hidden``), freshly initialised. Optional transfer rows (unlabelled or augmented, same input
columns) add soft targets only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from keelml.compress.fitting import FitSettings, fit_student, predict_with_features
from keelml.compress.source import Source
from keelml.compress.tasks import inputs, linears, mlp, parameter_count, rebuild, torch_module
from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from keelml.core.progress import Progress


@dataclass(frozen=True, slots=True)
class DistillConfig:
    """``layers`` (text) / ``hidden`` (tabular): the student's size; None halves the teacher's."""

    layers: int | None = None
    hidden: tuple[int, ...] | None = None
    fit: FitSettings = field(default_factory=FitSettings)

    def __post_init__(self) -> None:
        if (self.layers is not None and self.layers < 1) or any(h < 1 for h in self.hidden or ()):
            raise InvalidInputError(
                "the student must keep at least one layer and one unit per hidden layer",
                expected="layers >= 1 and hidden sizes >= 1",
                received=f"layers={self.layers}, hidden={self.hidden}",
                fix="e.g. layers=2 (text) or hidden=(16,) (tabular)",
            )


@dataclass(frozen=True, slots=True)
class Student:
    model: Any
    description: str
    parameters: int
    teacher_parameters: int
    validation_accuracy: float
    best_epoch: int


def text_student(teacher: Any, layers: int) -> Any:
    from torch import nn

    module = copy.deepcopy(torch_module(teacher, "text"))
    encoder = module.encoder
    total = len(encoder.encoder.layer)
    if layers > total:
        raise InvalidInputError(
            f"the student cannot have more layers than the teacher ({total})",
            expected=f"layers between 1 and {total}",
            received=str(layers),
            fix=f"pass --layers {max(1, total // 2)}",
        )
    encoder.encoder.layer = nn.ModuleList(list(encoder.encoder.layer)[:layers])
    encoder.config.num_hidden_layers = layers
    structure = getattr(encoder.config, "keel_structure", None)
    if structure:  # a pruned teacher: keep the shapes of the kept layers
        encoder.config.keel_structure = {k: list(v)[:layers] for k, v in structure.items()}
    return rebuild(teacher, "text", module, peft="full")


def tabular_student(teacher: Any, hidden: tuple[int, ...]) -> Any:
    layers = linears(teacher.module)
    module = mlp([layers[0].in_features, *hidden, layers[-1].out_features])
    return rebuild(teacher, "tabular", module, hidden=tuple(hidden), model="mlp")


def _check_transfer(source: Source, transfer: pa.Table) -> None:
    needed = (
        [source.model.config.text] if source.task == "text" else list(source.model.preprocessor.input_names)
    )
    missing = [c for c in needed if c not in transfer.column_names]
    if missing:
        raise ColumnNotFoundError(
            "the transfer rows lack input columns of the teacher",
            expected=", ".join(needed),
            received=f"missing {', '.join(missing)} (columns: {', '.join(transfer.column_names)})",
            fix="pass rows with the same input columns as the training data",
        )


def distill(
    source: Source,
    config: DistillConfig | None = None,
    *,
    transfer: pa.Table | None = None,
    progress: Progress | None = None,
) -> Student:
    """Train a student of ``source.model`` on its training rows (+ ``transfer`` rows)."""
    config = config or DistillConfig()
    teacher = source.model
    if source.task == "text":
        total = len(torch_module(teacher, "text").encoder.encoder.layer)
        layers = config.layers or max(1, total // 2)
        student, description = text_student(teacher, layers), f"first {layers} of {total} layers"
    else:
        widths = [m.out_features for m in linears(teacher.module)[:-1]] or [8]
        hidden = config.hidden or tuple(max(1, w // 2) for w in widths)
        student, description = tabular_student(teacher, hidden), f"MLP hidden {list(hidden)}"
    train_table = source.parts["train"]
    hard = source.labels("train")
    if transfer is not None and transfer.num_rows:
        _check_transfer(source, transfer)
        cols = [c for c in train_table.column_names if c in transfer.column_names and c != source.label]
        train_table = pa.concat_tables(
            [train_table.select(cols), transfer.select(cols)], promote_options="permissive"
        )
        hard = np.concatenate([hard, np.full(transfer.num_rows, -1, dtype=np.int64)])
    if config.fit.hidden_weight > 0 and source.task != "text":
        raise InvalidInputError(
            "feature matching (hidden_weight) needs a text student of the teacher's width",
            expected="hidden_weight = 0 for tabular students",
            received=f"hidden_weight={config.fit.hidden_weight} for a {source.task} model",
            fix="drop hidden_weight (the MLP student is narrower than the teacher)",
        )
    train_rows = inputs(teacher, source.task, train_table)
    teacher_module = torch_module(teacher, source.task)
    soft, features = predict_with_features(teacher_module, train_rows, features=config.fit.hidden_weight > 0)
    validation = (inputs(teacher, source.task, source.parts["validation"]), source.labels("validation"))
    accuracy, epoch = fit_student(
        student.module, inputs(student, source.task, train_table), soft, hard, validation, config.fit,
        default_learning_rate=1e-4 if source.task == "text" else 1e-2, progress=progress,
        name=f"distilling {source.spec} -> {description}", teacher_features=features,
    )  # fmt: skip
    return Student(student, description, parameter_count(student), parameter_count(teacher), accuracy, epoch)
