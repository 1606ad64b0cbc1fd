"""The federated tabular model: the same MLP and file format as ``keel train tabular``.

Weights travel as a list of float32 numpy arrays in ``state_dict`` order. The saved file is a
``keelml.tabular/1`` payload (config, preprocessing, classes, state), so the registry, ``keel serve``
and export load a federated model exactly like a centrally trained one.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.federated.preprocessing import TaskSpec

Weights = list[npt.NDArray[np.float32]]
FORMAT = "keelml.tabular/1"
LOADER = "keelml.train.tabular:TabularClassifier.from_bytes"


def build_module(n_in: int, n_out: int, hidden: Sequence[int]) -> Any:
    """``nn.Sequential`` of Linear/ReLU, the layout train's ``mlp`` model saves (used only to save)."""
    from torch import nn

    layers: list[Any] = []
    width = n_in
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def initial_weights(spec: TaskSpec, hidden: Sequence[int], seed: int) -> Weights:
    """torch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in state_dict order."""
    rng = np.random.default_rng(seed)
    sizes = [len(spec.preprocessing.output_names), *hidden, len(spec.classes)]
    out: Weights = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1.0 / np.sqrt(fan_in)
        out.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        out.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return out


# The fast path trains in numpy: an MLP this small gains nothing from torch, and not importing torch
# (several seconds on a busy machine) is most of the cold start.


def _forward(
    weights: Weights, x: npt.NDArray[np.float32]
) -> tuple[list[npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
    acts = [x]
    h = x
    layers = len(weights) // 2
    for i in range(layers):
        h = h @ weights[2 * i].T + weights[2 * i + 1]
        if i < layers - 1:
            h = np.maximum(h, 0.0)
            acts.append(h)
    return acts, h


def _softmax_loss(
    logits: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
) -> tuple[float, npt.NDArray[np.float32]]:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(np.maximum(p[np.arange(n), y], 1e-12)).mean())
    p[np.arange(n), y] -= 1.0
    return loss, p / n


def _gradients(
    weights: Weights, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
) -> tuple[float, Weights]:
    acts, logits = _forward(weights, x)
    loss, delta = _softmax_loss(logits, y)
    grads: Weights = [np.empty(0, np.float32)] * len(weights)
    for i in reversed(range(len(weights) // 2)):
        grads[2 * i] = delta.T @ acts[i]
        grads[2 * i + 1] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ weights[2 * i]) * (acts[i] > 0)
    return loss, grads


@dataclass(frozen=True, slots=True)
class LocalResult:
    weights: Weights
    examples: int
    loss: float


def train_local(
    weights: Weights,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    proximal_mu: float,
    seed: int,
    momentum: float = 0.9,
) -> LocalResult:
    """Mini-batch SGD with momentum (torch's update rule) from the global weights; ``proximal_mu > 0``
    adds FedProx's proximal term ``mu/2 * ||w - w_global||^2``."""
    anchor = weights
    w = [a.copy() for a in weights]
    velocity = [np.zeros_like(a) for a in weights]
    rng = np.random.default_rng(seed)
    total, seen = 0.0, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss, grads = _gradients(w, x[idx], y[idx])
            for j, g in enumerate(grads):
                if proximal_mu > 0:
                    g = g + proximal_mu * (w[j] - anchor[j])
                velocity[j] = momentum * velocity[j] + g
                w[j] = (w[j] - learning_rate * velocity[j]).astype(np.float32)
            total += loss * len(idx)
            seen += len(idx)
    return LocalResult(w, len(x), total / max(seen, 1))


def evaluate(weights: Weights, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> dict[str, float]:
    if len(y) == 0:
        return {"accuracy": float("nan"), "loss": float("nan")}
    logits = _forward(weights, x)[1]
    loss = _softmax_loss(logits, y)[0]
    return {"accuracy": float((logits.argmax(axis=1) == y).mean()), "loss": loss}


def model_bytes(weights: Weights, spec: TaskSpec, *, hidden: Sequence[int], label: str, seed: int) -> bytes:
    """The ``keelml.tabular/1`` file of the final global model."""
    import torch

    module = build_module(len(spec.preprocessing.output_names), len(spec.classes), hidden)
    keys = list(module.state_dict())
    module.load_state_dict({k: torch.from_numpy(np.asarray(w)) for k, w in zip(keys, weights, strict=True)})
    config = {"label": label, "model": "mlp", "hidden": list(hidden), "seed": seed}
    payload = {
        "format": FORMAT,
        "config": json.dumps(config),
        "preprocessor": json.dumps(spec.preprocessing.to_json()),
        "classes": list(spec.classes),
        "state": module.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()
