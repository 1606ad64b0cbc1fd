"""Workspace-level data quality: infer a version's schema, validate a version or a batch.

>>> import keelml, tempfile, pyarrow as pa
>>> ws = keelml.Workspace.init(tempfile.mkdtemp())
>>> _ = ws.datasets.add("t", pa.table({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]}), label="y")
>>> _ = ws.datasets.append("t", pa.table({"x": [9.0], "y": ["c"]}))
>>> report = validate_dataset(ws, "t@2", against="t@1")
>>> report.ok, sorted({a.kind for a in report.blocking})
(False, ['out_of_range', 'unexpected_values'])
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

import pyarrow as pa

from keelml.core.errors import InvalidInputError, NotFoundError
from keelml.core.progress import Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace
from keelml.data.batches import VersionSource, table_batches
from keelml.data.duplicates import LeakageReport, find_leakage
from keelml.data.profile import DatasetProfile
from keelml.data.schema import DataSchema, Environment, infer_schema
from keelml.data.sources import FORMATS, read_source
from keelml.data.validation import ValidationReport, validate

Target: TypeAlias = str | Path | pa.Table


def version_schema(ws: Workspace, spec: str | DatasetRef) -> DataSchema:
    """The schema inferred from a stored version's profile (no scan of the data)."""
    source = VersionSource.of(ws, spec)
    return infer_schema(
        ws.datasets.profile(source.ref),
        label=source.label,
        id=source.id,
        time=source.time,
        dataset=source.ref.name,
        source=str(source.ref),
    )


def is_file_target(target: Target) -> bool:
    """A path to a batch file or directory, rather than ``NAME[@V]``."""
    if isinstance(target, Path):
        return True
    if isinstance(target, pa.Table):
        return False
    return Path(target).exists() or Path(target).suffix.lower() in FORMATS or "/" in target


def _profile_of(ws: Workspace, spec: str | None) -> DatasetProfile | None:
    if spec is None:
        return None
    try:
        profile: DatasetProfile = ws.datasets.profile(spec)
        return profile
    except (NotFoundError, InvalidInputError):  # a schema inferred elsewhere: no drift baseline
        return None


def validate_dataset(
    ws: Workspace,
    target: Target,
    *,
    against: str | DatasetRef | None = None,
    schema: DataSchema | None = None,
    environment: Environment = "training",
    duplicates: bool = True,
    leakage_with: str | DatasetRef | None = None,
    progress: Progress | None = None,
) -> ValidationReport:
    """Validate a version (``NAME[@V]``), a batch file, or an Arrow table.

    The schema is ``schema`` if given, else the one inferred from ``against``; without either, a
    version is checked against its own inferred schema (problems intrinsic to the data: all-missing
    or mixed-type columns, invalid UTF-8, a single class, duplicates) and a batch is refused.
    """
    ref_spec = str(ws.datasets.ref(against)) if against is not None else None
    if schema is None and ref_spec is not None:
        schema = version_schema(ws, ref_spec)
    reference_profile = _profile_of(ws, ref_spec or (schema.source if schema else None))
    leak_source = VersionSource.of(ws, leakage_with) if leakage_with is not None else None
    if isinstance(target, pa.Table) or is_file_target(target):
        if schema is None:
            raise InvalidInputError(
                "a batch is validated against a schema",
                expected="--against NAME@V (a reference version) or --schema FILE",
                received="neither",
                fix="e.g. `keel data validate batch.csv --against reviews@1 --environment serving`",
            )
        table = target if isinstance(target, pa.Table) else read_source(target)
        name = "python:arrow" if isinstance(target, pa.Table) else str(target)
        leakage = _leakage(leak_source, table_batches(table), schema, name)
        return validate(
            table_batches(table),
            schema,
            target=name,
            environment=environment,
            reference=ref_spec or (schema.source if schema else None),
            reference_profile=reference_profile,
            duplicates=duplicates,
            leakage=leakage,
            total_rows=table.num_rows,
            progress=progress,
        )
    assert isinstance(target, str)
    source = VersionSource.of(ws, target)
    self_check = schema is None
    if schema is None:
        schema = version_schema(ws, source.ref)
        reference_profile = None  # a self-check: no drift against itself
    leakage = _leakage(leak_source, source.batches(), schema, str(source.ref))
    return validate(
        source.batches(),
        schema,
        target=str(source.ref),
        environment=environment,
        reference=None if self_check else ref_spec or schema.source,
        reference_profile=reference_profile,
        target_profile=ws.datasets.profile(source.ref),
        duplicates=duplicates,
        leakage=leakage,
        total_rows=source.rows,
        progress=progress,
    )


def _leakage(
    other: VersionSource | None, batches: object, schema: DataSchema, name: str
) -> LeakageReport | None:
    if other is None:
        return None
    from collections.abc import Iterable
    from typing import cast

    columns = [c.name for c in schema.columns if c.name in other.schema.names]
    texts = [c.name for c in schema.columns if c.kind == "text" and c.name in columns]

    def select(stream: Iterable[pa.Table]) -> Iterable[pa.Table]:
        for batch in stream:
            yield batch.select([c for c in columns if c in batch.column_names])

    return find_leakage(
        select(other.batches()),
        select(cast("Iterable[pa.Table]", batches)),
        label=schema.label,
        id=schema.id,
        text_columns=texts,
        names=(str(other.ref), name),
    )
