"""`keel monitor ...`: reference profiles, runs over new windows, report, Prometheus metrics and rules."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, progress_bar, workspace

app = typer.Typer(
    help="Monitoring: data and concept drift, performance without labels, slices, fairness, latency, alerts.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
ALARM = 9  # exit code of `keel monitor run --fail-on-alarm` when a check alarmed (docs/cli.md)


@app.command("profile")
def profile(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The monitored model ([monitor.MODEL] in keel.toml)."),
    source: str | None = typer.Option(
        None, "--from", help="NAME@V of a dataset with predictions, or log:START/END (default: the config)."
    ),
    as_json: bool = JSON,
) -> None:
    """Sketch the reference per partition, merge, and store the profile in the catalog."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        bar.stage("profiling the reference")
        info = ws.monitor.profile(model, source)
    if as_json:
        emit_json(info.__dict__)
        return
    acc = "-" if info.accuracy is None else f"{info.accuracy:.3f}"
    out.print(
        f"profile {info.id} of {model}: {info.rows} rows from {info.source}, {len(info.features)} features, "
        f"{info.partitions} partitions merged, reference accuracy {acc}"
    )


@app.command("run")
def run(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The monitored model ([monitor.MODEL] in keel.toml)."),
    window: str | None = typer.Option(None, "--window", help="A duration (1h, 30m) or a row count (1000)."),
    data: str | None = typer.Option(None, "--data", help="Check NAME@V (a batch with predictions) instead."),
    fail_on_alarm: bool = typer.Option(False, "--fail-on-alarm", help="Exit 9 when any check alarmed."),
    as_json: bool = JSON,
) -> int:
    """Run every configured check over the new windows; store the results; send alerts."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        bar.stage("checking new windows")
        result = ws.monitor.run(model, window=window, data=data)
    if as_json:
        emit_json(
            {
                "monitor": model,
                "findings": list(result.findings),
                "windows": [
                    {
                        "start": w.start,
                        "end": w.end,
                        "rows": w.rows,
                        "alarms": [
                            {"check": c.check, "target": c.target, "value": c.value, "p_value": c.p_value}
                            for c in w.checks
                            if c.alarm
                        ],
                        "findings": list(w.findings),
                    }
                    for w in result.windows
                ],
                "alerts": [{**a.to_json(), "suppressed": a.suppressed} for a in result.alerts],
            }
        )
    else:
        for f in result.findings:
            out.print(f"[yellow]{f}[/]")
        for w in result.windows:
            table = Table("check", "target", "value", "p-value", title=f"{w.start} .. {w.end}: {w.rows} rows")
            for c in w.checks:
                if c.alarm:
                    p = "-" if c.p_value is None else f"{c.p_value:.3g}"
                    v = "-" if c.value is None else f"{c.value:.4g}"
                    table.add_row(c.check, c.target, v, p)
            out.print(
                table if any(c.alarm for c in w.checks) else f"{w.start} .. {w.end}: {w.rows} rows, no alarm"
            )
            for f in w.findings:
                out.print(f"  - {f}")
        for a in result.alerts:
            out.print(
                ("[dim](suppressed by cooldown)[/] " if a.suppressed else "[bold red]alert[/] ") + a.message
            )
    return ALARM if fail_on_alarm and result.drift else 0


@app.command("report")
def report(
    ctx: typer.Context,
    model: str = typer.Argument(...),
    output: Path = typer.Option(Path("monitor-report.html"), "-o", "--output", help="HTML file to write."),
) -> None:
    """Write an HTML report (plots inlined; opens offline)."""
    path = workspace(ctx).monitor.report(model, output)
    out.print(f"wrote {path}")


@app.command("metrics")
def metrics(ctx: typer.Context) -> None:
    """Print the Prometheus exposition of the latest monitor results."""
    typer.echo(workspace(ctx).monitor.metrics_text(), nl=False)


@app.command("alert-rules")
def alert_rules(
    ctx: typer.Context,
    model: str = typer.Argument(...),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the YAML here instead of stdout."),
) -> None:
    """Prometheus alert rules (YAML) generated from the alert rules in keel.toml."""
    text = workspace(ctx).monitor.alert_rules(model)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")


@app.command("alerts")
def list_alerts(ctx: typer.Context, model: str | None = typer.Argument(None), as_json: bool = JSON) -> None:
    """Alerts fired so far (newest last)."""
    fired = workspace(ctx).monitor.alerts(model)
    if as_json:
        emit_json([{**a.to_json(), "deliveries": [list(d) for d in a.deliveries]} for a in fired])
        return
    table = Table("fired", "severity", "rule", "message", "deliveries")
    for a in fired:
        table.add_row(
            a.fired_at.isoformat(),
            a.severity,
            a.rule,
            a.message,
            ", ".join(f"{c}: {s}" for c, s in a.deliveries),
        )
    out.print(table if fired else "no alerts fired")
