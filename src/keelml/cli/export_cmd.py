"""`keel export` (ONNX and other targets, quantized variants) and `keel bench` (latency, memory, cost)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, progress_bar, workspace
from keelml.cli.rows_file import read_rows
from keelml.core.errors import InvalidInputError
from keelml.data.slices import parse_slice_option, slices_from_config


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2%}"


def export(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Registered model version NAME[@V|@ALIAS] (a trained model)."),
    variants: list[str] = typer.Option(
        ["fp32", "int8"],
        "--variant",
        "-v",
        help="fp32, int8 (dynamic, per-channel), int8-static, int4, fp16, openvino, coreml. Repeatable.",
    ),
    budget: float = typer.Option(0.005, "--accuracy-budget", help="Largest accuracy drop a winner may have."),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Rows for int8-static (.parquet/.csv/.jsonl; default: 128 dataset rows)."
    ),
    exporter: str = typer.Option("auto", "--exporter", help="auto (dynamo, then legacy), dynamo or legacy."),
    slice_opts: list[str] = typer.Option([], "--slice", help="Extra slice NAME=PREDICATE (also [slices])."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    fusion: bool = typer.Option(True, "--fusion/--no-fusion", help="Fuse BERT-like layers before int8."),
) -> None:
    """Export a trained model to ONNX (and other targets); each variant becomes a new registered version."""
    ws = workspace(ctx)
    slices = [*slices_from_config(ws.config.model_extra), *(parse_slice_option(s) for s in slice_opts)]
    rows = read_rows(calibration, "--calibration")
    with progress_bar() as bar:
        result = ws.exports.export(model, variants, calibration=rows, accuracy_budget=budget, slices=slices,
                                   exporter=exporter, fusion=fusion, progress=bar)  # fmt: skip
    if as_json:
        emit_json({
            "parent": str(result.parent), "exporter": result.exporter,
            "fallback_reason": result.fallback_reason,
            "opset": result.opset, "parity_max_abs_diff": result.parity_max_abs_diff,
            "parent_metrics": dict(result.parent_metrics), "winner": result.winner,
            "fusion": result.fusion.to_json(),
            "variants": [{"variant": v.variant, "version": None if v.ref is None else str(v.ref),
                          "size_bytes": v.size_bytes, "metrics": dict(v.metrics),
                          "within_budget": v.within_budget, "note": v.note} for v in result.variants],
        })  # fmt: skip
        return
    how = result.exporter + (f" (dynamo failed: {result.fallback_reason})" if result.fallback_reason else "")
    out.print(f"exported {result.parent} with the {how} exporter, opset {result.opset}; "
              f"max |torch - onnx| = {result.parity_max_abs_diff:.2g}")  # fmt: skip
    out.print(f"fusion: {'applied' if result.fusion.applied else 'not applied'} ({result.fusion.reason})")
    table = Table("variant", "version", "size", "test accuracy", "drop", f"within {budget:.2%}")
    table.add_row("torch", str(result.parent), "-", _pct(result.parent_metrics["test_accuracy"]), "-", "-")
    for v in result.variants:
        acc = v.metrics.get("test_accuracy", float("nan"))
        table.add_row(v.variant, str(v.ref), f"{v.size_bytes / 1e6:.2f} MB", _pct(acc), _pct(v.accuracy_drop),
                      "yes" if v.within_budget else ("n/a" if v.note else "[red]no[/]"))  # fmt: skip
    out.print(table)
    for v in result.variants:
        if v.note:
            out.print(f"{v.variant}: {v.note}")
    out.print(f"winner: [bold]{result.winner or 'none within budget'}[/]")


def bench(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="NAME[@V]: the trained version and its exports are benchmarked."),
    hardware: str | None = typer.Option(None, "--hardware", help="Profile of [hardware.NAME] (cpu-2core)."),
    batch: str = typer.Option("1,8,32", "--batch", help="Comma-separated batch sizes."),
    seq: int = typer.Option(128, "--seq", help="Sequence length (text models)."),
    variants: list[str] = typer.Option([], "--variant", "-v", help="Only these exported variants."),
    rounds: int = typer.Option(30, "--rounds", help="Interleaved rounds (calls per variant and batch)."),
    no_torch: bool = typer.Option(False, "--no-torch", help="Leave out the PyTorch eager baseline."),
    no_memory: bool = typer.Option(False, "--no-memory", help="Skip the peak-memory probes."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Latency p50/p90/p99, throughput, peak memory, size and cost per 1M predictions, interleaved."""
    try:
        batches = tuple(int(b) for b in batch.split(",") if b.strip())
    except ValueError as exc:
        raise InvalidInputError("--batch takes integers", expected="e.g. 1,8,32", received=batch,
                                fix="pass --batch 1,8,32") from exc  # fmt: skip
    ws = workspace(ctx)
    with progress_bar() as bar:
        result = ws.exports.bench(
            model, hardware=hardware, batches=batches, seq=seq, variants=variants or None, rounds=rounds,
            include_torch=not no_torch, memory=not no_memory, progress=bar,
        )  # fmt: skip
    if as_json:
        emit_json(result.to_json())
        return
    hw = result.hardware
    out.print(f"hardware {hw.name}: {hw.cores} threads, {hw.price_per_hour} USD/h, "
              f"accelerator {hw.accelerator}; "
              f"{result.rounds} interleaved rounds; {result.machine}")  # fmt: skip
    table = Table("variant", "version", "batch", "p50 ms", "p90 ms", "p99 ms", "pred/s", "peak MB", "size MB",
                  "USD / 1M")  # fmt: skip
    for r in result.rows:
        mem = "-" if r.peak_memory_mb is None else f"{r.peak_memory_mb:.0f}"
        table.add_row(r.variant, f"{r.model}@{r.version}", str(r.batch_size), f"{r.p50_ms:.2f}",
                      f"{r.p90_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.throughput:.0f}", mem,
                      f"{r.size_bytes / 1e6:.2f}", f"{r.cost_per_million:.4f}")  # fmt: skip
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("bench")(bench)
