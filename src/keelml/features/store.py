"""``ws.features``: apply definitions, point-in-time retrieval, materialization, online lookups."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from keelml.core.config import resolve_sqlite_url
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.features import registry
from keelml.features.compute import apply_derived, plan_derived
from keelml.features.definitions import FeatureRepo, FeatureView
from keelml.features.materialize import MaterializeResult, ViewMaterialization, materialize_view
from keelml.features.offline import point_in_time
from keelml.features.online import OnlineStore, open_online_store
from keelml.features.parity import ParityReport, check_parity
from keelml.features.serving import OnlineFeatures, lookup


@dataclass(frozen=True, slots=True)
class ApplyResult:
    registered: tuple[registry.Registered, ...]

    def changed(self) -> tuple[registry.Registered, ...]:
        return tuple(r for r in self.registered if r.status != "unchanged")


class FeatureStore:
    """The feature store of one workspace (``ws.features``)."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._repo: FeatureRepo | None = None
        self._online: OnlineStore | None = None
        self.schema_cache: dict[str, pa.Schema] = {}

    # -- definitions ----------------------------------------------------------------------------

    def use(self, repo: FeatureRepo) -> FeatureStore:
        """Use ``repo`` instead of the module named in keel.toml (handy in notebooks and tests)."""
        self._repo = repo
        return self

    @property
    def repo(self) -> FeatureRepo:
        if self._repo is None:
            extra = self._ws.config.model_extra or {}
            self._repo = registry.load_repo(self._ws.root, extra.get("features"))
        return self._repo

    def _source(self, view: FeatureView) -> tuple[DatasetRef, dict[str, str]]:
        record = self._ws.catalog.get_version(view.source, None)
        ref = DatasetRef(record.dataset, record.version, record.digest)
        registry.check_view_schema(view, record.schema, str(ref))
        return ref, record.schema

    def apply(self) -> ApplyResult:
        """Check every definition against its source and register it (versioned by digest)."""
        repo = self.repo
        out: list[registry.Registered] = []
        view_nodes: dict[str, str] = {}
        for view in repo.views:
            ref, _ = self._source(view)
            entry = registry.register(
                self._ws.catalog,
                "feature_view",
                view.name,
                repo.digest(view),
                {"config": view.config(), "source": str(ref)},
                [ref.node_id],
            )
            view_nodes.update({f: entry.node_id for f in view.features})
            out.append(entry)
        for d in repo.derived:
            parents = sorted({view_nodes[i] for i in d.inputs if i in view_nodes})
            out.append(
                registry.register(
                    self._ws.catalog,
                    "derived_feature",
                    d.name,
                    repo.digest(d),
                    {"config": d.config()},
                    parents,
                )
            )
        return ApplyResult(tuple(out))

    def _views_for(self, stored: Sequence[str]) -> list[tuple[FeatureView, list[str]]]:
        return [
            (v, [f for f in v.features if f in stored])
            for v in self.repo.views
            if set(v.features) & set(stored)
        ]

    # -- offline --------------------------------------------------------------------------------

    def _entity_table(self, rows: pa.Table | str | DatasetRef) -> tuple[pa.Table, DatasetRef | None]:
        if isinstance(rows, pa.Table):
            return rows, None
        ref: DatasetRef = self._ws.datasets.ref(rows)
        return self._ws.datasets.read(ref), ref

    def iter_historical(
        self,
        entity_rows: pa.Table,
        features: Sequence[str],
        *,
        timestamp: str = "event_time",
        batch_rows: int = 100_000,
        threads: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the entity rows joined with ``features`` as of each row's ``timestamp``."""
        stored, derived = plan_derived(self.repo, features)
        wanted = [f.split(":", 1)[-1] for f in features]
        inputs = []
        for view, cols in self._views_for(stored):
            ref, _ = self._source(view)
            inputs.append((view, self._ws.datasets.read(ref, columns=view.columns()), cols))
        keys = [k for v, _, _ in inputs for k in v.entity.keys]
        offset = 0
        for batch in point_in_time(entity_rows, timestamp, inputs, batch_rows=batch_rows, threads=threads):
            table = apply_derived(pa.Table.from_batches([batch]), derived, keys=keys, offset=offset)
            offset += batch.num_rows
            yield from table.select([*entity_rows.column_names, *wanted]).to_batches()

    def get_historical_features(
        self,
        entity_rows: pa.Table | str | DatasetRef,
        features: Sequence[str],
        *,
        timestamp: str = "event_time",
        batch_rows: int = 100_000,
    ) -> pa.Table:
        """The entity rows with point-in-time correct feature values (in the rows' order)."""
        table, _ = self._entity_table(entity_rows)
        batches = list(self.iter_historical(table, features, timestamp=timestamp, batch_rows=batch_rows))
        schema = batches[0].schema if batches else None
        return pa.Table.from_batches(batches, schema=schema)

    def create_training_dataset(
        self,
        name: str,
        entity_rows: pa.Table | str | DatasetRef,
        features: Sequence[str],
        *,
        timestamp: str = "event_time",
        label: str | None = None,
    ) -> DatasetRef:
        """Retrieve features for ``entity_rows`` and store the result as a new dataset version.

        Lineage: an edge ``features`` from the entity dataset (if named) and each source version.
        """
        table, entity_ref = self._entity_table(entity_rows)
        result = self.get_historical_features(table, features, timestamp=timestamp)
        used = [v for v, _ in self._views_for(plan_derived(self.repo, features)[0])]
        sources = {self._source(v)[0].node_id for v in used}
        for view in used:  # the registered definition too, when `apply` has recorded this version
            node = registry.latest_node(self._ws.catalog.lineage, "feature_view", view.name)
            if node is not None and node[1] == self.repo.digest(view):
                sources.add(f"feature_view:{view.name}@{node[0]}")
        ref: DatasetRef = self._ws.datasets.add(
            name, result, label=label, time=timestamp, source_name=f"features:{','.join(features)}"
        )
        catalog = self._ws.catalog
        with catalog.begin() as conn:
            for parent in sorted({*sources, *([entity_ref.node_id] if entity_ref else [])}):
                if parent != ref.node_id:
                    catalog.lineage.add_edge(conn, parent, ref.node_id, "features")
        return ref

    # -- online ---------------------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The key prefix of this workspace on a shared online store (Redis)."""
        return "keel:" + hashlib.sha256(str(self._ws.root).encode()).hexdigest()[:12]

    @property
    def online(self) -> OnlineStore:
        if self._online is None:
            uri = resolve_sqlite_url(self._ws.config.backends.online_store, self._ws.root)
            self._online = open_online_store(uri, namespace=self.namespace)
        return self._online

    def materialize(self, *, incremental: bool = False, now: dt.datetime | None = None) -> MaterializeResult:
        """Write the latest value per entity of every view (event time <= ``now``) to the online store.

        ``incremental`` writes only entities with rows newer than the last run's watermark (the source
        is still scanned, but nothing is cleared and unchanged entities are not rewritten).
        """
        cutoff = now or dt.datetime.now(dt.UTC)
        results: list[ViewMaterialization] = []
        for view in self.repo.views:
            ref, _ = self._source(view)
            table = self._ws.datasets.read(ref, columns=view.columns())
            results.append(materialize_view(self.online, view, table, ref, cutoff, incremental))
            self.schema_cache.pop(view.name, None)
        return MaterializeResult(tuple(results))

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        features: Sequence[str],
        *,
        now: dt.datetime | None = None,
    ) -> OnlineFeatures:
        """Latest stored values (within ttl) plus derived and on-demand features, per request row."""
        stored, derived = plan_derived(self.repo, features)
        return lookup(self, entity_rows, features, self._views_for(stored), derived, now)

    def check_parity(
        self, *, sample: int = 100, seed: int = 0, now: dt.datetime | None = None
    ) -> ParityReport:
        """Compare a sample of entities through the offline and the online path, per feature."""
        return check_parity(self, sample=sample, seed=seed, now=now)

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
            self._online = None


@workspace_accessor("features")
def _features(ws: Workspace) -> FeatureStore:
    return FeatureStore(ws)
