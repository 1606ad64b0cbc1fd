"""`keel data validate | schema | issues | relabel | split | slices`: data quality (front end).

Exit codes: as in docs/cli.md, plus 9 when `validate` finds a blocking anomaly (or `split`
finds rows shared exactly between parts), so a pipeline can gate on it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from keelml.cli.context import emit_json, err, out, progress_bar, workspace
from keelml.core.errors import InvalidInputError
from keelml.data.batches import VersionSource
from keelml.data.label_issues import LabelIssuesConfig
from keelml.data.quality import validate_dataset, version_schema
from keelml.data.schema import DataSchema, Environment
from keelml.data.slices import Slice, parse_slice_option, slices_from_config
from keelml.data.validation import ValidationReport

BLOCKED = 9
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _environment(value: str) -> Environment:
    if value not in ("training", "serving"):
        raise InvalidInputError(
            f"unknown environment {value!r}", expected="training or serving", fix="--environment serving"
        )
    return "training" if value == "training" else "serving"


def _cut(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def validate(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="NAME[@V]|FILE", help="A version, or a batch file to check."),
    against: str | None = typer.Option(None, "--against", help="Reference version: its schema and profile."),
    schema_file: Path | None = typer.Option(
        None, "--schema", help="A schema YAML (from `keel data schema`)."
    ),
    environment: str = typer.Option("training", "--environment", "-e", help="training or serving."),
    leakage: str | None = typer.Option(None, "--leakage", help="Also report rows shared with NAME[@V]."),
    html_path: Path | None = typer.Option(None, "--html", help="Write an HTML report with plots."),
    no_duplicates: bool = typer.Option(False, "--no-duplicates", help="Skip duplicate detection."),
    as_json: bool = JSON,
) -> None:
    """Check a version or a batch against a schema; exit 9 on a blocking anomaly."""
    ws = workspace(ctx)
    schema = DataSchema.read(schema_file) if schema_file is not None else None
    with progress_bar() as bar:
        report = validate_dataset(
            ws,
            target,
            against=against,
            schema=schema,
            environment=_environment(environment),
            duplicates=not no_duplicates,
            leakage_with=leakage,
            progress=bar,
        )
    if html_path is not None:
        from keelml.data.report_html import write_validation_html

        written = write_validation_html(report, html_path)
        err.print(f"HTML report: {written}")
    if as_json:
        emit_json(report.to_json())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(BLOCKED)


def _print_report(report: ValidationReport) -> None:
    against = f" against {report.reference}" if report.reference else " (self-check: no reference)"
    out.print(
        f"[bold]{report.target}[/]{against}: {report.rows:,} rows, "
        f"{report.environment}, {report.seconds:.2f} s"
    )
    if report.anomalies:
        table = Table("severity", "column", "anomaly", "description", "expected", "received")
        for a in report.anomalies:
            style = "bold red" if a.severity == "blocking" else "yellow"
            table.add_row(
                f"[{style}]{a.severity}[/]",
                a.column or "-",
                a.kind,
                a.description,
                _cut(a.expected),
                _cut(a.received),
            )
        out.print(table)
    warnings = len(report.anomalies) - len(report.blocking)
    if report.ok:
        out.print(f"[green]OK[/]: no blocking anomaly ({warnings} warnings)")
    else:
        out.print(f"[bold red]FAILED[/]: {len(report.blocking)} blocking anomalies, {warnings} warnings")


def schema(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@V]"),
    write: Path | None = typer.Option(None, "--write", help="Write the schema as YAML, to review and edit."),
    as_json: bool = JSON,
) -> None:
    """Infer a schema from a version's stored profile (types, ranges, categories, missing rates)."""
    inferred = version_schema(workspace(ctx), spec)
    if write is not None:
        inferred.write(write)
        err.print(f"schema of {inferred.source} written to {write}")
    if as_json:
        emit_json(inferred.to_dict())
        return
    table = Table("column", "role", "kind", "type", "required in", "missing <=", "range / allowed", "notes")
    for c in inferred.columns:
        domain = (
            f"{c.minimum:g} .. {c.maximum:g}"
            if c.minimum is not None and c.maximum is not None
            else ", ".join(c.allowed or ())
        )
        table.add_row(
            c.name,
            c.role,
            c.kind,
            c.dtype,
            ", ".join(c.environments or ()) or "-",
            f"{c.max_missing_rate:.1%}",
            _cut(domain, 50),
            _cut(c.notes[0], 50) if c.notes else "",
        )
    out.print(f"[bold]schema of {inferred.source}[/]")
    out.print(table)


def issues(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@V]"),
    output: Path | None = typer.Option(
        None, "--out", help="Review queue CSV (default: reviews/NAME@V-label-issues.csv)."
    ),
    folds: int = typer.Option(5, "--folds", help="Cross-validation folds."),
    model: str = typer.Option("auto", "--model", help="auto, linear, boosting or ensemble."),
    seed: int = typer.Option(0, "--seed"),
    top: int = typer.Option(10, "--top", help="Rows to print."),
    as_json: bool = JSON,
) -> None:
    """Rank likely mislabeled rows (cleanlab on cross-validated probabilities); write a review queue."""
    from keelml.data.relabel import label_issues, write_queue

    ws = workspace(ctx)
    config = LabelIssuesConfig(folds=folds, model=model, seed=seed)  # type: ignore[arg-type]
    with progress_bar() as bar:
        report = label_issues(ws, spec, config, progress=bar)
    path = output or ws.root / "reviews" / f"{report.dataset}-label-issues.csv"
    write_queue(ws, report, path)
    if as_json:
        emit_json({**report.to_json(), "queue": str(path)})
        return
    out.print(
        f"[bold]{report.dataset}[/]: {len(report.issues):,} likely label issues "
        f"in {report.checked:,} checked rows "
        f"({report.model}, {report.folds}-fold, out-of-sample accuracy {report.accuracy:.1%})"
    )
    for finding in report.findings:
        out.print(f"  note: {finding}")
    table = Table("rank", "id", "given", "suggested", "quality")
    for i in report.issues[:top]:
        table.add_row(str(i.rank), str(i.id), i.given, i.suggested, f"{i.quality:.3f}")
    if report.issues:
        out.print(table)
    out.print(
        f"review queue: {path}  (fill corrected_label, then `keel data relabel {report.dataset} {path}`)"
    )


def relabel(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@V]", help="The version that was reviewed."),
    corrections: Path = typer.Argument(..., help="The review queue with corrected_label filled."),
    accept_suggested: bool = typer.Option(
        False, "--accept-suggested", help="Empty corrections take the suggestion."
    ),
    as_json: bool = JSON,
) -> None:
    """Apply label corrections as a new version (lineage to the reviewed one; nothing edited in place)."""
    from keelml.data.relabel import relabel as apply

    result = apply(workspace(ctx), spec, corrections, accept_suggested=accept_suggested)
    if as_json:
        emit_json({"base": str(result.base), "version": str(result.ref), "digest": result.ref.digest,
                   "changed": result.changed, "unchanged": result.unchanged})  # fmt: skip
        return
    out.print(
        f"{result.ref} written: {result.changed} labels changed "
        f"({result.unchanged} already right), from {result.base}"
    )


def split(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@V]"),
    by: str = typer.Option("random", "--by", help="random, time or group."),
    column: str | None = typer.Option(None, "--column", help="Time or group column."),
    test: float = typer.Option(0.2, "--test", help="Share of rows in test."),
    validation: float = typer.Option(0.0, "--validation", help="Share of rows in validation."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = JSON,
) -> None:
    """Write NAME-train / NAME-test (/ NAME-validation) as versioned, reproducible splits; check leakage."""
    from keelml.data.splits import SplitConfig, split_dataset

    config = SplitConfig(by=by, test=test, validation=validation, seed=seed, column=column)  # type: ignore[arg-type]
    with progress_bar() as bar:
        result = split_dataset(workspace(ctx), spec, config, progress=bar)
    if as_json:
        emit_json(result.to_json())
    else:
        table = Table("part", "dataset", "rows", "labels")
        for p in result.parts:
            table.add_row(
                p.name, str(p.ref), f"{p.rows:,}", ", ".join(f"{k}: {v:,}" for k, v in p.labels[:6])
            )
        out.print(f"[bold]{result.source}[/] split by {result.config.by} (seed {result.config.seed})")
        out.print(table)
        for leak in result.leakage:
            verdict = (
                "[green]no leakage[/]"
                if not leak.leaked_rows
                else f"[bold red]{leak.leaked_rows:,} shared rows[/]"
            )
            out.print(f"  {leak.a} vs {leak.b}: {verdict}")
    if result.hard_leaked_rows:
        raise typer.Exit(BLOCKED)


def slices(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@V]"),
    against: str | None = typer.Option(None, "--against", help="Reference version for representativeness."),
    slice_options: list[str] = typer.Option([], "--slice", help="Extra slice NAME=PREDICATE (repeatable)."),
    as_json: bool = JSON,
) -> None:
    """Slice counts, label balance and representativeness (slices from keel.toml [slices] and --slice)."""
    from keelml.data.slice_report import slice_report

    ws = workspace(ctx)
    chosen: list[Slice] = [
        *slices_from_config(ws.config.model_extra),
        *map(parse_slice_option, slice_options),
    ]
    if not chosen:
        raise InvalidInputError(
            "no slices to report",
            expected='a slices table in keel.toml (e.g. long = "text_length(review) > 200") '
            "or --slice NAME=PREDICATE",
            received="none",
            fix=f"keel data slices {spec} --slice 'long=text_length(review) > 200'",
        )
    source = VersionSource.of(ws, spec)
    reference = VersionSource.of(ws, against) if against else None
    report = slice_report(
        source.batches(),
        chosen,
        target=str(source.ref),
        label=source.label,
        reference=reference.batches() if reference else None,
        reference_name=str(reference.ref) if reference else None,
    )
    if as_json:
        emit_json(report.to_json())
        return
    table = Table("slice", "predicate", "rows", "share", "reference share", "labels", "label shift", "flag")
    for s in report.slices:
        table.add_row(
            s.name,
            _cut(s.expression, 40),
            f"{s.rows:,}",
            f"{s.share:.1%}",
            "" if s.reference_share is None else f"{s.reference_share:.1%}",
            _cut(", ".join(f"{k}: {v:,}" for k, v in s.labels[:4]), 40),
            "" if s.label_shift is None else f"{s.label_shift:.3f}",
            s.flag,
        )
    against_text = f" vs {report.reference}" if report.reference else ""
    out.print(f"[bold]{report.target}[/]{against_text}: {report.rows:,} rows")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("schema")(schema)
    app.command("issues")(issues)
    app.command("relabel")(relabel)
    app.command("split")(split)
    app.command("slices")(slices)
