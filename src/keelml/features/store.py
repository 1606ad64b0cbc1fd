"""``ws.features``: apply definitions, point-in-time retrieval, materialization, online lookups."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from keelml.core.config import resolve_sqlite_url
from keelml.core.errors import ConfigError
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.features import registry
from keelml.features.compute import apply_derived, plan_derived
from keelml.features.definitions import DerivedFeature, FeatureRepo, FeatureView
from keelml.features.keyindex import FORMAT, KeyIndex, indexed_point_in_time, unsupported
from keelml.features.materialize import (
    MaterializeResult,
    ViewMaterialization,
    materialize_view,
    watermark_us,
)
from keelml.features.offline import point_in_time
from keelml.features.online import OnlineStore, open_online_store
from keelml.features.parity import ParityReport, check_parity
from keelml.features.scan import ParquetFiles, Source, delta_files
from keelml.features.serving import OnlineFeatures, lookup

EntityRows: TypeAlias = pa.Table | ParquetFiles | Path | str | DatasetRef


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
        self._plans: dict[
            tuple[str, ...], tuple[list[tuple[FeatureView, list[str]]], list[DerivedFeature]]
        ] = {}

    # -- definitions ----------------------------------------------------------------------------

    def use(self, repo: FeatureRepo) -> FeatureStore:
        """Use ``repo`` instead of the module named in keel.toml (handy in notebooks and tests)."""
        self._repo = repo
        self._plans.clear()
        return self

    @property
    def repo(self) -> FeatureRepo:
        if self._repo is None:
            extra = self._ws.config.model_extra or {}
            self._repo = registry.load_repo(self._ws.root, extra.get("features"))
        return self._repo

    def index_by_default(self) -> bool:
        """``[features] index`` of keel.toml: whether retrievals read key indexes when not told."""
        section = (self._ws.config.model_extra or {}).get("features") or {}
        setting = section.get("index", False) if isinstance(section, dict) else False
        if not isinstance(setting, bool):
            raise ConfigError(
                "[features] index in keel.toml must be true or false",
                received=repr(setting),
                fix="write index = true (or false) under [features]",
            )
        return setting

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

    def scan(self, view: FeatureView) -> Source:
        """The view's source version as Parquet files DuckDB scans in place (arrow if it cannot)."""
        ref, _ = self._source(view)
        return self._dataset_source(ref, view.columns())

    def _dataset_source(self, ref: DatasetRef, columns: list[str] | None) -> Source:
        record = self._ws.catalog.get_version(ref.name, ref.version)
        uri = self._ws.catalog.get_dataset(ref.name).table_uri
        files = delta_files(uri, record.delta_version)
        if not files:  # deletion vectors or column mapping (another tool's table): read it
            return self._ws.datasets.read(ref, columns=columns)
        return ParquetFiles(tuple(p for p, _ in files), sum(n for _, n in files))

    def _entity_source(self, rows: EntityRows) -> tuple[Source, DatasetRef | None]:
        """Arrow rows as they are; a .parquet path (or directory) or a dataset spec, scanned in place."""
        if isinstance(rows, pa.Table | ParquetFiles):
            return rows, None
        if isinstance(rows, Path) or (isinstance(rows, str) and rows.endswith(".parquet")):
            return ParquetFiles.at(rows), None
        ref: DatasetRef = self._ws.datasets.ref(rows)
        return self._dataset_source(ref, None), ref

    def _spill_dir(self) -> str:
        path = self._ws.storage_root / "tmp" / "duckdb"
        path.mkdir(parents=True, exist_ok=True)  # DuckDB makes only the last level, when it spills
        return str(path)

    def iter_historical(
        self,
        entity_rows: EntityRows,
        features: Sequence[str],
        *,
        timestamp: str = "event_time",
        batch_rows: int = 100_000,
        threads: int | None = None,
        memory_limit: str | None = None,
        index: bool | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the entity rows joined with ``features`` as of each row's ``timestamp``.

        Entity rows and feature sources are scanned by DuckDB from their Parquet files; it spills to
        ``.keel/tmp/duckdb`` past ``memory_limit`` (default 1GB), and batches come out in row order.
        With ``index=True`` each view is read through its sorted key index instead (built once per
        source version under ``.keel/features/index``; same answer, no join: ``keelml.features.keyindex``)
        when every view has one integer, string, binary or uint64 key; otherwise the ASOF JOIN runs.
        ``index=None`` takes ``[features] index`` of keel.toml (default false).
        """
        stored, derived = plan_derived(self.repo, features)
        wanted = [f.split(":", 1)[-1] for f in features]
        rows, _ = self._entity_source(entity_rows)
        inputs = [(view, self.scan(view), cols) for view, cols in self._views_for(stored)]
        fetched = {c for _, _, cols in inputs for c in cols}
        keys = [k for v, _, _ in inputs for k in v.entity.keys]
        use_index = self.index_by_default() if index is None else index
        indexed = self._indexed(rows, inputs) if use_index else None
        if indexed is not None:
            table, by_index = indexed
            batches = indexed_point_in_time(table, timestamp, by_index, batch_rows=batch_rows)
        else:
            batches = point_in_time(
                rows,
                timestamp,
                inputs,
                batch_rows=batch_rows,
                threads=threads,
                memory_limit=memory_limit,
                temp_directory=self._spill_dir(),
            )
        offset = 0
        for batch in batches:
            table = apply_derived(pa.Table.from_batches([batch]), derived, keys=keys, offset=offset)
            offset += batch.num_rows
            entity_cols = [c for c in batch.schema.names if c not in fetched]
            yield from table.select([*entity_cols, *wanted]).to_batches()

    def _indexed(
        self, rows: Source, inputs: Sequence[tuple[FeatureView, Source, list[str]]]
    ) -> tuple[pa.Table, list[tuple[FeatureView, KeyIndex, list[str]]]] | None:
        """The entity rows as arrow and each view's key index (built once per source version), or
        None when a view or the rows' key column does not suit the index (the ASOF JOIN runs then)."""
        table = rows if isinstance(rows, pa.Table) else pq.read_table(list(rows.paths))
        out = []
        for view, source, cols in inputs:
            key = view.entity.keys[0]
            if key not in table.column_names:
                return None
            index = self.key_index(view, source)
            if index is None or not index.accepts(table.schema.field(key).type):
                return None
            out.append((view, index, cols))
        return table, out

    def key_index(self, view: FeatureView, source: Source | None = None) -> KeyIndex | None:
        """The sorted key index of ``view``'s current source version, built and saved on first use
        (replacing the view's index of an older version or config).

        None when the view does not suit one (``keyindex.unsupported``, or keys and times too wide).
        """
        ref, _ = self._source(view)
        config = json.dumps([FORMAT, view.entity.keys, view.timestamp, view.features], sort_keys=True)
        tag = hashlib.sha256(f"{ref.digest}|{config}".encode()).hexdigest()[:24]
        folder = self._ws.storage_root / "features" / "index" / f"{view.name}-{tag}"
        index = KeyIndex.load(folder)
        if index is not None:
            return index
        src = source if source is not None else self.scan(view)
        schema = src.schema if isinstance(src, pa.Table) else pq.read_schema(src.paths[0])
        if unsupported(view, schema):  # decided from the schema, before any row is read
            return None
        columns = [*view.entity.keys, view.timestamp, *view.features]
        table = (
            src.select(columns)
            if isinstance(src, pa.Table)
            else pq.read_table(list(src.paths), columns=columns)
        )
        built = KeyIndex.build(table, view)
        if built is None:
            return None
        shutil.rmtree(folder, ignore_errors=True)  # a damaged index in the way would block the rename
        built.save(folder)
        for old in folder.parent.iterdir():  # the view reads its source's latest version only
            if (
                old != folder
                and old.name.rpartition("-")[0] == view.name
                and len(old.name) == len(folder.name)
            ):
                shutil.rmtree(old, ignore_errors=True)  # a reader that has it mapped keeps its files
        return KeyIndex.load(folder) or built

    def get_historical_features(
        self,
        entity_rows: EntityRows,
        features: Sequence[str],
        *,
        timestamp: str = "event_time",
        batch_rows: int = 100_000,
        index: bool | None = None,
    ) -> pa.Table:
        """The entity rows with point-in-time correct feature values (in the rows' order)."""
        batches = list(
            self.iter_historical(
                entity_rows, features, timestamp=timestamp, batch_rows=batch_rows, index=index
            )
        )
        schema = batches[0].schema if batches else None
        return pa.Table.from_batches(batches, schema=schema)

    def create_training_dataset(
        self,
        name: str,
        entity_rows: EntityRows,
        features: Sequence[str],
        *,
        timestamp: str = "event_time",
        label: str | None = None,
        batch_rows: int = 100_000,
        memory_limit: str | None = None,
        index: bool | None = None,
    ) -> DatasetRef:
        """Retrieve features for ``entity_rows`` and store the result as a new dataset version.

        The result is streamed to the new version ``batch_rows`` rows at a time (DuckDB keeps its
        join under ``memory_limit``, default 1GB); a failure part way leaves no version behind.
        ``index=True``: as in :meth:`iter_historical`.

        Lineage: an edge ``features`` from the entity dataset (if named) and each source version.
        """
        rows, entity_ref = self._entity_source(entity_rows)
        used = [v for v, _ in self._views_for(plan_derived(self.repo, features)[0])]
        sources = {self._source(v)[0].node_id for v in used}
        for view in used:  # the registered definition too, when `apply` has recorded this version
            node = registry.latest_node(self._ws.catalog.lineage, "feature_view", view.name)
            if node is not None and node[1] == self.repo.digest(view):
                sources.add(f"feature_view:{view.name}@{node[0]}")
        # streamed: each joined batch is written and dropped; one commit once the last is written
        batches = self.iter_historical(
            rows,
            features,
            timestamp=timestamp,
            batch_rows=batch_rows,
            memory_limit=memory_limit,
            index=index,
        )
        ref: DatasetRef = self._ws.datasets.add_batches(
            name, batches, label=label, time=timestamp, source_name=f"features:{','.join(features)}"
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

        ``incremental`` reads only the source files whose recorded maximum event time is past the last
        run's watermark (Delta file statistics), and within them only the newer rows; nothing is
        cleared and unchanged entities are not rewritten. A view never materialized gets a full run.
        """
        cutoff = now or dt.datetime.now(dt.UTC)
        results: list[ViewMaterialization] = []
        for view in self.repo.views:
            ref, _ = self._source(view)
            after = watermark_us(self.online, view) if incremental else None
            source = self.scan(view) if after is None else self._newer_files(ref, view, after)
            results.append(materialize_view(self.online, view, source, ref, cutoff, after, _scanned(source)))
            self.schema_cache.pop(view.name, None)
        return MaterializeResult(tuple(results))

    def _newer_files(self, ref: DatasetRef, view: FeatureView, after_us: int) -> Source | None:
        record = self._ws.catalog.get_version(ref.name, ref.version)
        uri = self._ws.catalog.get_dataset(ref.name).table_uri
        after = dt.datetime.fromtimestamp(after_us / 1_000_000, dt.UTC)
        files = delta_files(uri, record.delta_version, newer_than=after, column=view.timestamp)
        if files is None:
            return self._ws.datasets.read(ref, columns=view.columns())
        return ParquetFiles(tuple(p for p, _ in files), sum(n for _, n in files)) if files else None

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        features: Sequence[str],
        *,
        now: dt.datetime | None = None,
    ) -> OnlineFeatures:
        """Latest stored values (within ttl) plus derived and on-demand features, per request row."""
        key = tuple(features)
        plan = self._plans.get(key)
        if plan is None:  # planned once per feature list: a request then pays only for its lookup
            stored, derived = plan_derived(self.repo, features)
            if len(self._plans) >= 256:
                self._plans.clear()
            plan = self._plans[key] = (self._views_for(stored), derived)
        return lookup(self, entity_rows, features, plan[0], plan[1], now)

    def check_parity(
        self, *, sample: int = 100, seed: int = 0, now: dt.datetime | None = None
    ) -> ParityReport:
        """Compare a sample of entities through the offline and the online path, per feature."""
        return check_parity(self, sample=sample, seed=seed, now=now)

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
            self._online = None


def _scanned(source: Source | None) -> tuple[int, int]:
    """(files, rows) handed to DuckDB: an arrow table counts as one file."""
    if source is None:
        return 0, 0
    if isinstance(source, pa.Table):
        return 1, source.num_rows
    return len(source.paths), source.rows or 0


@workspace_accessor("features")
def _features(ws: Workspace) -> FeatureStore:
    return FeatureStore(ws)
