"""Distillation: a smaller student learns the teacher's softened outputs plus the hard labels.

Text: the student is the teacher's (adapter-merged) encoder cut to its first ``layers`` layers (or to
the layers named by ``teacher_layers``, e.g. (0, 5): spread-out layers keep the top layer whose output
the head was trained on), so it starts from the teacher's weights, with the teacher's head;
``FitSettings.hidden_weight > 0`` also matches the student's pooled features (the head's input) to
the teacher's; ``layer_map`` with ``FitSettings.layer_weight > 0`` matches the hidden states of
student layers to those of chosen teacher layers (e.g. ((1, 5),): the student's last layer learns the
teacher's last layer's output). Tabular: a narrower MLP (``hidden``), freshly initialised. Optional
transfer rows (unlabelled or augmented, same input columns) add soft targets only.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from keelml.compress.fitting import FitSettings, fit_student, predict_hidden, predict_with_features
from keelml.compress.source import Source
from keelml.compress.tasks import inputs, linears, mlp, parameter_count, rebuild, torch_module
from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from keelml.core.progress import Progress


@dataclass(frozen=True, slots=True)
class DistillConfig:
    """``layers`` (text) / ``hidden`` (tabular): the student's size; None halves the teacher's.

    ``teacher_layers`` (text): which of the teacher's layers (0-based, increasing) the student keeps,
    instead of the first ``layers``; ``layers`` may then be left out (it is their count).
    ``layer_map`` (text): (student layer, teacher layer) pairs, 0-based, whose hidden states are matched
    with weight ``fit.layer_weight`` (which must then be > 0, and 0 without a map).
    """

    layers: int | None = None
    hidden: tuple[int, ...] | None = None
    fit: FitSettings = field(default_factory=FitSettings)
    teacher_layers: tuple[int, ...] | None = None
    layer_map: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        pairs = tuple(tuple(p) for p in self.layer_map)
        students = [p[0] for p in pairs if len(p) == 2]
        if (any(len(p) != 2 or min(p) < 0 for p in pairs) or len(set(students)) != len(students)
                or bool(pairs) != (self.fit.layer_weight > 0)):  # fmt: skip
            raise InvalidInputError(
                "layer_map must pair distinct student layers with teacher layers, with fit.layer_weight > 0",
                expected="e.g. layer_map=((1, 5),) and FitSettings(layer_weight=1.0); or neither",
                received=f"layer_map={pairs}, layer_weight={self.fit.layer_weight}",
                fix="pass (student layer, teacher layer) pairs, 0-based, each student layer once, and a "
                "positive layer_weight (or drop both)",
            )
        if self.teacher_layers is not None:
            picked = tuple(self.teacher_layers)
            if (not picked or any(b <= a for a, b in itertools.pairwise(picked)) or picked[0] < 0
                    or (self.layers is not None and self.layers != len(picked))):  # fmt: skip
                raise InvalidInputError(
                    "teacher_layers must name distinct teacher layers in increasing order",
                    expected="e.g. teacher_layers=(0, 5), 0-based, increasing; layers unset or their count",
                    received=f"teacher_layers={picked}, layers={self.layers}",
                    fix="pass teacher_layers=(0, 5) alone, or layers=2 for the first two layers",
                )
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


def text_student(teacher: Any, layers: int | Sequence[int]) -> Any:
    """The teacher cut to its first ``layers`` layers, or to the layers listed (0-based, increasing)."""
    from torch import nn

    module = copy.deepcopy(torch_module(teacher, "text"))
    for parameter in module.parameters():  # a merged LoRA teacher's base weights come frozen
        parameter.requires_grad_(True)
    encoder = module.encoder
    total = len(encoder.encoder.layer)
    keep = list(range(layers)) if isinstance(layers, int) else list(layers)
    if len(keep) > total or keep[-1] >= total:
        raise InvalidInputError(
            f"the student cannot have more layers than the teacher ({total}) nor layers it lacks",
            expected=f"layers between 1 and {total}; teacher layer indices 0 to {total - 1}",
            received=str(layers),
            fix=f"pass --layers {max(1, total // 2)}",
        )
    kept = list(encoder.encoder.layer)
    encoder.encoder.layer = nn.ModuleList([kept[i] for i in keep])
    for position, layer in enumerate(encoder.encoder.layer):  # attention modules know their index
        for sub in layer.modules():
            if hasattr(sub, "layer_idx"):
                sub.layer_idx = position
    encoder.config.num_hidden_layers = len(keep)
    structure = getattr(encoder.config, "keel_structure", None)
    if structure:  # a pruned teacher: keep the shapes of the kept layers
        encoder.config.keel_structure = {k: [list(v)[i] for i in keep] for k, v in structure.items()}
    return rebuild(teacher, "text", module, peft="full")


def tabular_student(teacher: Any, hidden: tuple[int, ...]) -> Any:
    layers = linears(teacher.module)
    module = mlp([layers[0].in_features, *hidden, layers[-1].out_features])
    return rebuild(teacher, "tabular", module, hidden=tuple(hidden), model="mlp")


def check_transfer(source: Source, transfer: pa.Table) -> None:
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
        if config.teacher_layers is not None:
            picked = list(config.teacher_layers)
            student = text_student(teacher, picked)
            description = f"layers {', '.join(map(str, picked))} of {total}"
        else:
            layers = config.layers or max(1, total // 2)
            student, description = text_student(teacher, layers), f"first {layers} of {total} layers"
    else:
        if config.teacher_layers is not None:
            raise InvalidInputError(
                "teacher_layers picks layers of a text teacher's encoder",
                expected="teacher_layers unset for tabular students",
                received=f"teacher_layers={config.teacher_layers} for a {source.task} model",
                fix="size the MLP student with hidden=(...) instead",
            )
        widths = [m.out_features for m in linears(teacher.module)[:-1]] or [8]
        hidden = config.hidden or tuple(max(1, w // 2) for w in widths)
        student, description = tabular_student(teacher, hidden), f"MLP hidden {list(hidden)}"
    train_table = source.parts["train"]
    hard = source.labels("train")
    if transfer is not None and transfer.num_rows:
        check_transfer(source, transfer)
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
    hidden = _mapped_hidden(config, source.task, teacher_module, student, train_rows)
    validation = (inputs(teacher, source.task, source.parts["validation"]), source.labels("validation"))
    accuracy, epoch = fit_student(
        student.module, inputs(student, source.task, train_table), soft, hard, validation, config.fit,
        default_learning_rate=1e-4 if source.task == "text" else 1e-2, progress=progress,
        name=f"distilling {source.spec} -> {description}", teacher_features=features, teacher_hidden=hidden,
    )  # fmt: skip
    return Student(student, description, parameter_count(student), parameter_count(teacher), accuracy, epoch)


def _mapped_hidden(config: DistillConfig, task: str, teacher: Any, student: Any, rows: Any) -> Any:
    """Student layer -> the mapped teacher layer's hidden states on ``rows`` (None without a layer_map)."""
    if not config.layer_map:
        return None
    teacher_total = len(teacher.encoder.encoder.layer) if task == "text" else 0
    student_total = len(student.module.encoder.encoder.layer) if task == "text" else 0
    bad = [p for p in config.layer_map if p[0] >= student_total or p[1] >= teacher_total]
    if bad:
        raise InvalidInputError(
            "layer_map names layers the student or the teacher lacks (or the model is not a text model)",
            expected=f"student layers 0-{student_total - 1}, teacher layers 0-{teacher_total - 1} (text)",
            received=f"layer_map={config.layer_map} for a {task} model",
            fix=f"e.g. layer_map=(({max(0, student_total - 1)}, {max(0, teacher_total - 1)}),)",
        )
    states = predict_hidden(teacher, rows, sorted({t for _, t in config.layer_map}))
    return {s: states[t] for s, t in config.layer_map}
