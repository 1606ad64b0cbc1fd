"""`keel train tabular`: train, track in MLflow and register a model version."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, progress_bar, workspace
from keelml.core.errors import ConfigError, InvalidInputError, SourceNotFoundError
from keelml.data.slices import parse_slice_option, slices_from_config
from keelml.train.config import TabularConfig

app = typer.Typer(
    help="Train models on dataset versions (tracked in MLflow, registered).", no_args_is_help=True
)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SourceNotFoundError(f"no training config at {path}", fix="check the path given to --config")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML", received=str(exc), fix="fix the syntax") from exc


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("tabular")
def tabular(
    ctx: typer.Context,
    data: str | None = typer.Option(None, "--data", "-d", help="Dataset version NAME[@V] (default latest)."),
    name: str | None = typer.Option(None, "--name", "-n", help="Registered model name (default: DATA-clf)."),
    config_file: Path | None = typer.Option(None, "--config", "-c", help="TOML: data, name and config keys."),
    model: str | None = typer.Option(None, "--model", help="mlp (default) or logreg (baseline)."),
    label: str | None = typer.Option(None, "--label", help="Label column (default: the dataset's)."),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Maximum epochs (early stopping may end sooner)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (split, init, batches)."),
    slice_opts: list[str] = typer.Option([], "--slice", help="Extra slice NAME=PREDICATE (also [slices])."),
    no_register: bool = typer.Option(False, "--no-register", help="Track the run but do not register."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Train a tabular classifier; evaluate overall and per slice; track and register it."""
    from keelml.pipeline.training import train_tabular

    raw = _read_config(config_file) if config_file else {}
    data = data or raw.pop("data", None)
    name = name or raw.pop("name", None)
    raw.pop("data", None), raw.pop("name", None)
    if data is None:
        raise InvalidInputError(
            "no dataset to train on", expected="--data NAME[@V] or data = ... in --config", fix="pass --data"
        )
    flags = {"model": model, "label": label, "epochs": epochs, "seed": seed}
    raw.update({k: v for k, v in flags.items() if v is not None})
    config = TabularConfig.from_mapping(raw, str(config_file) if config_file else "the options")
    ws = workspace(ctx)
    slices = [*slices_from_config(ws.config.model_extra), *(parse_slice_option(s) for s in slice_opts)]
    model_name = name or f"{data.split('@')[0]}-clf"
    with progress_bar() as bar:
        run = train_tabular(
            ws, data, name=model_name, config=config, slices=slices, progress=bar, register=not no_register
        )
    result = run.trained.result
    if as_json:
        emit_json(
            {
                "run_id": run.run_id,
                "model": None if run.registered is None else str(run.registered.ref),
                "dataset": str(run.trained.dataset),
                "epochs": len(result.history.epochs),
                "best_epoch": result.history.best_epoch,
                "sizes": result.sizes,
                "evaluation": result.evaluation.to_json(),
            }
        )
        return
    history = result.history
    stop = "early stop" if history.stopped_early else "all epochs"
    out.print(
        f"trained {config.model} on {run.trained.dataset} ({result.sizes['train']} train / "
        f"{result.sizes['validation']} validation / {result.sizes['test']} test rows); "
        f"{len(history.epochs)} epochs ({stop}), best epoch {history.best_epoch}"
    )
    table = Table("part", "rows", "accuracy", "F1 (macro)", "AUROC", "ECE")
    parts = {
        "test": result.evaluation.overall,
        **{f"slice {k}": v for k, v in result.evaluation.slices.items()},
    }
    for part, m in parts.items():
        table.add_row(part, str(m.rows), _fmt(m.accuracy), _fmt(m.f1_macro), _fmt(m.auroc), _fmt(m.ece))
    out.print(table)
    overall = result.evaluation.overall
    out.print("confusion (rows: true, columns: predicted; " + ", ".join(overall.classes) + ")")
    for cls, row in zip(overall.classes, overall.confusion, strict=True):
        out.print(f"  {cls:>12}  " + "  ".join(f"{v:6d}" for v in row))
    out.print(f"MLflow run {run.run_id}")
    if run.registered is not None:
        out.print(
            f"registered [bold]{run.registered.ref}[/] (pinned lineage node {run.registered.ref.node_id})"
        )
