"""``ws.models``: the model registry (MLflow) joined to the catalog's lineage.

Each registered version is an MLflow model version and a lineage node ``model:NAME@V`` with an edge
from the dataset version it was trained on; the node is pinned, so `keel gc` keeps that data.
Aliases (``staging``, ``production``) move only through :meth:`ModelRegistry.promote`, which runs the
gates of keel.toml; each alias keeps its history so :meth:`ModelRegistry.rollback` can step back.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keelml.core.errors import ConflictError, InvalidInputError, NotFoundError
from keelml.core.refs import ArtifactRef, DatasetRef, ModelRef, check_name
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.tracking import backend
from keelml.tracking.gates import GateResult, GatesConfig, evaluate_gates
from keelml.tracking.pyfunc import log_pyfunc
from keelml.tracking.runs import TrackedRun, tracked_run

ALIASES = ("staging", "production")
_HISTORY = "keel.alias_history."


class ModelNotFoundError(NotFoundError, KeyError):
    """No registered model, version or alias by that name."""

    def __str__(self) -> str:
        return NotFoundError.__str__(self)


class PromotionRefusedError(ConflictError):
    """One or more gates failed; ``gates`` holds every gate's result."""

    def __init__(self, problem: str, gates: Sequence[GateResult], **kw: str) -> None:
        super().__init__(problem, **kw)
        self.gates = tuple(gates)


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str
    dataset: str | None
    artifact: str | None
    metrics: Mapping[str, float]
    tags: Mapping[str, str]

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "dataset": self.dataset,
            "artifact": self.artifact,
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    ref: ModelRef
    alias: str
    previous: int | None
    gates: tuple[GateResult, ...]
    forced_reason: str | None


def _parse(spec: str) -> tuple[str, str | None]:
    name, _, selector = spec.partition("@")
    check_name(name, "model")
    return name, (selector or None)


def _check_alias(alias: str) -> str:
    if alias not in ALIASES:
        raise InvalidInputError(
            f"unknown alias {alias!r}",
            expected=" or ".join(ALIASES),
            received=alias,
            fix="promote with --alias staging or --alias production",
        )
    return alias


class ModelRegistry:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self.uri = backend.tracking_uri(ws)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = backend.client(self.uri)
        return self._client

    def gates(self) -> GatesConfig:
        return GatesConfig.from_mapping((self._ws.config.model_extra or {}).get("gates"))

    # -- runs and registration ------------------------------------------------------------------

    def run(self, experiment: str, run_name: str) -> Any:
        """A context manager yielding a :class:`TrackedRun` (FAILED if the block raises)."""
        return tracked_run(
            self.client, experiment, run_name=run_name,
            artifact_location=backend.artifact_location(self._ws), root=self._ws.root,
        )  # fmt: skip

    def register(
        self,
        name: str,
        run: TrackedRun,
        *,
        artifact: ArtifactRef,
        dataset: DatasetRef,
        metrics: Mapping[str, float],
        loader: str,
        pip_requirements: Sequence[str],
        task: str,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Log and register a version; ``tags`` are extra version tags (e.g. ``keel.variant``)."""
        check_name(name, "model")
        model_uri = log_pyfunc(
            run.run_id, self.uri, self._ws.artifacts.read_bytes(artifact), loader, pip_requirements
        )
        tags = {
            "keel.dataset": str(dataset),
            "keel.dataset_digest": dataset.digest,
            "keel.artifact": artifact.digest,
            "keel.loader": loader,  # how to rebuild the model from the artifact's bytes
            **(tags or {}),
        }
        if self.client.search_registered_models(filter_string=f"name = '{name}'") == []:
            self.client.create_registered_model(name)
        # a tracking server (not the embedded store) insists on the logged model's id with its URI
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None
        version = self.client.create_model_version(
            name, model_uri, run_id=run.run_id, tags={**tags, "keel.task": task}, model_id=model_id
        )
        ref = ModelRef(name, int(version.version))
        lineage = self._ws.catalog.lineage
        with self._ws.catalog.begin() as conn:
            lineage.add_node(
                conn, ref.node_id, "model", name, ref.version,
                {"artifacts": [artifact.digest], "run_id": run.run_id, "task": task, "metrics": dict(metrics),
                 "mlflow_model_uri": model_uri, "pip_requirements": list(pip_requirements),
                 **({"variant": tags["keel.variant"]} if "keel.variant" in tags else {})},
            )  # fmt: skip
            lineage.add_edge(conn, dataset.node_id, ref.node_id, "trained")
        lineage.pin(ref.node_id, f"registered model {ref}")
        return self.show(str(ref))

    # -- reading --------------------------------------------------------------------------------

    def _version(self, spec: str) -> Any:
        name, selector = _parse(spec)
        from mlflow.exceptions import MlflowException

        try:
            if selector is None or selector == "latest":
                versions = self.client.search_model_versions(f"name = '{name}'")
                if not versions:
                    raise MlflowException(f"no versions of {name}")
                newest = max(versions, key=lambda v: int(v.version))
                return self.client.get_model_version(name, newest.version)  # search omits aliases
            if selector.isdigit():
                return self.client.get_model_version(name, selector)
            return self.client.get_model_version_by_alias(name, selector)
        except MlflowException as exc:
            known = ", ".join(m.name for m in self.client.search_registered_models()) or "none yet"
            raise ModelNotFoundError(
                f"no registered model version {spec!r}",
                expected="NAME, NAME@VERSION or NAME@ALIAS of a registered model",
                received=f"{spec} (models: {known})",
                fix="see `keel models list` and `keel models show NAME`",
            ) from exc

    def show(self, spec: str) -> ModelVersionInfo:
        mv = self._version(spec)
        run = self.client.get_run(mv.run_id)
        tags = dict(mv.tags)
        return ModelVersionInfo(
            name=mv.name,
            version=int(mv.version),
            aliases=tuple(sorted(mv.aliases)),
            run_id=mv.run_id,
            dataset=tags.get("keel.dataset"),
            artifact=tags.get("keel.artifact"),
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            tags=tags,
        )

    def list(self) -> list[ModelVersionInfo]:
        """The newest version of each registered model."""
        return [
            self.show(m.name) for m in sorted(self.client.search_registered_models(), key=lambda m: m.name)
        ]

    def versions(self, name: str) -> builtins.list[ModelVersionInfo]:
        self._version(name)
        found = self.client.search_model_versions(f"name = '{name}'")
        return [self.show(f"{name}@{v.version}") for v in sorted(found, key=lambda v: int(v.version))]

    def history(self, name: str, alias: str) -> builtins.list[int]:
        raw = self.client.get_registered_model(name).tags.get(_HISTORY + alias, "[]")
        return [int(v) for v in json.loads(raw)]

    def card(self, spec: str) -> Any:
        """The :class:`~keelml.tracking.cards.ModelCard` of a version, with its gates evaluated now."""
        from keelml.tracking.cards import ModelCard

        info = self.show(spec)
        graph = self._ws.catalog.lineage.graph(info.ref.node_id, "upstream")
        params = dict(self.client.get_run(info.run_id).data.params)
        return ModelCard(info, graph, params, tuple(evaluate_gates(self.gates(), self.gate_metrics(info))))

    def gate_metrics(self, info: ModelVersionInfo) -> dict[str, float]:
        """The version's metrics plus ``latency_p95_ms`` from its latest `keel bench` (via ``ws.exports``)."""
        metrics = dict(info.metrics)
        exports = getattr(self._ws, "exports", None)  # absent when keelml.export is not imported
        if "latency_p95_ms" not in metrics and exports is not None:
            latency = exports.latest_latency_ms(f"{info.name}@{info.version}", quantile="p95")
            if latency is not None:
                metrics["latency_p95_ms"] = latency
        return metrics

    # -- promotion ------------------------------------------------------------------------------

    def promote(self, spec: str, alias: str, *, force_reason: str | None = None) -> Promotion:
        """Move ``alias`` to this version if every gate passes (or ``force_reason`` is given)."""
        _check_alias(alias)
        if force_reason is not None and not force_reason.strip():
            raise InvalidInputError(
                "a forced promotion needs a reason",
                expected="a non-empty --reason",
                received=repr(force_reason),
                fix='pass --force --reason "why the gates may be overridden"',
            )
        info = self.show(spec)
        results = tuple(evaluate_gates(self.gates(), self.gate_metrics(info)))
        failed = [r for r in results if r.status == "failed"]
        if failed and force_reason is None:
            raise PromotionRefusedError(
                f"{info.ref} was not promoted to {alias}: {len(failed)} gate(s) failed",
                results,
                expected="every gate in [gates] of keel.toml to pass",
                received="; ".join(f"{r.name}: {r.detail}" for r in failed),
                fix='improve the model, or override with --force --reason "..." (recorded)',
            )
        history = self.history(info.name, alias)
        previous = history[-1] if history else None
        self.client.set_registered_model_alias(info.name, alias, str(info.version))
        self.client.set_registered_model_tag(
            info.name, _HISTORY + alias, json.dumps([*history, info.version])
        )
        record = {"alias": alias, "gates": [r.to_json() for r in results], "forced_reason": force_reason}
        self.client.set_model_version_tag(
            info.name, str(info.version), f"keel.promotion.{alias}", json.dumps(record)
        )
        if force_reason is not None:
            self.client.set_model_version_tag(
                info.name, str(info.version), "keel.forced_reason", force_reason
            )
        return Promotion(info.ref, alias, previous, results, force_reason)

    def rollback(self, name: str, alias: str) -> ModelRef:
        """Point ``alias`` back at the version it named before the last promotion."""
        _check_alias(alias)
        self._version(name)
        history = self.history(name, alias)
        if len(history) < 2:
            raise ConflictError(
                f"{name}@{alias} has no earlier version to roll back to",
                expected="an alias promoted at least twice",
                received=f"history {history or 'empty'}",
                fix=f"promote a version with `keel models promote {name}@V --alias {alias}`",
            )
        target = history[-2]
        self.client.set_registered_model_alias(name, alias, str(target))
        self.client.set_registered_model_tag(name, _HISTORY + alias, json.dumps(history[:-1]))
        return ModelRef(name, target)


@workspace_accessor("models")
def _models(ws: Workspace) -> ModelRegistry:
    return ModelRegistry(ws)
