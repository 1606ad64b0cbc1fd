"""Training a student (or recovering a pruned model) against a teacher's soft targets plus hard labels.

Loss per batch: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, label)`` with
``T`` the temperature (Hinton et al., 2015). Rows without a label (transfer rows) carry label -1 and
contribute only the soft term. With ``hidden_weight > 0`` (text students) the loss adds
``hidden_weight * MSE(student features, teacher features)``, the features being the input of the
classification head (the pooled last hidden state): representation distillation, as in TinyBERT's
last-layer mapping, for a student of the teacher's width. With ``layer_weight > 0`` and teacher hidden
states given per student layer (``DistillConfig.layer_map``), the loss adds ``layer_weight`` times the
mean over mapped layers of the MSE between that student layer's output and the mapped teacher layer's
output, over the real (unpadded) tokens: intermediate-layer distillation (TinyBERT's hidden-state
loss). The best epoch on validation accuracy is kept.
``ema_decay`` > 0 keeps an exponential moving average of the weights (Polyak averaging, updated
after every step); the averaged weights are the ones validated at each epoch's end and kept. It
smooths out the last steps' SGD noise, which a constant learning rate leaves in the final weights.
``schedule="linear"`` warms the learning rate up over ``warmup_fraction`` of all steps, then decays it
linearly to 0 at the last planned step (a higher peak rate without the early updates wrecking the
teacher-initialised weights); "constant" keeps it fixed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
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


SCHEDULES = ("constant", "linear")


@dataclass(frozen=True, slots=True)
class FitSettings:
    temperature: float = 2.0
    alpha: float = 0.5
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None  # None: 1e-4 for text, 1e-2 for tabular
    patience: int = 2
    seed: int = 0
    hidden_weight: float = 0.0  # weight of the feature (head input) MSE term; 0: logits only
    layer_weight: float = 0.0  # weight of the hidden-state MSE of mapped layers (DistillConfig.layer_map)
    schedule: str = "constant"  # or "linear": warm-up over warmup_fraction of the steps, then decay to 0
    warmup_fraction: float = 0.1  # used by schedule="linear" only
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights

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
        if self.hidden_weight < 0 or self.layer_weight < 0:
            problems.append(f"hidden_weight={self.hidden_weight}, layer_weight={self.layer_weight} (>= 0)")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule={self.schedule!r} (one of {', '.join(SCHEDULES)})")
        if not 0 <= self.warmup_fraction < 1:
            problems.append(f"warmup_fraction={self.warmup_fraction} (must be in [0, 1))")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay={self.ema_decay} (must be in [0, 1); 0 turns averaging off)")
        if problems:
            raise InvalidInputError(
                "invalid distillation settings",
                expected="temperature > 0, alpha in [0, 1], epochs/batch/patience >= 1, learning rate > 0, "
                "hidden_weight and layer_weight >= 0, schedule constant or linear, "
                "warmup_fraction and ema_decay in [0, 1)",
                received="; ".join(problems),
                fix="e.g. temperature 2, alpha 0.5, epochs 3, learning rate 1e-4 (text) or 1e-2 (tabular)",
            )


def rate_factor(settings: FitSettings, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the base learning rate at each optimizer step (0-based) under ``settings``."""
    if settings.schedule == "constant":
        return lambda _step: 1.0
    warmup = int(total_steps * settings.warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def predict(module: Any, inputs: Inputs, batch_size: int = 64) -> npt.NDArray[np.float64]:
    """Softmax outputs of ``module`` over all rows."""
    return predict_with_features(module, inputs, batch_size, features=False)[0]


def _head_inputs(module: Any, store: list[Any]) -> Any:
    """A forward hook on ``module.head`` appending its input (the features) to ``store``."""
    return module.head.register_forward_hook(lambda _m, args, _out: store.append(args[0]))


def _layer_outputs(module: Any, layers: Sequence[int], store: dict[int, Any]) -> list[Any]:
    """Forward hooks putting the output hidden states of encoder layers ``layers`` in ``store[layer]``."""

    def hook(layer: int) -> Callable[..., None]:
        def keep(_m: Any, _args: Any, out: Any) -> None:
            store[layer] = out[0] if isinstance(out, tuple) else out

        return keep

    blocks = module.encoder.encoder.layer
    return [blocks[i].register_forward_hook(hook(i)) for i in layers]


def predict_hidden(
    module: Any, inputs: Inputs, layers: Sequence[int], batch_size: int = 64
) -> dict[int, npt.NDArray[np.float16]]:
    """The output hidden states of encoder ``layers`` per row (rows x tokens x width, fp16, 0 at padding).

    Rows are tokenized as in training (right padding), so row r's first n tokens line up with any
    batch that holds row r.
    """
    import torch

    module.eval()
    store: dict[int, Any] = {}
    parts: dict[int, list[Any]] = {layer: [] for layer in layers}
    hooks = _layer_outputs(module, layers, store)
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), batch_size):
                batch = inputs.batch(range(i, min(i + batch_size, len(inputs))))
                module(*batch)
                real = batch[1].unsqueeze(-1).to(torch.float32)  # padding positions stored as zeros
                for layer in layers:
                    parts[layer].append((store[layer] * real).to(torch.float16).numpy())
    finally:
        for hook in hooks:
            hook.remove()
    out = {}
    for layer, chunks in parts.items():
        width, tokens = chunks[0].shape[2], max(c.shape[1] for c in chunks)
        full = np.zeros((len(inputs), tokens, width), dtype=np.float16)
        row = 0
        for c in chunks:
            full[row : row + c.shape[0], : c.shape[1]] = c
            row += c.shape[0]
        out[layer] = full
    return out


def predict_with_features(
    module: Any, inputs: Inputs, batch_size: int = 64, *, features: bool = True
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32] | None]:
    """Softmax outputs of ``module`` over all rows and (``features``) the inputs of its ``head``."""
    import torch

    module.eval()
    out, feats = [], []
    captured: list[Any] = []
    hook = _head_inputs(module, captured) if features else None
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), batch_size):
                logits = module(*inputs.batch(range(i, min(i + batch_size, len(inputs)))))
                out.append(torch.softmax(logits, dim=1).double().numpy())
                if captured:
                    feats.append(captured.pop().float().numpy())
    finally:
        if hook is not None:
            hook.remove()
    return np.vstack(out), (np.vstack(feats) if features else None)


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
    teacher_features: npt.NDArray[np.float32] | None = None,
    teacher_hidden: Mapping[int, npt.NDArray[np.float16]] | None = None,
) -> tuple[float, int]:
    """Train ``module`` in place; returns (best validation accuracy, best epoch), its weights restored.

    ``teacher_features`` (rows x width, the teacher's head inputs) with ``settings.hidden_weight > 0``
    add the feature MSE term; ``module`` must then have a ``head`` whose input has that width.
    ``teacher_hidden`` (student layer -> the mapped teacher layer's hidden states per row, as
    ``predict_hidden`` gives them) with ``settings.layer_weight > 0`` add the hidden-state MSE term.
    """
    import torch
    from torch.nn import functional as F

    progress = progress or NoProgress()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    t = settings.temperature
    teacher = torch.log(torch.from_numpy(soft).float().clamp(min=1e-8)) / t
    targets = torch.softmax(teacher, dim=1)
    labels = torch.from_numpy(hard)
    matched = teacher_features is not None and settings.hidden_weight > 0
    hint = torch.from_numpy(teacher_features) if matched and teacher_features is not None else None
    captured: list[Any] = []
    hook = _head_inputs(module, captured) if hint is not None else None
    mapped = dict(teacher_hidden or {}) if settings.layer_weight > 0 else {}
    states: dict[int, Any] = {}
    layer_hooks = _layer_outputs(module, sorted(mapped), states) if mapped else []
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad],
        lr=settings.learning_rate or default_learning_rate,
    )
    batches = -(-len(train) // settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate_factor(settings, settings.epochs * batches))
    progress.stage(name, total=settings.epochs * batches)
    val_inputs, val_y = validation
    best = (-1.0, 0, copy.deepcopy(module.state_dict()))
    average = _Average(module, settings.ema_decay) if settings.ema_decay > 0 else None
    for epoch in range(1, settings.epochs + 1):
        module.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            batch = train.batch(idx.tolist())
            logits = module(*batch)
            loss = (
                settings.alpha
                * t
                * t
                * F.kl_div(F.log_softmax(logits / t, dim=1), targets[idx], reduction="batchmean")
            )
            if settings.alpha < 1 and bool((labels[idx] >= 0).any()):
                loss = loss + (1 - settings.alpha) * F.cross_entropy(logits, labels[idx], ignore_index=-1)
            if hint is not None:  # the head's input of this batch (validation calls also append: cleared)
                loss = loss + settings.hidden_weight * F.mse_loss(captured[-1], hint[idx])
                captured.clear()
            if mapped:
                loss = loss + settings.layer_weight * _hidden_loss(states, mapped, idx, batch[1])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it untyped
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(module)
            progress.advance()
            if isinstance(progress, ProgressNote):
                progress.note(f"epoch {epoch} loss {float(loss.detach()):.4f}")
        trained = average.swap_in(module) if average is not None else None
        accuracy = float((predict(module, val_inputs).argmax(axis=1) == val_y).mean())
        improved = accuracy > best[0]
        if improved:
            best = (accuracy, epoch, copy.deepcopy(module.state_dict()))
        if trained is not None:  # back to the raw weights to go on training
            module.load_state_dict(trained)
        if not improved and epoch - best[1] >= settings.patience:
            break
    for h in [hook, *layer_hooks]:
        if h is not None:
            h.remove()
    module.load_state_dict(best[2])
    module.eval()
    return best[0], best[1]


class _Average:
    """An exponential moving average of a module's floating-point weights and buffers."""

    def __init__(self, module: Any, decay: float) -> None:
        self._decay = decay
        self._state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def update(self, module: Any) -> None:
        import torch

        with torch.no_grad():
            for k, v in module.state_dict().items():
                if v.is_floating_point():
                    self._state[k].mul_(self._decay).add_(v.detach(), alpha=1 - self._decay)
                else:  # integer buffers (position ids) are not averaged
                    self._state[k].copy_(v)

    def swap_in(self, module: Any) -> dict[str, Any]:
        """Load the averaged weights into ``module``; returns a copy of the weights it had."""
        trained: dict[str, Any] = copy.deepcopy(module.state_dict())
        module.load_state_dict(self._state)
        return trained


def _hidden_loss(states: dict[int, Any], mapped: Mapping[int, Any], idx: Any, mask: Any) -> Any:
    """Mean over mapped layers of the MSE between student and teacher hidden states on real tokens."""
    import torch

    weights = mask.unsqueeze(-1).float()
    total = weights.sum().clamp(min=1.0)
    losses = []
    for layer, teacher in mapped.items():
        student = states[layer]
        target = torch.from_numpy(teacher[idx.numpy(), : student.shape[1]]).float()
        losses.append((((student - target) ** 2) * weights).sum() / (total * student.shape[2]))
    return torch.stack(losses).mean()
