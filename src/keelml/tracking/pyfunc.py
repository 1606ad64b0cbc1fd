"""Logging a keelml model as an MLflow pyfunc with explicit pip requirements (never inferred).

The model file is stored as an artifact; ``loader`` ("module:Class.method") turns its bytes back into
an object with ``predict_proba`` when MLflow loads it. The loader is named, not imported, here, so
tracking does not depend on the capability that trained the model.
"""

from __future__ import annotations

import importlib
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def resolve_loader(loader: str) -> Callable[[bytes], Any]:
    """``"package.module:Class.method"`` -> the callable.

    >>> resolve_loader("json:loads")(b"[1]")
    [1]
    """
    module_name, _, attr = loader.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]  # whatever the loader string names


def _python_model(loader: str) -> Any:
    import mlflow.pyfunc

    class KeelModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]  # mlflow is untyped
        def __init__(self) -> None:
            self.loader = loader
            self.model: Any = None

        def load_context(self, context: Any) -> None:
            self.model = resolve_loader(self.loader)(Path(context.artifacts["model"]).read_bytes())

        # no annotations: MLflow would read them as an input schema and warn
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return self.model.predict_proba(model_input)

    return KeelModel()


def log_pyfunc(
    run_id: str, tracking_uri: str, model_bytes: bytes, loader: str, pip_requirements: Sequence[str]
) -> str:
    """Log the model into run ``run_id``; returns its model URI for registration."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # type-hint signature notes: inputs are DataFrames
        path = Path(tmp) / "model.bin"
        path.write_bytes(model_bytes)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_python_model(loader),
            artifacts={"model": str(path)},
            pip_requirements=list(pip_requirements),
        )
    return str(info.model_uri)
