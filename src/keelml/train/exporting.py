"""What a trained model hands to export: a probability module, example inputs and its preprocessing as data.

``keelml.export`` reads this structurally (its ``Exportable`` protocol); train never imports export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ExportSource:
    """Everything export needs of a model, with the preprocessing as JSON-able data.

    ``module`` maps ``example_inputs`` (named ``input_names``) to class probabilities; ``fields`` are the
    raw input columns with their kind (``text``, ``number`` or ``category``); ``files`` are extra
    preprocessing files (``tokenizer.json``) stored next to the exported graph.
    """

    task: str
    module: Any
    example_inputs: tuple[Any, ...]
    input_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    classes: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    preprocessing: Mapping[str, Any]
    config: Mapping[str, Any]
    files: Mapping[str, bytes] = field(default_factory=dict)


def probability_module(module: Any) -> Any:
    """``module`` followed by a softmax over classes, in eval mode."""
    import torch
    from torch import nn

    class Probabilities(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(*inputs), dim=-1)

    return Probabilities().eval()
