"""Entry point: command groups, and the one place where errors become exit codes.

Exit codes (docs/cli.md): 0 ok, 1 internal error, 2 usage, 3 not found, 4 invalid input,
5 conflict, 6 configuration, 7 backend unavailable, 8 missing optional dependency, 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.markup import escape

from keelml.cli import (
    augment_cmd,
    compress_cmd,
    data_cmd,
    export_cmd,
    features_cmd,
    fl_cmd,
    label_cmd,
    lineage_cmd,
    models_cmd,
    monitor_cmd,
    privacy_cmd,
    quality_cmd,
    serve_cmd,
    train_cmd,
    ui_cmd,
    workspace_cmd,
)
from keelml.cli.context import State, err
from keelml.core.errors import KeelError

app = typer.Typer(
    name="keel",
    help="keelml: versioned data, lineage and the production ML loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(label_cmd.app, name="label")
app.add_typer(train_cmd.app, name="train")
app.add_typer(models_cmd.app, name="models")
app.add_typer(features_cmd.app, name="features")
app.add_typer(fl_cmd.app, name="fl")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(augment_cmd.app, name="augment")
app.add_typer(privacy_cmd.app, name="privacy")
quality_cmd.register(data_cmd.app)
workspace_cmd.register(app)
lineage_cmd.register(app)
compress_cmd.register(app)
export_cmd.register(app)
ui_cmd.register(app)
serve_cmd.register(app)


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Path | None = typer.Option(
        None, "--workspace", "-w", help="Workspace directory (default: the nearest keel.toml upwards)."
    ),
) -> None:
    ctx.obj = State(workspace=workspace)


def report(error: KeelError) -> int:
    # Messages are escaped: "[features] index" or "pip install 'keelml[export]'" must print as written.
    err.print(f"[bold red]error:[/] {escape(error.problem)}", markup=True, highlight=False)
    for label, value in (("expected", error.expected), ("received", error.received), ("fix", error.fix)):
        if value:
            err.print(f"  [bold]{label}:[/] {escape(value)}", markup=True, highlight=False)
    return error.exit_code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) the documented exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="keel", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except KeelError as exc:
        code = report(exc)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        err.print("interrupted")
        code = 130
    if argv is None:
        sys.exit(code)
    return code
