"""Validate a version or a batch against a schema: one pass, one batch in memory at a time.

Each column is checked batch by batch (type, missing values, range, allowed values, mixed types,
invalid UTF-8, unique ids); distributions are compared with the reference's stored profile; the
label is checked in training (present, more than one class, no class with a single example) and
expected absent in serving; duplicates and conflicting labels come from per-row hashes. Every
finding is an :class:`Anomaly`, ``blocking`` or a ``warning``; a pipeline gates on
``report.ok``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from keelml.core.errors import EmptySourceError
from keelml.core.progress import NoProgress, Progress
from keelml.data.column_checks import MAX_EXAMPLES, Anomaly, ColumnCheck
from keelml.data.digest import column_hashes
from keelml.data.drift import column_drift
from keelml.data.duplicates import DuplicateReport, HashCollector, LeakageReport
from keelml.data.profile import DatasetProfile, profile_batch
from keelml.data.schema import DataSchema, Environment

__all__ = ["Anomaly", "ColumnObservation", "ValidationReport", "validate"]


@dataclass(frozen=True, slots=True)
class ColumnObservation:
    """What the scan saw in one column of the target."""

    name: str
    dtype: str
    rows: int
    nulls: int
    minimum: float | None
    maximum: float | None
    violations: int  # values out of range or not allowed
    drift: float | None
    drift_p: float | None

    @property
    def missing_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass(frozen=True, slots=True)
class ValidationReport:
    target: str
    reference: str | None
    environment: Environment
    rows: int
    anomalies: tuple[Anomaly, ...]
    columns: tuple[ColumnObservation, ...]
    duplicates: DuplicateReport | None
    leakage: LeakageReport | None
    seconds: float
    profile: DatasetProfile | None = field(default=None, compare=False, repr=False)  # of the target
    reference_profile: DatasetProfile | None = field(default=None, compare=False, repr=False)

    @property
    def blocking(self) -> tuple[Anomaly, ...]:
        return tuple(a for a in self.anomalies if a.severity == "blocking")

    @property
    def ok(self) -> bool:
        """True when no anomaly blocks: what a pipeline gates on."""
        return not self.blocking

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reference": self.reference,
            "environment": self.environment,
            "rows": self.rows,
            "ok": self.ok,
            "blocking": len(self.blocking),
            "warnings": len(self.anomalies) - len(self.blocking),
            "anomalies": [a.to_json() for a in self.anomalies],
            "columns": [
                {
                    "name": c.name,
                    "dtype": c.dtype,
                    "rows": c.rows,
                    "missing_rate": round(c.missing_rate, 6),
                    "min": c.minimum,
                    "max": c.maximum,
                    "violations": c.violations,
                    "drift": c.drift,
                    "drift_p": c.drift_p,
                }
                for c in self.columns
            ],
            "duplicates": self.duplicates.to_json() if self.duplicates else None,
            "leakage": self.leakage.to_json() if self.leakage else None,
            "seconds": round(self.seconds, 3),
        }


def validate(
    batches: Iterable[pa.Table],
    schema: DataSchema,
    *,
    target: str,
    environment: Environment = "training",
    reference: str | None = None,
    reference_profile: DatasetProfile | None = None,
    target_profile: DatasetProfile | None = None,
    duplicates: bool = True,
    leakage: LeakageReport | None = None,
    total_rows: int | None = None,
    progress: Progress | None = None,
) -> ValidationReport:
    """Check a stream of batches against ``schema``; see the module docstring.

    ``target_profile`` (a stored version's profile) saves profiling the batches; without it the
    target is profiled during the same pass, for the drift comparison with ``reference_profile``.
    """
    start = time.perf_counter()
    progress = progress or NoProgress()
    progress.stage("validating", total=total_rows)
    label = schema.label
    checks: dict[str, ColumnCheck] = {}
    anomalies: list[Anomaly] = []
    collector: HashCollector | None = None
    profile = target_profile
    rows = 0
    for batch in batches:
        if not checks and not anomalies:
            anomalies += _structure(schema, batch.schema, environment)
            checks = {
                c.name: ColumnCheck(c, batch.schema.field(c.name).type)
                for c in schema.columns
                if c.name in batch.column_names
            }
            if duplicates:
                texts = [c.name for c in schema.columns if c.kind == "text" and c.name in checks]
                has_label = label if label in batch.column_names else None
                collector = HashCollector(label=has_label, id=schema.id, text_columns=texts)
        hashes = column_hashes(batch) if collector is not None or target_profile is None else None
        for name, check in checks.items():
            check.add(batch.column(name), rows, hashes)
        if collector is not None:
            collector.add(batch, hashes)
        if target_profile is None:
            assert hashes is not None
            part = profile_batch(batch, hashes, label)
            profile = part if profile is None else profile.merge(part)
        rows += batch.num_rows
        progress.advance(batch.num_rows)
    if not rows:
        raise EmptySourceError(
            f"{target} has no rows to validate",
            expected="at least one row",
            received="0 rows",
            fix="check that the input is the batch you meant",
        )
    for check in checks.values():
        anomalies += check.anomalies()
    drifts = _drift(schema, reference_profile, profile, anomalies) if reference_profile is not None else {}
    if environment == "training" and label in checks and profile is not None:
        anomalies += _label_checks(profile, label)
    dup = collector.report() if collector is not None else None
    if dup is not None:
        anomalies += _duplicate_anomalies(dup)
    if leakage is not None and leakage.leaked_rows:
        hard = leakage.hard_rows
        anomalies.append(
            Anomaly(
                "leakage",
                "blocking" if hard else "warning",
                None,
                f"{leakage.leaked_rows:,} rows of {leakage.b} ({leakage.share:.1%}) "
                f"also appear in {leakage.a}",
                "no row shared between the two datasets",
                f"{leakage.exact_rows:,} identical, {leakage.id_rows:,} same id, "
                + ", ".join(f"{k}: {v:,} same text" for k, v in leakage.text_rows.items()),
                leakage.leaked_rows,
                tuple(str(e) for e in leakage.examples),
            )
        )
    observations = tuple(
        ColumnObservation(
            name,
            str(c.dtype),
            c.rows,
            c.nulls,
            c.minimum if c.minimum != float("inf") else None,
            c.maximum if c.maximum != float("-inf") else None,
            c.violations,
            *drifts.get(name, (None, None)),
        )
        for name, c in checks.items()
    )
    order = sorted(anomalies, key=lambda a: (a.severity != "blocking", a.column or ""))
    seconds = time.perf_counter() - start
    return ValidationReport(
        target,
        reference,
        environment,
        rows,
        tuple(order),
        observations,
        dup,
        leakage,
        seconds,
        profile,
        reference_profile,
    )


def _structure(schema: DataSchema, actual: pa.Schema, environment: Environment) -> list[Anomaly]:
    out: list[Anomaly] = []
    names = set(actual.names)
    for col in schema.columns:
        if col.name not in names and col.required_in(environment):
            out.append(
                Anomaly(
                    "missing_column",
                    "blocking",
                    col.name,
                    f"the {col.role} column {col.name} is missing"
                    if col.role != "feature"
                    else f"column {col.name} is missing",
                    f"{col.name} ({col.dtype}) in {environment} data",
                    "absent",
                )
            )
        elif col.name in names and not col.required_in(environment) and col.role == "label":
            out.append(
                Anomaly(
                    "label_in_serving",
                    "warning",
                    col.name,
                    f"the label {col.name} is present in {environment} data",
                    f"no {col.name} column at {environment} time",
                    "present",
                )
            )
    known = {c.name for c in schema.columns}
    for name in actual.names:
        if name not in known:
            out.append(
                Anomaly(
                    "unexpected_column",
                    "warning",
                    name,
                    f"column {name} is not in the schema",
                    "",
                    str(actual.field(name).type),
                )
            )
    return out


def _drift(
    schema: DataSchema, reference: DatasetProfile, target: DatasetProfile | None, out: list[Anomaly]
) -> dict[str, tuple[float, float]]:
    found: dict[str, tuple[float, float]] = {}
    if target is None:
        return found
    ref_cols = {c.name: c for c in reference.columns}
    for col in target.columns:
        spec = next((c for c in schema.columns if c.name == col.name), None)
        if spec is None or col.name not in ref_cols or spec.role in ("id", "time") or spec.kind == "text":
            continue
        drift = column_drift(ref_cols[col.name], col)
        if drift is None:
            continue
        found[col.name] = (drift.distance, drift.p_value)
        if drift.drifted(spec.max_drift):
            out.append(
                Anomaly(
                    "drift",
                    "warning",
                    col.name,
                    f"the distribution of {col.name} moved "
                    f"({drift.method} distance {drift.distance:.3f}, p={drift.p_value:.2g})",
                    f"{drift.method} distance <= {spec.max_drift}",
                    f"{drift.distance:.3f}",
                )
            )
    return found


def _label_checks(profile: DatasetProfile, label: str) -> list[Anomaly]:
    col = profile.column(label)
    if col.top is None or col.nulls == col.rows:
        return []
    counts = dict(col.top.counts)
    labelled = col.rows - col.nulls
    distinct = max(len(counts), col.distinct_estimate)
    out: list[Anomaly] = []
    if distinct == 1:
        out.append(
            Anomaly(
                "single_class",
                "blocking",
                label,
                f"every labelled row has the same {label}: {next(iter(counts))}",
                "at least two classes",
                f"1 class, {labelled:,} rows",
                labelled,
            )
        )
    if col.kind in ("categorical", "boolean", "text") and distinct > max(50, labelled // 2):
        out.append(
            Anomaly(
                "label_cardinality",
                "warning",
                label,
                f"the label {label} has ~{distinct:,} distinct values for {labelled:,} rows: "
                "an id, free text or a regression target?",
                "a few classes",
                f"~{distinct:,} classes",
                labelled,
            )
        )
    elif col.top.other == 0:
        single = sorted(k for k, v in counts.items() if v == 1)
        if single and distinct > 1:
            out.append(
                Anomaly(
                    "rare_class",
                    "warning",
                    label,
                    f"{len(single)} classes of {label} have a single example: "
                    "they cannot be split or cross-validated",
                    "at least 2 examples per class",
                    ", ".join(single[:10]),
                    len(single),
                    tuple(single[:MAX_EXAMPLES]),
                )
            )
    return out


def _duplicate_anomalies(dup: DuplicateReport) -> list[Anomaly]:
    out: list[Anomaly] = []
    for groups, kind, what in (
        (dup.exact, "duplicate_rows", "identical to another row (all columns but the id)"),
        (dup.conflicts, "conflicting_labels", "identical on every feature to a row with a different label"),
    ):
        if groups.rows:
            out.append(
                Anomaly(
                    kind,
                    "warning",
                    None,
                    f"{groups.rows:,} rows are {what}",
                    "no repeats",
                    f"{groups.groups:,} groups",
                    groups.rows,
                    tuple(str(e) for e in groups.examples),
                )
            )
    for near in dup.near:
        if near.rows:
            conflict = (
                f", {near.conflicting_groups:,} with conflicting labels" if near.conflicting_groups else ""
            )
            out.append(
                Anomaly(
                    "near_duplicates",
                    "warning",
                    near.key,
                    f"{near.rows:,} rows repeat another's {near.key} after normalisation "
                    f"({near.groups:,} groups{conflict})",
                    "distinct texts",
                    f"{near.groups:,} groups",
                    near.rows,
                    tuple(str(e) for e in near.examples),
                )
            )
    return out
