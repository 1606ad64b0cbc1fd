"""Tracked runs: params, per-epoch metrics, the dataset version as an input, tags, artifacts.

A run is a context manager; an exception inside marks it FAILED (never left RUNNING).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keelml.core.refs import DatasetRef


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested values as dotted string params (MLflow params are strings).

    >>> flatten({"a": {"b": 1}, "c": [1, 2], "d": None})
    {'a.b': '1', 'c': '[1, 2]', 'd': 'None'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def code_version(root: Path) -> str | None:
    """The git commit of ``root`` if it is in a repository (``-dirty`` if it has changes)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "") if sha else None


def environment() -> dict[str, str]:
    from importlib import metadata

    env = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("keelml", "torch", "transformers", "peft", "mlflow", "numpy", "pyarrow"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return env


class TrackedRun:
    """One MLflow run; implements the core ``RunLogger`` seam."""

    def __init__(self, client: Any, run_id: str, experiment_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        self.client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in sorted(flat.items())])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in sorted(metrics.items())]
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_dataset(self, ref: DatasetRef, *, source: str, schema: Mapping[str, str], rows: int) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=ref.name,
            digest=ref.digest[:36],
            source_type="keelml",
            source=json.dumps({"uri": source, "version": ref.version, "digest": ref.digest}),
            schema=json.dumps(dict(schema)),
            profile=json.dumps({"num_rows": rows}),
        )
        tags = [InputTag("mlflow.data.context", "training"), InputTag("keel.version", str(ref.version))]
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, tags)])

    def log_json(self, name: str, data: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
            self.client.log_artifact(self.run_id, str(path))

    def status(self) -> str:
        return str(self.client.get_run(self.run_id).info.status)


@contextmanager
def tracked_run(
    client: Any, experiment: str, *, run_name: str, artifact_location: str | None, root: Path
) -> Iterator[TrackedRun]:
    """Start a run with code-version and environment tags; FINISHED on success, FAILED on error."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id
        if found is not None
        else client.create_experiment(experiment, artifact_location=artifact_location)
    )
    tags = {f"keel.env.{k}": v for k, v in environment().items()}
    version = code_version(root)
    if version:
        tags["mlflow.source.git.commit"] = version
        tags["keel.code_version"] = version
    tags["mlflow.source.name"] = " ".join(sys.argv[:3])[:250] or "python"
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    tracked = TrackedRun(client, run.info.run_id, experiment_id)
    try:
        yield tracked
    except BaseException:
        client.set_terminated(tracked.run_id, "FAILED")
        raise
    client.set_terminated(tracked.run_id, "FINISHED")
