"""Labeling batch files: written by ``suggest``, read and checked as a whole by ``import``.

A batch is CSV or JSON lines (by extension), one row per example: the dataset's id column, its label
column (blank, for the annotator to fill), every feature column, and ``keel_*`` helper columns
(``keel_batch``, ``keel_rank``, ``keel_suggested``, ``keel_confidence``). An ``annotator`` column
may name the annotator per row; otherwise the importer names one for the whole file.

Values are compared as text (ids and labels), so ``7`` in a CSV matches the integer id 7.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from keelml.core.errors import (
    ColumnNotFoundError,
    EmptySourceError,
    InvalidInputError,
    SourceNotFoundError,
    UnreadableSourceError,
)

BATCH_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
ANNOTATOR_COLUMN = "annotator"
BATCH_COLUMN = "keel_batch"


class BatchRejectedError(InvalidInputError):
    """A batch with problems; nothing of it was imported. ``findings`` lists every problem."""

    def __init__(self, problem: str, findings: tuple[Finding, ...], **kw: str) -> None:
        super().__init__(problem, **kw)
        self.findings = findings


@dataclass(frozen=True)
class Finding:
    """One problem in a batch: its kind, how many rows have it, examples, and the fix."""

    kind: str
    message: str
    rows: int
    examples: tuple[str, ...]
    fix: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message} ({self.rows} rows, e.g. {', '.join(self.examples[:5])})"


@dataclass(frozen=True)
class BatchRow:
    item: str
    label: str
    annotator: str
    batch: str
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.item, self.annotator, self.batch)


def batch_format(path: Path) -> str:
    fmt = BATCH_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"cannot use {path.name} as a labeling batch",
            expected=f"a file name ending in {', '.join(sorted(BATCH_FORMATS))}",
            received=path.suffix or "no extension",
            fix="name the batch file e.g. batch.csv or batch.jsonl",
        )
    return fmt


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def write_batch(table: pa.Table, path: str | Path) -> Path:
    """Write a batch table as CSV or JSON lines, chosen by the extension."""
    target = Path(path)
    fmt = batch_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = table.to_pylist()
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            writer = csv.DictWriter(fh, fieldnames=table.column_names)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
        else:
            for r in rows:
                fh.write(json.dumps(r, default=str, ensure_ascii=False) + "\n")
    tmp.replace(target)
    return target


def read_batch(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a batch file as dicts (all values as read; blanks as '')."""
    source = Path(path)
    if not source.is_file():
        raise SourceNotFoundError(
            f"batch file {str(source)!r} does not exist",
            expected="the CSV or JSON-lines file written by `keel label suggest` and filled in",
            received=str(source),
            fix="check the path",
        )
    fmt = batch_format(source)
    try:
        with source.open(encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                return list(csv.DictReader(fh))
            return [json.loads(line) for line in fh if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise UnreadableSourceError(
            f"cannot read the batch file {source.name}",
            expected=f"valid {fmt.upper()} in UTF-8",
            received=str(exc).splitlines()[0],
            fix="re-export the batch from your labeling tool as CSV or JSON lines",
        ) from exc


def parse_rows(
    records: list[dict[str, Any]],
    *,
    id_column: str,
    label_column: str,
    annotator: str | None,
    default_batch: str,
) -> tuple[list[BatchRow], int]:
    """Rows with a label (and how many were left blank); checks the columns the import needs."""
    columns = set().union(*(r.keys() for r in records)) if records else set()
    for role, column in (("id", id_column), ("label", label_column)):
        if column not in columns:
            raise ColumnNotFoundError(
                f"the batch has no {role} column {column!r}",
                expected=f"the dataset's {role} column {column!r} in the batch",
                received=", ".join(sorted(columns)) or "no columns",
                fix="keep the columns written by `keel label suggest`; fill in only the label",
            )
    if annotator is None and ANNOTATOR_COLUMN not in columns:
        raise InvalidInputError(
            "the batch does not say who labeled it",
            expected=f"--annotator ID, or an {ANNOTATOR_COLUMN!r} column",
            received="neither",
            fix="add --annotator YOUR_ID",
        )
    rows, blank = [], 0
    for line, record in enumerate(records, start=2):
        label = _text(record.get(label_column))
        if not label:
            blank += 1
            continue
        who = annotator if annotator is not None else _text(record.get(ANNOTATOR_COLUMN))
        batch = _text(record.get(BATCH_COLUMN)) or default_batch
        rows.append(BatchRow(_text(record.get(id_column)), label, who, batch, line))
    if not rows:
        raise EmptySourceError(
            "the batch has no labels",
            expected=f"at least one row with a value in {label_column!r}",
            received=f"{len(records)} rows, all with a blank label",
            fix="fill in the label column before importing",
        )
    return rows, blank


def check_rows(rows: list[BatchRow], known_ids: set[str], classes: set[str]) -> tuple[Finding, ...]:
    """Every problem in the batch at once (unknown ids, bad labels, conflicts, missing annotators)."""
    findings: list[Finding] = []

    def add(kind: str, message: str, bad: list[str], fix: str) -> None:
        if bad:
            findings.append(Finding(kind, message, len(bad), tuple(dict.fromkeys(bad))[:10], fix))

    add(
        "missing id",
        "rows without an id",
        [f"line {r.line}" for r in rows if not r.item],
        "keep the id of every row as written by `keel label suggest`",
    )
    add(
        "missing annotator",
        f"rows with a blank {ANNOTATOR_COLUMN!r}",
        [f"line {r.line}" for r in rows if not r.annotator],
        "fill in the annotator column, or pass --annotator",
    )
    add(
        "unknown id",
        "ids that are not in the dataset",
        [r.item for r in rows if r.item and r.item not in known_ids],
        "label only rows of this dataset (was the batch made for another dataset?)",
    )
    add(
        "label outside the class set",
        f"labels not in {{{', '.join(sorted(classes))}}}",
        [f"{r.item}={r.label!r}" for r in rows if r.label not in classes],
        "fix the typos, or declare the full class set with --classes",
    )
    seen: dict[tuple[str, str, str], set[str]] = {}
    for r in rows:
        seen.setdefault(r.key, set()).add(r.label)
    add(
        "conflicting labels",
        "rows labeled differently by the same annotator in this batch",
        [f"{r.item} by {r.annotator}: {sorted(seen[r.key])}" for r in rows if len(seen[r.key]) > 1],
        "keep one label per row and annotator",
    )
    return tuple(findings)


def dedupe(rows: list[BatchRow]) -> list[BatchRow]:
    """Drop exact repeats (same row, annotator, batch and label) within a batch."""
    counts = Counter((r.item, r.annotator, r.batch) for r in rows)
    out, kept = [], set()
    for r in rows:
        key = (r.item, r.annotator, r.batch)
        if counts[key] > 1 and key in kept:
            continue
        kept.add(key)
        out.append(r)
    return out
