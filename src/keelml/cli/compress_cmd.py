"""`keel compress MODEL`: quantize / prune+quantize / distill+quantize, the Pareto table, the winner."""

from __future__ import annotations

from pathlib import Path

import typer

from keelml.cli.context import emit_json, out, progress_bar, workspace
from keelml.cli.rows_file import read_rows
from keelml.core.errors import InvalidInputError
from keelml.data.slices import parse_slice_option, slices_from_config


def compress(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL[@V]", help="A trained (torch) model version."),
    accuracy_budget: float = typer.Option(
        0.01, "--accuracy-budget", help="Largest allowed test-accuracy drop from MODEL (0.01 = 1 point)."
    ),
    latency_target: float | None = typer.Option(
        None, "--latency-target", metavar="MS", help="The winner's p50 latency must be at most this."
    ),
    hardware: str | None = typer.Option(
        None, "--hardware", metavar="PROFILE", help="Hardware profile of keel.toml (default cpu-2core)."
    ),
    methods: str = typer.Option(
        "quantize,prune,distill", "--methods", help="Comma-separated subset of quantize, prune, distill."
    ),
    layers: int | None = typer.Option(None, "--layers", help="Text student layers (default: half)."),
    hidden: str | None = typer.Option(None, "--hidden", help="Tabular student widths, e.g. 16,8."),
    prune_amount: float = typer.Option(0.5, "--prune-amount", help="Share of units pruned per layer."),
    prune_steps: int = typer.Option(
        1, "--prune-steps", help="Prune gradually: steps to --prune-amount, each ranked afresh and recovered."
    ),
    epochs: int = typer.Option(
        3, "--epochs", help="Epochs of distillation and of pruning recovery (per step)."
    ),
    ema_decay: float = typer.Option(
        0.0, "--ema-decay", help="Keep a moving average of the weights while training (e.g. 0.99; 0 = off)."
    ),
    temperature: float = typer.Option(2.0, "--temperature", help="Softmax temperature of the soft targets."),
    alpha: float = typer.Option(
        0.5, "--alpha", help="Weight of the soft-target loss; 1 - alpha goes to the hard labels."
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", help="Student learning rate (default 1e-4 text, 1e-2 tabular)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of student initialisation and batch order."),
    teacher_layers: str | None = typer.Option(
        None, "--teacher-layers", help="Text: teacher layers the student keeps, 0-based, e.g. 0,5."
    ),
    transfer: Path | None = typer.Option(
        None,
        "--transfer",
        metavar="FILE",
        help="Unlabeled rows (.parquet/.csv/.jsonl, the model's input columns) for distillation.",
    ),
    batch: int = typer.Option(1, "--batch", help="Batch size of the latency benchmark."),
    seq: int = typer.Option(128, "--seq", help="Sequence length of the latency benchmark (text)."),
    rounds: int = typer.Option(20, "--rounds", help="Interleaved benchmark rounds."),
    slice_opts: list[str] = typer.Option([], "--slice", help="Extra slice NAME=PREDICATE (also [slices])."),
    report: Path = typer.Option(Path("compress-report.html"), "-o", "--report", help="HTML report to write."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Make and measure compressed variants; mark the fastest within the budget with alias `compressed`."""
    from keelml.compress import DistillConfig, FitSettings, PruneConfig  # on use: keeps `keel` start-up light

    ws = workspace(ctx)
    fit = FitSettings(epochs=epochs, ema_decay=ema_decay, temperature=temperature, alpha=alpha,
                      learning_rate=learning_rate, seed=seed)  # fmt: skip
    widths = _integers(hidden, "--hidden", "16,8")
    picked = _integers(teacher_layers, "--teacher-layers", "0,5")
    rows = read_rows(transfer, "--transfer")
    slices = [*slices_from_config(ws.config.model_extra), *(parse_slice_option(s) for s in slice_opts)]
    with progress_bar() as bar:
        result = ws.compress.run(
            model, accuracy_budget=accuracy_budget, latency_target_ms=latency_target, hardware=hardware,
            methods=[m.strip() for m in methods.split(",") if m.strip()],
            distill_config=DistillConfig(layers=layers, hidden=widths, fit=fit, teacher_layers=picked),
            prune_config=PruneConfig(amount=prune_amount, steps=prune_steps, fit=fit), transfer=rows,
            slices=slices,
            batch_size=batch, seq=seq, rounds=rounds, report=report, progress=bar,
        )  # fmt: skip
    if as_json:
        emit_json(result.to_json())
        return
    out.print(
        f"{result.parent}: test accuracy {result.parent_accuracy:.4f}, {result.hardware}, batch {batch}"
    )
    out.print(result.markdown(), markup=False)
    if result.winner is None:
        target = "" if latency_target is None else f" and the {latency_target:g} ms target"
        out.print(
            f"no variant is within the {accuracy_budget * 100:g} point budget{target}; nothing was marked"
        )
    else:
        w = result.winner
        drop = f"{w.accuracy_drop * 100:+.2f} points"
        out.print(f"winner: {w.spec} ({w.label}), {drop}, p50 {w.p50_ms} ms; alias `compressed` -> {w.spec}")
    out.print(f"report: {result.report}")


def _integers(text: str | None, option: str, example: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise InvalidInputError(f"{option} takes comma-separated integers", expected=f"e.g. {example}",
                                received=text, fix=f"pass e.g. {option} {example}") from exc  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("compress")(compress)
