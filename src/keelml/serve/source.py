"""Models and features from a workspace: the registry alias, the exported ONNX bundle, the online store.

The only module of the service that touches the workspace; everything else works on the small
protocols of :mod:`keelml.serve.model` and :mod:`keelml.serve.inputs`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import keelml.export  # noqa: F401  (registers ws.exports; importing it never imports torch)
from keelml.core import catalog_schema as t
from keelml.core.errors import ConfigError
from keelml.core.workspace import Workspace
from keelml.serve.inputs import RequestError
from keelml.serve.model import LoadedModel, schema_of

log = logging.getLogger("keelml.serve")


def describe(ws: Workspace, info: Any) -> dict[str, Any]:
    """Lineage and a model-card summary for ``GET /v1/model`` (computed once per loaded version)."""
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "dataset": info.dataset,
        "aliases": list(info.aliases),
        "metrics": dict(info.metrics),
    }
    try:
        card = ws.models.card(f"{info.name}@{info.version}")
        out["lineage"] = [f"{e.src} -> {e.dst} ({e.relation})" for e in card.lineage.edges]
        out["gates"] = [g.to_json() for g in card.gates]
        out["limitations"] = card.limitations()
    except Exception as exc:  # a card is documentation: a gap in it must not stop serving
        out["card_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return out


class RegistrySource:
    """Resolve NAME@ALIAS through ``ws.models`` and load its ONNX bundle through ``ws.exports``."""

    def __init__(self, ws: Workspace, *, threads: int = 1, spinning: bool = False) -> None:
        self._ws = ws
        self._threads = threads
        self._spinning = spinning

    def version_of(self, spec: str) -> int:
        return int(self._ws.models.show(spec).version)

    def load(self, spec: str) -> LoadedModel:
        target = self._ws.models.show(spec)
        # pin the version: the alias may move between this line and the next
        info, model = self._ws.exports.serving_model(
            f"{target.name}@{target.version}", threads=self._threads, spinning=self._spinning
        )
        description = describe(self._ws, info)
        description["alias_target"] = f"{target.name}@{target.version}"
        return LoadedModel(
            name=info.name,
            version=int(info.version),
            model=model,
            schema=schema_of(model.info),
            description=description,
            resolved=int(target.version),
        )


class OnlineFeatures:
    """Entity keys to stored feature values through ``ws.features.get_online_features``."""

    def __init__(self, ws: Workspace, features: Sequence[str]) -> None:
        self._store = ws.features
        self.features = tuple(features)
        views = {f.split(":", 1)[0] for f in features if ":" in f}
        known = {v.name: v for v in self._store.repo.views}
        missing = sorted(views - set(known))
        if missing:
            raise ConfigError(
                f"[serve] features name unknown feature views: {', '.join(missing)}",
                expected=f"VIEW:FEATURE with a view among {', '.join(sorted(known)) or 'none defined'}",
                received=", ".join(features),
                fix="correct [serve] features in keel.toml (see `keel features list`)",
            )
        self.keys = tuple(dict.fromkeys(k for name in sorted(views) for k in known[name].entity.keys))
        wanted = {f.split(":", 1)[-1] for f in features}
        self.request_fields = tuple(
            dict.fromkeys(r for d in self._store.repo.derived if d.name in wanted for r in d.request)
        )

    def lookup(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        try:
            found = self._store.get_online_features(rows, self.features)
        except ValueError as exc:  # wrong key types and the like are the caller's mistake
            raise RequestError(422, "rows", "entity keys the feature store accepts",
                               str(exc).splitlines()[0][:120]) from None  # fmt: skip
        return [dict(r) for r in found.rows]


def deployment_node(spec: str, version: int) -> str:
    """The lineage id of serving ``spec`` (NAME@ALIAS) with registry version ``version``.

    >>> deployment_node("reviews-clf@production", 3)
    'deployment:reviews-clf@production/v3'
    """
    return f"deployment:{spec}/v{version}"


class DeploymentRecorder:
    """Records in the lineage graph that ``spec`` is served at ``endpoint``: one ``deployment`` node
    per alias and served version, with a "deployed" edge from that model version.

    Called when the service starts and after each hot reload to another version. Nodes are never
    rewritten, so a restart (or another worker) serving the same version adds nothing and the node
    keeps the first start's endpoint and time. A catalog that cannot be written is logged and the
    service keeps serving: the record is documentation, not a precondition.
    """

    def __init__(self, ws: Workspace, spec: str, *, endpoint: str | None = None, workers: int = 1) -> None:
        self._ws = ws
        self.spec = spec
        self.endpoint = endpoint
        self.workers = workers
        self.recorded: list[str] = []

    def __call__(self, loaded: LoadedModel) -> str | None:
        """Record serving ``loaded``; returns the deployment node id, or None when it could not be written."""
        node = deployment_node(self.spec, loaded.version)
        model_node = f"model:{loaded.name}@{loaded.version}"
        attrs: dict[str, Any] = {
            "model": loaded.name, "alias": self.spec.partition("@")[2], "model_version": loaded.version,
            "alias_version": loaded.alias_version, "served_variant": loaded.schema.variant,
            "started_at": datetime.fromtimestamp(loaded.loaded_at, UTC).isoformat(timespec="seconds"),
            "workers": self.workers, "pid": os.getpid(),
        }  # fmt: skip
        if self.endpoint is not None:
            attrs["endpoint"] = self.endpoint
        try:
            try:
                self._write(node, model_node, loaded.version, attrs)
            except IntegrityError:  # another worker of this service wrote the same node first: check again
                self._write(node, model_node, loaded.version, attrs)
        except Exception as exc:  # e.g. the catalog locked by another writer for too long
            log.warning("could not record deployment %s in the lineage graph: %s: %s", node,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")  # fmt: skip
            return None
        self.recorded.append(node)
        return node

    def _write(self, node: str, model_node: str, version: int, attrs: dict[str, Any]) -> None:
        lineage = self._ws.catalog.lineage
        with self._ws.catalog.begin() as conn:
            lineage.add_node(conn, node, "deployment", self.spec, version, attrs)
            if conn.execute(select(t.nodes.c.id).where(t.nodes.c.id == model_node)).first() is not None:
                lineage.add_edge(conn, model_node, node, "deployed")
