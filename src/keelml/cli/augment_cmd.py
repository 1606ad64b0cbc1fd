"""`keel augment NAME --target ... --method ...` and `keel augment evaluate NAME@SYNTH --real NAME@REAL`.

``keel augment NAME ...`` is short for ``keel augment run NAME ...`` (a dataset named ``evaluate`` or
``run`` needs the long form).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import typer
from rich.table import Table
from typer.core import TyperGroup

from keelml.augment.config import METHODS, AugmentConfig
from keelml.cli.context import emit_json, err, out, progress_bar, workspace


class _RunByDefault(TyperGroup):
    """Treat ``keel augment NAME ...`` as ``keel augment run NAME ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    help="Targeted augmentation and synthetic rows for rare classes and slices; evaluate them. "
    "`keel augment NAME --target ...` is short for `keel augment run NAME --target ...`.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    ctx: typer.Context,
    data: str = typer.Argument(..., help="Dataset version NAME[@V] (default latest)."),
    target: str = typer.Option(
        ...,
        "--target",
        "-t",
        help="A label class, a slice of keel.toml, or a predicate (class:/slice: force).",
    ),
    method: str = typer.Option("smote", "--method", "-m", help=" | ".join(METHODS)),
    ratio: float | None = typer.Option(
        None, "--ratio", help="Synthetic rows per real target row (default: balance a class, double a slice)."
    ),
    k_neighbors: int = typer.Option(5, "--k-neighbors", help="Neighbours of the SMOTE family."),
    dp_epsilon: float | None = typer.Option(
        None, "--dp-epsilon", help="Copula only: a DP fit with this epsilon."
    ),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of real rows kept unseen for evaluate."),
    text: str | None = typer.Option(None, "--text", help="Text column of the text methods."),
    token_rate: float = typer.Option(0.15, "--token-rate", help="Text methods: share of tokens changed."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Write a new version: the real rows plus synthetic rows of the target, marked keel_synthetic."""
    config = AugmentConfig(
        target=target, method=method, ratio=ratio, k_neighbors=k_neighbors, seed=seed,  # type: ignore[arg-type]
        holdout=holdout, text=text, dp_epsilon=dp_epsilon, token_rate=token_rate,
    )  # fmt: skip
    ws = workspace(ctx)
    with progress_bar() as bar:
        result = ws.augment.run(data, config, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    out.print(
        f"[bold]{result.ref}[/] from {result.source}: {result.synthetic_rows:,} synthetic rows by "
        f"{result.method} on {result.target_kind} {result.target!r} ({result.fitted_rows:,} of "
        f"{result.target_rows:,} real target rows fitted; {result.holdout_rows:,} real rows held out "
        "for `keel augment evaluate`), "
        f"{result.seconds:.2f} s"
    )
    if result.epsilon is not None:
        where = (
            "entered in the privacy ledger" if result.ledger else "not entered: no privacy ledger installed"
        )
        out.print(f"differential privacy: epsilon {result.epsilon:g}, delta 0 ({where})")


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    synthetic: str = typer.Argument(..., help="The augmented version NAME@V."),
    real: str | None = typer.Option(None, "--real", help="The real version it was made from (checked)."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report with plots here."),
    precision: float = typer.Option(0.5, "--precision", help="Fixed precision for the rare-class recall."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the metrics."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Fidelity, utility (on unseen real rows only) and privacy of an augmented version."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        result = ws.augment.evaluate(synthetic, real, precision=precision, seed=seed, progress=bar)
    if report is not None:
        from keelml.augment.report_html import write_report

        err.print(f"HTML report: {write_report(result, report)}")
    if as_json:
        emit_json(result.to_json())
        return
    data: dict[str, Any] = result.to_json()
    fid = data["fidelity"]
    out.print(
        f"[bold]{result.synthetic}[/] vs {result.real}: {result.synthetic_rows:,} synthetic rows; "
        f"{result.train_rows:,} real training rows, {result.holdout_rows:,} unseen real rows for testing"
    )
    out.print(
        f"fidelity: quality {_fmt(fid['quality'])} (column shapes {_fmt(fid['column_shapes'])}, pair trends "
        f"{_fmt(fid['pair_trends'])}); detection AUC {_fmt(fid['detection_auc'])} (0.5 = indistinguishable)"
    )
    if result.privacy is not None:
        p = result.privacy
        out.print(
            f"privacy: membership-inference AUC {_fmt(p.membership_auc)}, closer to training than holdout "
            f"{_fmt(p.closer_to_training)} (0.5 ideal), exact copies {_fmt(p.exact_copies)}"
        )
    if result.utility:
        table = Table("trained on", "rows", "AUPRC", f"recall@P{precision:g}", "recall@0.5", "ECE", "Brier")
        for u in result.utility:
            table.add_row(
                u.trained_on, f"{u.train_rows:,}", _fmt(u.auprc), _fmt(u.recall_at_precision), _fmt(u.recall),
                _fmt(u.ece), _fmt(u.brier),
            )  # fmt: skip
        out.print(f"utility for the rare class {result.rare_class!r} on unseen real rows:")
        out.print(table)
