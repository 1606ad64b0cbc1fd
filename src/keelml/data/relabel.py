"""The label review loop: find issues in a version, write a review queue, apply corrections.

Corrections never edit a version in place: they make a new version (operation ``relabel``) whose
lineage points at the version that was reviewed.

The queue is a CSV with one row per flagged row, worst first: ``rank``, the key (the id column,
or ``row`` for the position), ``given_label``, ``suggested_label``, ``label_quality``, a
``preview`` of the features, and an empty ``corrected_label`` for the reviewer to fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import InvalidInputError
from keelml.core.progress import Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace
from keelml.data.label_issues import LabelIssuesConfig, LabelIssuesReport, find_label_issues_in
from keelml.data.sources import read_source

PREVIEW_CHARS = 120


def label_issues(
    ws: Workspace,
    spec: str | DatasetRef,
    config: LabelIssuesConfig | None = None,
    *,
    progress: Progress | None = None,
) -> LabelIssuesReport:
    """Rank likely mislabeled rows of a stored version (it needs a label column)."""
    ref = ws.datasets.ref(spec)
    dataset = ws.datasets.dataset(ref.name)
    if dataset.label_column is None:
        raise InvalidInputError(
            f"{ref.name} has no label column",
            expected="a dataset added with --label COLUMN",
            fix=f"re-add it with `keel data add {ref.name} FILE --label COLUMN`",
        )
    table = ws.datasets.read(ref)
    exclude = (dataset.time_column,) if dataset.time_column else ()
    return find_label_issues_in(
        table,
        dataset.label_column,
        id=dataset.id_column,
        exclude=exclude,
        dataset=str(ref),
        config=config,
        progress=progress,
    )


def write_queue(ws: Workspace, report: LabelIssuesReport, path: str | Path) -> Path:
    """Write the review queue CSV (see the module docstring); returns its path."""
    import pyarrow.csv as csv

    ref = ws.datasets.ref(report.dataset)
    dataset = ws.datasets.dataset(ref.name)
    key = dataset.id_column or "row"
    table = ws.datasets.read(ref)
    features = [
        c for c in table.column_names if c not in (report.label, dataset.id_column, dataset.time_column)
    ]
    rows = pa.array([i.row for i in report.issues], pa.int64())
    picked = table.select(features).take(rows) if features else None
    previews = []
    for n in range(len(report.issues)):
        assert picked is not None
        parts = [f"{c}={picked.column(c)[n].as_py()!s}" for c in features]
        text = "; ".join(parts)
        previews.append(text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…")
    queue = pa.table(
        {
            "rank": pa.array([i.rank for i in report.issues], pa.int64()),
            key: pa.array([str(i.id) for i in report.issues], pa.string()),
            "given_label": pa.array([i.given for i in report.issues], pa.string()),
            "suggested_label": pa.array([i.suggested for i in report.issues], pa.string()),
            "label_quality": pa.array([round(i.quality, 6) for i in report.issues], pa.float64()),
            "preview": pa.array(previews, pa.string()),
            "corrected_label": pa.array([None] * len(report.issues), pa.string()),
        }
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    csv.write_csv(queue, target)
    return target


def _blank_to_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """CSV files hold empty cells as empty strings: an empty correction is no correction."""
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


@dataclass(frozen=True, slots=True)
class RelabelResult:
    base: DatasetRef
    ref: DatasetRef  # the new version
    changed: int  # rows whose label changed
    unchanged: int  # corrections equal to the label already there


def relabel(
    ws: Workspace,
    spec: str | DatasetRef,
    corrections: str | Path | pa.Table,
    *,
    accept_suggested: bool = False,
) -> RelabelResult:
    """Apply a reviewed queue (or any table of key + ``corrected_label``) as a new version.

    With ``accept_suggested``, rows whose ``corrected_label`` is empty take ``suggested_label``.
    """
    base = ws.datasets.ref(spec)
    dataset = ws.datasets.dataset(base.name)
    label = dataset.label_column
    if label is None:
        raise InvalidInputError(
            f"{base.name} has no label column to correct", fix=f"add {base.name} with --label COLUMN"
        )
    key = dataset.id_column or "row"
    fixes = corrections if isinstance(corrections, pa.Table) else read_source(corrections)
    for needed in (key, "corrected_label"):
        if needed not in fixes.column_names:
            raise InvalidInputError(
                f"the corrections have no {needed!r} column",
                expected=f"columns {key!r} and 'corrected_label' (as in the queue from `keel data issues`)",
                received=", ".join(fixes.column_names),
                fix="fill corrected_label in the review queue file and pass that file",
            )
    new_labels = _blank_to_null(fixes.column("corrected_label"))
    if accept_suggested and "suggested_label" in fixes.column_names:
        new_labels = pc.coalesce(new_labels, _blank_to_null(fixes.column("suggested_label")))
    chosen = pc.is_valid(new_labels)
    keys = pc.cast(fixes.column(key).filter(chosen), pa.string()).to_pylist()
    wanted = dict(zip(keys, new_labels.filter(chosen).to_pylist(), strict=True))
    if not wanted:
        raise InvalidInputError(
            "no correction to apply",
            expected="at least one row with corrected_label filled",
            received=f"{fixes.num_rows} rows, all corrected_label empty",
            fix="fill corrected_label for the rows to change, or pass --accept-suggested",
        )
    table = ws.datasets.read(base)
    current_keys = (
        pc.cast(table.column(key), pa.string()).to_pylist()
        if key != "row"
        else [str(i) for i in range(table.num_rows)]
    )
    position = {k: i for i, k in enumerate(current_keys)}
    unknown = [k for k in wanted if k not in position]
    if unknown:
        raise InvalidInputError(
            f"{len(unknown)} corrections name rows that are not in {base}",
            expected=f"{key} values of {base}",
            received=", ".join(unknown[:5]),
            fix=f"check the file was made from {base} (`keel data issues {base}`)",
        )
    labels = table.column(label).to_pylist()
    label_type = table.schema.field(label).type
    changed = unchanged = 0
    for k, value in wanted.items():
        i = position[k]
        try:
            converted = pa.array([value], pa.string()).cast(label_type)[0].as_py()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(
                f"the correction {value!r} for {key} {k} is not a valid {label}",
                expected=f"a value of type {label_type}",
                received=repr(value),
                fix="correct that row of the file",
            ) from exc
        if labels[i] == converted:
            unchanged += 1
        else:
            labels[i], changed = converted, changed + 1
    updated = table.set_column(table.schema.get_field_index(label), label, pa.array(labels, label_type))
    latest = ws.datasets.ref(base.name)
    source = "python:arrow" if isinstance(corrections, pa.Table) else str(Path(corrections).resolve())
    ref = ws.datasets.write_version(
        base.name, updated, operation="relabel", source=source, parents=(base,) if base != latest else ()
    )
    return RelabelResult(base, ref, changed, unchanged)
