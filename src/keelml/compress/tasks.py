"""What compress needs of each task's model, reached structurally (the train classes are never imported).

A tabular model is ``(module: nn.Sequential of Linear/ReLU, preprocessor, classes, config)``; a text
model is ``(module with .encoder (BERT-like) and .head, tokenizer, classes, config)``; both rebuild with
``type(model)(...)`` in that order and save with ``to_bytes()``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyarrow as pa

from keelml.compress.fitting import Inputs, TensorInputs, TextInputs


def inputs(model: Any, task: str, table: pa.Table) -> Inputs:
    """Module-ready rows of ``table`` for ``model``."""
    if task == "text":
        return TextInputs(model, [str(t) for t in table[model.config.text].to_pylist()])
    import torch

    return TensorInputs(torch.from_numpy(model.preprocessor.transform(table.to_pandas())))


def rebuild(original: Any, task: str, module: Any, **config_changes: Any) -> Any:
    """A new model of the same class around ``module`` with the config fields changed."""
    config = replace(original.config, **config_changes)
    if task == "text":
        return type(original)(module, original.tokenizer, original.classes, config)
    return type(original)(module, original.preprocessor, original.classes, config)


def torch_module(model: Any, task: str) -> Any:
    """The plain torch module, with a text model's adapter (LoRA / IA3) merged into the weights."""
    if task == "text" and hasattr(model, "merged"):
        return model.merged().module
    return model.module


def parameter_count(model: Any) -> int:
    return sum(int(p.numel()) for p in model.module.parameters())


def mlp(widths: list[int]) -> Any:
    """``Linear -> ReLU -> ... -> Linear`` over ``widths`` (input, hidden..., classes), as train builds it."""
    from torch import nn

    layers: list[Any] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linears(module: Any) -> list[Any]:
    from torch import nn

    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def sliced(linear: Any, rows: Any = None, cols: Any = None) -> Any:
    """A copy of ``linear`` keeping output units ``rows`` and input units ``cols`` (None: all)."""
    import torch
    from torch import nn

    weight = linear.weight.data
    bias = None if linear.bias is None else linear.bias.data
    if rows is not None:
        weight, bias = weight[rows], None if bias is None else bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(weight)
        if bias is not None:
            out.bias.copy_(bias)
    return out
