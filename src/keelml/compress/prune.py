"""Structured pruning that shrinks the matrices, so CPU time falls with the parameter count.

Units are ranked by first-order Taylor importance, sum |w * dL/dw| over a few training batches, for all
weights a unit owns: an MLP neuron (its row in one Linear and column in the next), an attention head
(its rows in query/key/value and columns in the attention output) or a feed-forward unit (its row in
the intermediate Linear and column in the output Linear). Every layer keeps the same share. The pruned
model then recovers by distillation from the unpruned one. Unstructured (magnitude) pruning is not
offered: zeros in dense matrices do not make PyTorch or ONNX Runtime on CPU any faster (see
docs/compress.md and benchmarks/results/compress.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from keelml.compress.fitting import FitSettings, Inputs, fit_student, predict, predict_hidden
from keelml.compress.source import Source
from keelml.compress.tasks import inputs, linears, mlp, parameter_count, rebuild, sliced, torch_module
from keelml.core.errors import InvalidInputError
from keelml.core.progress import Progress


@dataclass(frozen=True, slots=True)
class PruneConfig:
    """``amount``: share of heads / feed-forward units / neurons removed from every layer.

    ``steps`` > 1 prunes gradually: ``amount / steps`` of the original units per step, each step
    ranked afresh on the recovered model and followed by ``fit`` (recovery by distillation).
    ``fit.layer_weight`` > 0 (transformers only) also matches the output of every layer to the
    unpruned model's same layer (pruning keeps the depth and the residual width).
    """

    amount: float = 0.5
    importance_batches: int = 4
    steps: int = 1
    fit: FitSettings = field(default_factory=lambda: FitSettings(epochs=2))

    def __post_init__(self) -> None:
        if not 0 < self.amount < 1 or self.importance_batches < 1 or self.steps < 1:
            raise InvalidInputError(
                "invalid pruning settings",
                expected="amount strictly between 0 and 1, importance_batches >= 1, steps >= 1",
                received=f"amount={self.amount}, importance_batches={self.importance_batches}, "
                f"steps={self.steps}",
                fix="e.g. amount 0.5 removes half of the heads and feed-forward units of each layer",
            )


@dataclass(frozen=True, slots=True)
class Pruned:
    model: Any
    description: str
    parameters: int
    original_parameters: int
    validation_accuracy: float


def _keep(n: int, amount: float) -> int:
    return max(1, round(n * (1 - amount)))


def _gradients(module: Any, rows: Inputs, labels: Any, batches: int, batch_size: int = 32) -> None:
    """Accumulate dL/dw of the cross-entropy on the first ``batches`` batches into ``.grad``."""
    import torch

    module.eval()  # no dropout: rank on the function the model computes
    module.zero_grad()
    for b in range(min(batches, -(-len(rows) // batch_size))):
        index = list(range(b * batch_size, min((b + 1) * batch_size, len(rows))))
        loss = torch.nn.functional.cross_entropy(module(*rows.batch(index)), torch.as_tensor(labels[index]))
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it untyped


def _score(linear: Any, dim: int) -> Any:
    """Taylor importance of each output (dim 0) or input (dim 1) unit of a Linear."""
    saliency = (linear.weight.data * linear.weight.grad).abs()
    score = saliency.sum(dim=1 - dim)
    if dim == 0 and linear.bias is not None:
        score = score + (linear.bias.data * linear.bias.grad).abs()
    return score


def prune_mlp(
    module: Any, amount: float, original: tuple[int, ...] | None = None
) -> tuple[Any, tuple[int, ...]]:
    """A new Sequential MLP keeping the most important neurons of each hidden layer.

    ``amount`` is a share of ``original`` (the hidden widths before any pruning; default: the
    current ones), so gradual pruning can call this repeatedly with a growing amount.
    """
    layers = linears(module)
    widths = original or tuple(layer.out_features for layer in layers[:-1])
    keep_prev = None
    new = []
    for i, layer in enumerate(layers):
        rows = None
        if i < len(layers) - 1:
            score = _score(layer, 0) + _score(layers[i + 1], 1)
            rows = score.argsort(descending=True)[: _keep(widths[i], amount)].sort().values
        new.append(sliced(layer, rows, keep_prev))
        keep_prev = rows
    hidden = tuple(layer.out_features for layer in new[:-1])
    out = mlp([new[0].in_features, *hidden, new[-1].out_features])
    for target, source in zip(linears(out), new, strict=True):
        target.load_state_dict(source.state_dict())
    return out, hidden


def prune_encoder(encoder: Any, amount: float) -> dict[str, list[int]]:
    """Remove heads and feed-forward units of every layer in place; returns the per-layer shapes.

    ``amount`` is a share of the encoder's original heads and units (its config's, before any
    pruning), so gradual pruning calls this repeatedly with a growing amount.
    """
    import torch

    config = encoder.config
    structure: dict[str, list[int]] = {"heads": [], "intermediate": []}
    for layer in encoder.encoder.layer:
        attn, out = layer.attention.self, layer.attention.output.dense
        size, heads = attn.attention_head_size, attn.num_attention_heads
        unit = _score(attn.query, 0) + _score(attn.key, 0) + _score(attn.value, 0) + _score(out, 1)
        per_head = unit.view(heads, size).sum(dim=1)
        keep_heads = min(heads, _keep(int(config.num_attention_heads), amount))
        kept = per_head.argsort(descending=True)[:keep_heads].sort().values
        rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in kept.tolist()])
        attn.query, attn.key, attn.value = (sliced(getattr(attn, n), rows) for n in ("query", "key", "value"))
        attn.num_attention_heads, attn.all_head_size = len(kept), len(kept) * size
        layer.attention.output.dense = sliced(out, None, rows)
        up, down = layer.intermediate.dense, layer.output.dense
        keep_units = min(up.out_features, _keep(int(config.intermediate_size), amount))
        ffn = (_score(up, 0) + _score(down, 1)).argsort(descending=True)[:keep_units]
        ffn = ffn.sort().values
        layer.intermediate.dense, layer.output.dense = sliced(up, ffn), sliced(down, None, ffn)
        structure["heads"].append(len(kept))
        structure["intermediate"].append(len(ffn))
    encoder.config.keel_structure = structure
    return structure


def _same_layer_states(original: Any, task: str, rows: Inputs, fit: FitSettings) -> dict[int, Any] | None:
    """Each layer's output hidden states of the unpruned encoder (for ``fit.layer_weight`` > 0)."""
    if fit.layer_weight <= 0:
        return None
    if task != "text":
        raise InvalidInputError(
            "layer matching needs a transformer: a pruned MLP's hidden layers are narrower than the parent's",
            expected="fit.layer_weight = 0 when pruning a tabular model",
            received=f"layer_weight={fit.layer_weight} for a {task} model",
            fix="drop layer_weight from the pruning's FitSettings",
        )
    layers = list(range(len(original.encoder.encoder.layer)))
    return predict_hidden(original, rows, layers)


def prune(source: Source, config: PruneConfig | None = None, *, progress: Progress | None = None) -> Pruned:
    """Prune ``source.model`` structurally, then recover by distillation from the unpruned model."""
    config = config or PruneConfig()
    model, task = source.model, source.task
    original = torch_module(model, task)
    if task != "text" and len(linears(original)) < 2:
        raise InvalidInputError(
            f"{source.spec} has no hidden layer to prune",
            expected="an MLP (model = mlp) with at least one hidden layer",
            received="logistic regression (one Linear layer)",
            fix="prune an MLP model; logistic regression is already as small as it gets",
        )
    # pruning keeps the tokenizer / preprocessor, so the parent's inputs serve every step
    train_rows, labels = inputs(model, task, source.parts["train"]), source.labels("train")
    soft = predict(original, train_rows)  # the unpruned model teaches every step
    states = _same_layer_states(original, task, train_rows, config.fit)
    validation = (inputs(model, task, source.parts["validation"]), source.labels("validation"))
    widths = tuple(layer.out_features for layer in linears(original)[:-1])
    current, module = model, copy.deepcopy(original)
    for step in range(1, config.steps + 1):
        amount = config.amount * step / config.steps
        for p in module.parameters():
            p.requires_grad_(True)
        _gradients(module, train_rows, labels, config.importance_batches)
        if task == "text":
            structure = prune_encoder(module.encoder, amount)
            current = rebuild(model, task, module, peft="full")
            description = f"heads {structure['heads']}, feed-forward {structure['intermediate']}"
        else:
            module, hidden = prune_mlp(module, amount, widths)
            current = rebuild(model, task, module, hidden=hidden, model="mlp")
            description = f"MLP hidden {list(hidden)}"
        module.zero_grad(set_to_none=True)
        module = current.module
        step_name = f" (step {step} of {config.steps})" if config.steps > 1 else ""
        accuracy, _ = fit_student(
            module, train_rows, soft, labels, validation, config.fit,
            default_learning_rate=1e-4 if task == "text" else 1e-2, progress=progress,
            name=f"recovering {source.spec} pruned by {amount:.0%}{step_name}", teacher_hidden=states,
        )  # fmt: skip
    if config.steps > 1:
        description += f", in {config.steps} steps"
    return Pruned(current, description, parameter_count(current), parameter_count(model), accuracy)
