"""`keel features ...`: apply definitions, build training sets, materialize, look up, check parity."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, progress_bar, workspace
from keelml.core.errors import InvalidInputError

app = typer.Typer(
    help="Feature store: definitions, point-in-time training sets, online store, parity.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
PARITY_FAILED = 9


def _split(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _time(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"cannot read the time {text!r}",
            expected="an ISO-8601 time such as 2024-01-30T00:00:00+00:00",
            received=text,
            fix="pass --now in ISO-8601",
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@app.command("apply")
def apply(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Check the definitions named in keel.toml and register them (new version when they change)."""
    result = workspace(ctx).features.apply()
    if as_json:
        emit_json([{"node": r.node_id, "status": r.status, "digest": r.digest} for r in result.registered])
        return
    table = Table("definition", "version", "status", "digest")
    for r in result.registered:
        table.add_row(f"{r.kind}:{r.name}", str(r.version), r.status, r.digest[:12])
    out.print(table)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The entities, views and derived features defined in the workspace."""
    repo = workspace(ctx).features.repo
    table = Table("feature", "kind", "from", "ttl")
    for view in repo.views:
        for f in view.features:
            table.add_row(
                f, "stored", f"{view.name} <- {view.source} ({', '.join(view.entity.keys)})", str(view.ttl)
            )
    for d in repo.derived:
        kind = "on-demand" if d.request else "derived"
        table.add_row(d.name, kind, ", ".join((*d.inputs, *(f"request.{r}" for r in d.request))), "")
    out.print(table)


@app.command("retrieve")
def retrieve(
    ctx: typer.Context,
    entities: str = typer.Argument(
        ..., metavar="NAME[@V]", help="Dataset of entity rows (keys + timestamp)."
    ),
    features: str = typer.Option(..., "--features", "-f", help="Comma-separated feature names."),
    output: str = typer.Option(..., "--output", "-o", help="Name of the training dataset to write."),
    timestamp: str = typer.Option("event_time", "--timestamp", help="Time column of the entity rows."),
    label: str | None = typer.Option(None, "--label", help="Label column to record on the output."),
    index: bool | None = typer.Option(
        None,
        "--index/--no-index",
        help="Read each view through its sorted key index (built once per source version; "
        "views with several key columns use the join). Default: [features] index of keel.toml, else off.",
    ),
) -> None:
    """Join point-in-time correct features onto entity rows; the result is a new dataset version."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        use_index = ws.features.index_by_default() if index is None else index
        bar.stage("point-in-time lookup (key index)" if use_index else "point-in-time join")
        ref = ws.features.create_training_dataset(
            output, entities, _split(features), timestamp=timestamp, label=label, index=use_index
        )
    out.print(f"wrote {ref} ({ws.datasets.version(ref).rows:,} rows, digest {ref.digest[:12]})")


@app.command("materialize")
def materialize(
    ctx: typer.Context,
    incremental: bool = typer.Option(
        False, "--incremental", help="Write only entities with rows newer than the last run."
    ),
    now: str | None = typer.Option(None, "--now", help="Materialize as of this time (default: now)."),
    as_json: bool = JSON,
) -> None:
    """Write the latest value per entity of every view to the online store."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        bar.stage("materializing")
        result = ws.features.materialize(incremental=incremental, now=_time(now))
    if as_json:
        emit_json(result.to_json())
        return
    for v in result.views:
        mode = "incremental" if v.incremental else "full"
        out.print(
            f"{v.view}: {v.entities_written:,} entities from {v.source} ({mode}, watermark {v.watermark})"
        )


@app.command("get")
def get(
    ctx: typer.Context,
    entity: list[str] = typer.Option(..., "--entity", "-e", help="key=value (JSON value), repeatable."),
    features: str = typer.Option(..., "--features", "-f", help="Comma-separated feature names."),
    now: str | None = typer.Option(None, "--now", help="Evaluate ttl at this time (default: now)."),
) -> None:
    """Look up online features for one entity row (in-process; the HTTP API is `keel serve`)."""
    row: dict[str, Any] = {}
    for item in entity:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInputError(
                "--entity takes key=value", received=item, fix="e.g. --entity customer_id=1"
            )
        try:
            row[key] = json.loads(value)
        except json.JSONDecodeError:
            row[key] = value
    result = workspace(ctx).features.get_online_features([row], _split(features), now=_time(now))
    emit_json(result.rows[0])


@app.command("check-parity")
def check_parity(
    ctx: typer.Context,
    sample: int = typer.Option(100, "--sample", help="Entities per view."),
    seed: int = typer.Option(0, "--seed"),
    now: str | None = typer.Option(None, "--now", help="Compare as of this time (default: now)."),
    as_json: bool = JSON,
) -> None:
    """Compute a sample of entities offline and online; exit 9 when any feature differs."""
    report = workspace(ctx).features.check_parity(sample=sample, seed=seed, now=_time(now))
    if as_json:
        emit_json(report.to_json())
    else:
        table = Table(
            "feature", "mismatches", title=f"parity over {report.entities} entities as of {report.as_of}"
        )
        for name, count in report.per_feature().items():
            table.add_row(name, f"[red]{count}[/]" if count else "0")
        out.print(table)
        for m in report.mismatches[:10]:
            out.print(f"  {m.feature} {m.entity}: offline {m.offline!r} online {m.online!r}")
        out.print("[green]parity ok[/]" if report.ok else "[red]parity FAILED[/]")
    if not report.ok:
        raise typer.Exit(PARITY_FAILED)
