"""Scoring the pool with a registered model (``--model NAME@V``) instead of training the default one.

The model is rebuilt from its artifact bytes by the loader string the registry recorded on the version
(tag ``keel.loader``), resolved with importlib at run time: labeling never imports the training
capability (docs/adr/0001-layers.md).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from keelml.core.errors import InvalidInputError, NotFoundError
from keelml.core.refs import ArtifactRef
from keelml.labeling.models import Featurizer, infer_features
from keelml.labeling.protocol import ModelOutputs, Strategy
from keelml.labeling.strategies import HybridStrategy

# Versions registered before the registry stored ``keel.loader``: the loader by task, as a string.
TASK_LOADERS = {
    "tabular": "keelml.train.tabular:TabularClassifier.from_bytes",
    "text": "keelml.train.text:TextClassifier.from_bytes",
}


def is_registered(models: Any, spec: str) -> bool:
    """True when ``spec`` (NAME, NAME@VERSION or NAME@ALIAS) names a registered model version."""
    try:
        models.show(spec)
    except NotFoundError:
        return False
    return True


def _resolve(loader: str) -> Any:
    module_name, _, attr = loader.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def load_registered(ws: Any, spec: str) -> tuple[Any, str]:
    """(the model object, ``NAME@VERSION``) of a registered keelml-trained version."""
    info = ws.models.show(spec)
    loader = info.tags.get("keel.loader") or TASK_LOADERS.get(str(info.tags.get("keel.task")))
    if not loader or info.artifact is None or "keel.format" in info.tags:
        raise InvalidInputError(
            f"{spec} cannot score rows for labeling",
            expected="a version registered by `keel train tabular|text` (tags keel.loader, keel.artifact)",
            received=f"loader={loader or 'none'}, artifact={info.artifact or 'none'}, "
            f"format={info.tags.get('keel.format', 'torch')}",
            fix="pass a model trained with `keel train` (not an exported variant), or leave out --model",
        )
    model = _resolve(str(loader))(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes"):
        raise InvalidInputError(
            f"{spec} has no predict_proba", received=type(model).__name__, fix="leave out --model"
        )
    return model, f"{info.name}@{info.version}"


def registered_outputs(
    ws: Any, view: Any, strategy: Strategy, spec: str
) -> tuple[ModelOutputs, str, list[str]]:
    """The registered model's class probabilities on the unlabeled rows (plus feature embeddings
    for strategies that need them), its ``NAME@VERSION`` and its class order."""
    model, name = load_registered(ws, spec)
    classes = [str(c) for c in model.classes]
    outside = sorted(view.classes - set(classes))
    if outside:
        raise InvalidInputError(
            f"{view.ref} has labels that {name} cannot predict",
            expected=f"labels among the model's classes {', '.join(classes)}",
            received=", ".join(outside[:5]),
            fix="pass a model trained on this label set, or leave out --model to train one",
        )
    pool = view.unlabeled_index
    probs = np.asarray(model.predict_proba(view.table.take(pool)), dtype=np.float64)
    outputs = ModelOutputs(probs=probs)
    if "embeddings" in strategy.requires or isinstance(strategy, HybridStrategy):
        exclude = {view.id_column, view.label_column} | ({view.time_column} if view.time_column else set())
        featurizer = Featurizer(infer_features(view.table, exclude))
        dense = featurizer.embed(featurizer.fit_transform(view.table))
        outputs = ModelOutputs(
            probs=probs, embeddings=dense[pool], labeled_embeddings=dense[view.labeled_mask]
        )
    return outputs, name, classes
