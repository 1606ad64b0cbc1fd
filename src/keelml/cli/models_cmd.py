"""`keel models ...`: the registry: list, show, promote (through gates), rollback, card."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from keelml.cli.context import emit_json, err, out, workspace
from keelml.core.errors import InvalidInputError
from keelml.tracking import GateResult, PromotionRefusedError

app = typer.Typer(
    help="Model registry: versions, aliases, gated promotion, rollback, model cards.", no_args_is_help=True
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
REFUSED = 9  # the exit code of a failed gate (docs/cli.md)


def _gates_table(gates: tuple[GateResult, ...]) -> Table:
    table = Table("gate", "status", "detail")
    colour = {"passed": "green", "failed": "red", "not evaluated": "yellow"}
    for g in gates:
        status = f"[{colour[g.status]}]{g.status}[/]" + (" (borderline)" if g.borderline else "")
        table.add_row(g.name, status, g.detail)
    return table


@app.command("list")
def list_models(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Registered models with their newest version and aliases."""
    models = workspace(ctx).models.list()
    if as_json:
        emit_json([m.to_json() for m in models])
        return
    table = Table("model", "latest", "aliases", "trained on", "test accuracy")
    for m in models:
        acc = m.metrics.get("test_accuracy")
        table.add_row(
            m.name,
            str(m.version),
            ", ".join(m.aliases) or "-",
            m.dataset or "-",
            "-" if acc is None else f"{acc:.3f}",
        )
    out.print(table if models else "no registered models yet (train one with `keel train tabular`)")


@app.command("show")
def show(
    ctx: typer.Context, spec: str = typer.Argument(..., metavar="NAME[@V|@ALIAS]"), as_json: bool = JSON
) -> None:
    """One model version: aliases, run, dataset, metrics."""
    info = workspace(ctx).models.show(spec)
    if as_json:
        emit_json(info.to_json())
        return
    out.print(f"[bold]{info.ref}[/]  aliases: {', '.join(info.aliases) or '-'}  run: {info.run_id}")
    out.print(f"trained on {info.dataset} (lineage node {info.ref.node_id}, pinned)")
    table = Table("metric", "value")
    for key, value in sorted(info.metrics.items()):
        table.add_row(key, f"{value:.4g}")
    out.print(table)


@app.command("promote")
def promote(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME@V"),
    alias: str = typer.Option("production", "--alias", "-a", help="staging or production."),
    force: bool = typer.Option(False, "--force", help="Promote despite failed gates (needs --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why the gates are overridden (recorded)."),
    as_json: bool = JSON,
) -> int:
    """Run the gates of keel.toml and move ALIAS to this version if they pass (exit 9 if refused)."""
    if force and reason is None:
        raise InvalidInputError(
            "--force needs --reason",
            expected='--force --reason "why"',
            received="no reason",
            fix="add --reason",
        )
    if reason is not None and not force:
        raise InvalidInputError("--reason is only used with --force", fix="add --force, or drop --reason")
    ws = workspace(ctx)
    try:
        done = ws.models.promote(spec, alias, force_reason=reason if force else None)
    except PromotionRefusedError as refused:
        if as_json:
            emit_json({"promoted": False, "gates": [g.to_json() for g in refused.gates]})
        else:
            out.print(_gates_table(refused.gates))
            err.print(f"[bold red]refused:[/] {refused.problem}")
            err.print(f"  failed: {refused.received}")
            err.print(f"  fix: {refused.fix}")
        return REFUSED
    if as_json:
        emit_json(
            {"promoted": True, "model": str(done.ref), "alias": alias, "previous": done.previous,
             "forced_reason": done.forced_reason, "gates": [g.to_json() for g in done.gates]}
        )  # fmt: skip
        return 0
    if done.gates:
        out.print(_gates_table(done.gates))
    forced = f" (forced: {done.forced_reason})" if done.forced_reason else ""
    was = f", was version {done.previous}" if done.previous else ""
    out.print(f"{done.ref.name}@{alias} -> version {done.ref.version}{was}{forced}")
    return 0


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    alias: str = typer.Option("production", "--alias", "-a", help="staging or production."),
) -> None:
    """Point ALIAS back at the version it named before the last promotion."""
    ref = workspace(ctx).models.rollback(name, alias)
    out.print(f"{name}@{alias} -> version {ref.version}")


@app.command("card")
def card(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="NAME[@V|@ALIAS]"),
    html: Path | None = typer.Option(None, "--html", help="Also write the card as HTML to this file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the markdown here, not stdout."),
) -> None:
    """A model card from the catalog: lineage, config, metrics overall and per slice, limitations."""
    made = workspace(ctx).models.card(spec)
    text = made.to_markdown()
    if output is not None:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        out.print(text, markup=False)
    if html is not None:
        html.write_text(made.to_html(), encoding="utf-8")
        err.print(f"wrote {html}")
