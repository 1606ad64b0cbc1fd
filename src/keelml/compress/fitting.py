"""Training a student (or recovering a pruned model) against a teacher's soft targets plus hard labels.

Loss per batch: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, label)`` with
``T`` the temperature (Hinton et al., 2015). Rows without a label (transfer rows) carry label -1 and
contribute only the soft term. The best epoch on validation accuracy is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress, ProgressNote


class Inputs(Protocol):
    """Rows a module can consume in batches."""

    def __len__(self) -> int: ...

    def batch(self, index: Sequence[int]) -> tuple[Any, ...]: ...


class TextInputs:
    def __init__(self, model: Any, texts: Sequence[str]) -> None:
        self._model, self._texts = model, [str(t) for t in texts]

    def __len__(self) -> int:
        return len(self._texts)

    def batch(self, index: Sequence[int]) -> tuple[Any, ...]:
        return tuple(self._model.encode([self._texts[i] for i in index]))


class TensorInputs:
    def __init__(self, x: Any) -> None:
        self._x = x

    def __len__(self) -> int:
        return int(self._x.shape[0])

    def batch(self, index: Sequence[int]) -> tuple[Any, ...]:
        import torch

        return (self._x[torch.as_tensor(list(index))],)


@dataclass(frozen=True, slots=True)
class FitSettings:
    temperature: float = 2.0
    alpha: float = 0.5
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None  # None: 1e-4 for text, 1e-2 for tabular
    patience: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.temperature <= 0:
            problems.append(f"temperature={self.temperature} (must be > 0)")
        if not 0 <= self.alpha <= 1:
            problems.append(f"alpha={self.alpha} (must be in [0, 1])")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            problems.append(
                f"epochs={self.epochs}, batch_size={self.batch_size}, patience={self.patience} (>= 1)"
            )
        if self.learning_rate is not None and self.learning_rate <= 0:
            problems.append(f"learning_rate={self.learning_rate} (must be > 0)")
        if problems:
            raise InvalidInputError(
                "invalid distillation settings",
                expected="temperature > 0, alpha in [0, 1], epochs/batch/patience >= 1, learning rate > 0",
                received="; ".join(problems),
                fix="e.g. temperature 2, alpha 0.5, epochs 3, learning rate 1e-4 (text) or 1e-2 (tabular)",
            )


def predict(module: Any, inputs: Inputs, batch_size: int = 64) -> npt.NDArray[np.float64]:
    """Softmax outputs of ``module`` over all rows."""
    import torch

    module.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            logits = module(*inputs.batch(range(i, min(i + batch_size, len(inputs)))))
            out.append(torch.softmax(logits, dim=1).double().numpy())
    return np.vstack(out)


def fit_student(
    module: Any,
    train: Inputs,
    soft: npt.NDArray[np.float64],
    hard: npt.NDArray[np.int64],
    validation: tuple[Inputs, npt.NDArray[np.int64]],
    settings: FitSettings,
    *,
    progress: Progress | None = None,
    name: str = "distilling",
    default_learning_rate: float = 1e-4,
) -> tuple[float, int]:
    """Train ``module`` in place; returns (best validation accuracy, best epoch), its weights restored."""
    import torch
    from torch.nn import functional as F

    progress = progress or NoProgress()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    t = settings.temperature
    teacher = torch.log(torch.from_numpy(soft).float().clamp(min=1e-8)) / t
    targets = torch.softmax(teacher, dim=1)
    labels = torch.from_numpy(hard)
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad],
        lr=settings.learning_rate or default_learning_rate,
    )
    batches = -(-len(train) // settings.batch_size)
    progress.stage(name, total=settings.epochs * batches)
    val_inputs, val_y = validation
    best = (-1.0, 0, copy.deepcopy(module.state_dict()))
    for epoch in range(1, settings.epochs + 1):
        module.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            logits = module(*train.batch(idx.tolist()))
            loss = (
                settings.alpha
                * t
                * t
                * F.kl_div(F.log_softmax(logits / t, dim=1), targets[idx], reduction="batchmean")
            )
            if settings.alpha < 1 and bool((labels[idx] >= 0).any()):
                loss = loss + (1 - settings.alpha) * F.cross_entropy(logits, labels[idx], ignore_index=-1)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it untyped
            optimizer.step()
            progress.advance()
            if isinstance(progress, ProgressNote):
                progress.note(f"epoch {epoch} loss {float(loss):.4f}")
        accuracy = float((predict(module, val_inputs).argmax(axis=1) == val_y).mean())
        if accuracy > best[0]:
            best = (accuracy, epoch, copy.deepcopy(module.state_dict()))
        elif epoch - best[1] >= settings.patience:
            break
    module.load_state_dict(best[2])
    module.eval()
    return best[0], best[1]
