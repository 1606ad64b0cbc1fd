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
from keelml.train.config import TabularConfig, TextConfig
from keelml.train.text import TextResult

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


DP_EPSILON = typer.Option(
    None, "--dp-epsilon", help="Train with DP-SGD; calibrate the noise to this epsilon (PLD accountant)."
)
DP_DELTA = typer.Option(None, "--dp-delta", help="DP delta (default 1e-5; must be below 1/rows).")
DP_NOISE = typer.Option(
    None, "--noise-multiplier", help="Train with DP-SGD at this noise multiplier; reports the epsilon."
)
DP_CLIP = typer.Option(None, "--max-grad-norm", help="DP per-sample clipping norm (default 1.0).")
DP_SECURE = typer.Option(
    None,
    "--secure-noise/--no-secure-noise",
    help="DP noise from a CSPRNG (default on); --no-secure-noise: torch's seeded generator (reproducible).",
)


def _dp_flags(
    epsilon: float | None, delta: float | None, noise: float | None, clip: float | None,
    secure: bool | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {"dp_epsilon": epsilon, "dp_delta": delta, "dp_noise_multiplier": noise, "dp_max_grad_norm": clip,
            "dp_secure_noise": secure}  # fmt: skip


def _range(value: str | None) -> tuple[float, ...] | None:
    """``--input-range LOW,HIGH`` as numbers (TabularConfig checks low < high)."""
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise InvalidInputError(
            "--input-range must be LOW,HIGH", received=value, fix="pass e.g. --input-range 0,16"
        ) from exc


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
    class_weight: str | None = typer.Option(
        None, "--class-weight", help="none (default) or balanced: weight the loss by inverse class frequency."
    ),
    activation: str | None = typer.Option(
        None, "--activation", help="relu (default) or tanh (bounded; trains better under DP-SGD)."
    ),
    input_range: str | None = typer.Option(
        None, "--input-range", help="LOW,HIGH: the numeric columns' known range, scaled to [-1, 1]."
    ),
    slice_opts: list[str] = typer.Option([], "--slice", help="Extra slice NAME=PREDICATE (also [slices])."),
    no_register: bool = typer.Option(False, "--no-register", help="Track the run but do not register."),
    dp_epsilon: float | None = DP_EPSILON,
    dp_delta: float | None = DP_DELTA,
    noise_multiplier: float | None = DP_NOISE,
    max_grad_norm: float | None = DP_CLIP,
    secure_noise: bool | None = DP_SECURE,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Train a tabular classifier; evaluate overall and per slice; track and register it."""
    raw = _read_config(config_file) if config_file else {}
    flags: dict[str, Any] = {"model": model, "label": label, "epochs": epochs, "seed": seed}
    flags |= {"class_weight": class_weight, "activation": activation, "input_range": _range(input_range)}
    flags |= _dp_flags(dp_epsilon, dp_delta, noise_multiplier, max_grad_norm, secure_noise)
    _train(ctx, raw, flags, TabularConfig, data, name, config_file, slice_opts, no_register, as_json)


@app.command("text")
def text(
    ctx: typer.Context,
    data: str | None = typer.Option(None, "--data", "-d", help="Dataset version NAME[@V] (default latest)."),
    name: str | None = typer.Option(None, "--name", "-n", help="Registered model name (default: DATA-clf)."),
    config_file: Path | None = typer.Option(None, "--config", "-c", help="TOML: data, name and config keys."),
    text_column: str | None = typer.Option(None, "--text", help="Text column (default: text)."),
    base: str | None = typer.Option(
        None, "--base", help="minilm (bundled, default) or a local model folder."
    ),
    peft: str | None = typer.Option(None, "--peft", help="lora (default), ia3 or full."),
    label: str | None = typer.Option(None, "--label", help="Label column (default: the dataset's)."),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Maximum epochs (early stopping may end sooner)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    slice_opts: list[str] = typer.Option([], "--slice", help="Extra slice NAME=PREDICATE (also [slices])."),
    no_register: bool = typer.Option(False, "--no-register", help="Track the run but do not register."),
    dp_epsilon: float | None = DP_EPSILON,
    dp_delta: float | None = DP_DELTA,
    noise_multiplier: float | None = DP_NOISE,
    max_grad_norm: float | None = DP_CLIP,
    secure_noise: bool | None = DP_SECURE,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Fine-tune a text classifier offline (LoRA, IA3 or full); evaluate, track and register it."""
    raw = _read_config(config_file) if config_file else {}
    flags = {"text": text_column, "base": base, "peft": peft, "label": label, "epochs": epochs, "seed": seed}
    flags |= _dp_flags(dp_epsilon, dp_delta, noise_multiplier, max_grad_norm, secure_noise)
    _train(ctx, raw, flags, TextConfig, data, name, config_file, slice_opts, no_register, as_json)


def _train(
    ctx: typer.Context,
    raw: dict[str, Any],
    flags: dict[str, Any],
    kind: type[TabularConfig] | type[TextConfig],
    data: str | None,
    name: str | None,
    config_file: Path | None,
    slice_opts: list[str],
    no_register: bool,
    as_json: bool,
) -> None:
    from keelml.pipeline.training import train_and_register

    data = data or raw.get("data")
    name = name or raw.get("name")
    raw = {k: v for k, v in raw.items() if k not in ("data", "name")}
    if data is None:
        raise InvalidInputError(
            "no dataset to train on", expected="--data NAME[@V] or data = ... in --config", fix="pass --data"
        )
    raw.update({k: v for k, v in flags.items() if v is not None})
    config = kind.from_mapping(raw, str(config_file) if config_file else "the options")
    ws = workspace(ctx)
    ref = ws.datasets.ref(data)
    columns = set(ws.catalog.get_version(ref.name, ref.version).schema)
    # [slices] of keel.toml that apply to this dataset's columns
    declared = [s for s in slices_from_config(ws.config.model_extra) if s.columns() <= columns]
    slices = [*declared, *(parse_slice_option(s) for s in slice_opts)]
    model_name = name or f"{data.split('@')[0]}-clf"
    with progress_bar() as bar:
        run = train_and_register(
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
                "privacy": None if result.privacy is None else result.privacy.to_json(),
            }
        )
        return
    history = result.history
    stop = "early stop" if history.stopped_early else "all epochs"
    what = config.model if isinstance(config, TabularConfig) else f"{config.base} ({config.peft})"
    out.print(
        f"trained {what} on {run.trained.dataset} ({result.sizes['train']} train / "
        f"{result.sizes['validation']} validation / {result.sizes['test']} test rows); "
        f"{len(history.epochs)} epochs ({stop}), best epoch {history.best_epoch}"
    )
    if isinstance(result, TextResult):
        share = result.trainable_parameters / result.total_parameters
        counts = f"{result.trainable_parameters:,} of {result.total_parameters:,}"
        out.print(f"trainable parameters: {counts} ({share:.2%})")
    if result.privacy is not None:
        p = result.privacy
        out.print(
            f"differential privacy: [bold]epsilon {p.epsilon:.3f}[/], delta {p.delta:g} "
            f"({p.accountant.upper()} accountant, {p.neighbouring})"
        )
        out.print(
            f"  noise multiplier {p.noise_multiplier:.3f}, clipping norm {p.max_grad_norm:g}, "
            f"sample rate {p.sample_rate:.4g}, {p.steps} steps, {p.clipping} clipping; "
            f"recorded in the privacy ledger of {run.trained.dataset.name}"
        )
        out.print(f"  noise source: {p.noise_source}")
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
