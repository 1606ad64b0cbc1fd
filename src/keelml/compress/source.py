"""The model being compressed: its registry entry, the loaded object and the rows it was trained on.

compress never imports ``keelml.train``: the model is rebuilt from its artifact with the loader string
recorded in the registry (``keel.loader``, or the task's loader for versions registered before that
tag existed), and the train / validation / test rows come from ``ws.training.split``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from keelml.core.errors import InvalidInputError
from keelml.core.refs import ArtifactRef
from keelml.core.workspace import Workspace

LOADERS: Mapping[str, str] = {
    "tabular": "keelml.train.tabular:TabularClassifier.from_bytes",
    "text": "keelml.train.text:TextClassifier.from_bytes",
}


def resolve(loader: str) -> Any:
    """``"package.module:Class.method"`` -> the object it names."""
    module_name, _, attr = loader.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


@dataclass(frozen=True, slots=True)
class Source:
    """A registered model version loaded for compression."""

    spec: str
    info: Any  # ModelVersionInfo of ws.models
    model: Any  # TabularClassifier or TextClassifier (duck-typed: predict_proba, module, config, classes)
    task: str
    loader: str
    parts: Mapping[str, pa.Table]
    label: str

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.model.classes)

    def labels(self, part: str) -> Any:
        """Class indices of a part's rows (a numpy int64 array)."""
        import numpy as np

        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[str(v)] for v in self.parts[part][self.label].to_pylist()], dtype=np.int64)


def load_source(ws: Workspace, spec: str) -> Source:
    """Load ``NAME[@VERSION|@ALIAS]`` and the split it was trained and tested on."""
    models: Any = ws.models
    info = models.show(spec)
    task = info.tags.get("keel.task", "")
    loader = info.tags.get("keel.loader") or LOADERS.get(task)
    if loader is None or info.artifact is None or info.dataset is None:
        raise InvalidInputError(
            f"{spec} is not a keelml-trained model that can be compressed",
            expected="a version registered by `keel train tabular|text` (tags keel.task, keel.artifact)",
            received=f"task={task or 'none'}, artifact={info.artifact or 'none'}",
            fix="train and register the model with keelml first",
        )
    model = resolve(loader)(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))
    if not hasattr(model, "module") or not hasattr(model, "config"):
        raise InvalidInputError(
            f"{spec} is not a torch model (its loader is {loader})",
            expected="a tabular MLP or text classifier version, not an exported ONNX variant",
            received=type(model).__name__,
            fix="compress the fp32 parent version; quantized variants are made from it by `keel compress`",
        )
    parts, label = ws.training.split(info.dataset, model.config, task=task)
    return Source(f"{info.name}@{info.version}", info, model, task, loader, parts, label)
