"""Registering a compressed model as a new version of the parent's model, with lineage to the parent.

The version gets tags ``keel.variant`` (``distilled`` / ``pruned``), ``keel.compressed_from``
(``NAME@V``; not ``keel.parent``, which names the torch parent of an ONNX export, so the exports of
the parent stay its only children) and ``keel.compression`` (what was done), metrics measured on the
parent's test rows, and a lineage edge ``model:PARENT -> model:NAME@V`` whose relation is the variant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keelml.compress.source import Source
from keelml.core.refs import ModelRef
from keelml.core.workspace import Workspace

COMPRESSED_ALIAS = "compressed"


def _requirements(ws: Workspace, source: Source) -> list[str]:
    """The parent's pinned pip requirements (a compressed model needs exactly the same frameworks)."""
    node = ws.catalog.lineage.node(source.info.ref.node_id)
    return [str(r) for r in (node.attrs or {}).get("pip_requirements", [])]


def register_variant(
    ws: Workspace,
    source: Source,
    model: Any,
    *,
    variant: str,
    description: str,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
) -> Any:
    """Store ``model`` and register it as ``NAME@NEXT``; returns the registry's ModelVersionInfo."""
    models: Any = ws.models
    datasets: Any = ws.datasets
    artifact = ws.artifacts.put_bytes(model.to_bytes())
    name = source.info.name
    with models.run(experiment=name, run_name=f"{variant} {source.spec}") as run:
        run.log_params({"variant": variant, "parent": source.spec, **params})
        run.set_tags({"keel.task": source.task, "keel.variant": variant, "keel.compressed_from": source.spec})
        run.log_metrics(dict(metrics))
        run.log_json("compression.json", {"variant": variant, "description": description, "params": params})
        info = models.register(
            name, run, artifact=artifact, dataset=datasets.ref(source.info.dataset), metrics=metrics,
            loader=source.loader, pip_requirements=_requirements(ws, source), task=source.task,
            tags={"keel.variant": variant, "keel.compressed_from": source.spec,
                  "keel.compression": description},
        )  # fmt: skip
    with ws.catalog.begin() as conn:
        ws.catalog.lineage.add_edge(conn, source.info.ref.node_id, info.ref.node_id, variant)
    return info


def mark_compressed(ws: Workspace, ref: ModelRef, record: Mapping[str, Any]) -> None:
    """Point alias ``compressed`` at the winner and keep why on the version (tag ``keel.compressed``)."""
    client: Any = ws.models.client
    client.set_registered_model_alias(ref.name, COMPRESSED_ALIAS, str(ref.version))
    client.set_model_version_tag(ref.name, str(ref.version), "keel.compressed", json.dumps(dict(record)))
