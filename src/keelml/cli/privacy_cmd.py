"""`keel privacy ...`: epsilon for DP-SGD settings (and the inverse), the ledger, the budgets."""

from __future__ import annotations

import math

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, workspace
from keelml.core.errors import InvalidInputError
from keelml.privacy import NEIGHBOURING, compute_epsilon, noise_for_epsilon

app = typer.Typer(
    help="Differential privacy: epsilon accounting, the privacy ledger and budgets.", no_args_is_help=True
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
RATE = typer.Option(..., "--sample-rate", "-q", help="Poisson sample rate: expected lot size / records.")
DELTA = typer.Option(1e-5, "--delta", help="Target delta (below 1/records).")
STEPS = typer.Option(None, "--steps", help="Noisy steps (or give --epochs).")
EPOCHS = typer.Option(None, "--epochs", help="Epochs; steps = ceil(epochs / sample rate).")


def _steps(steps: int | None, epochs: float | None, sample_rate: float) -> int:
    if (steps is None) == (epochs is None):
        raise InvalidInputError(
            "give exactly one of --steps and --epochs",
            received=f"--steps {steps}, --epochs {epochs}",
            fix="e.g. --steps 10000, or --epochs 60 with --sample-rate 0.01",
        )
    if steps is not None:
        return steps
    assert epochs is not None
    if not epochs > 0 or not 0 < sample_rate <= 1:
        raise InvalidInputError(
            "--epochs must be > 0 and --sample-rate in (0, 1]",
            received=f"--epochs {epochs}, --sample-rate {sample_rate}",
            fix="e.g. --epochs 60 --sample-rate 0.01",
        )
    return math.ceil(epochs / sample_rate - 1e-9)


@app.command("epsilon")
def epsilon(
    noise: float = typer.Option(..., "--noise", "-z", help="Noise multiplier (noise std / clipping norm)."),
    sample_rate: float = RATE,
    steps: int | None = STEPS,
    epochs: float | None = EPOCHS,
    delta: float = DELTA,
    as_json: bool = JSON,
) -> None:
    """Epsilon of DP-SGD with these settings, from the PLD accountant (and RDP for comparison)."""
    n = _steps(steps, epochs, sample_rate)
    mechanism = {"noise_multiplier": noise, "sample_rate": sample_rate, "steps": n, "delta": delta}
    values = {
        acc: compute_epsilon(
            noise_multiplier=noise, sample_rate=sample_rate, steps=n, delta=delta, accountant=acc
        )
        for acc in ("pld", "rdp")
    }
    if as_json:
        emit_json(
            {
                **mechanism,
                "neighbouring": NEIGHBOURING,
                "epsilon": values["pld"],
                "epsilon_rdp": values["rdp"],
            }
        )
        return
    out.print(
        f"epsilon [bold]{values['pld']:.4f}[/] (PLD accountant; RDP gives {values['rdp']:.4f}) "
        f"at delta {delta:g}"
    )
    out.print(
        f"  noise multiplier {noise:g}, Poisson sample rate {sample_rate:g}, {n} steps "
        f"(~{n * sample_rate:.3g} epochs); neighbouring relation: {NEIGHBOURING}"
    )


@app.command("noise")
def noise(
    target: float = typer.Option(..., "--epsilon", "-e", help="Target epsilon."),
    sample_rate: float = RATE,
    steps: int | None = STEPS,
    epochs: float | None = EPOCHS,
    delta: float = DELTA,
    as_json: bool = JSON,
) -> None:
    """The smallest noise multiplier that reaches a target epsilon (PLD accountant)."""
    n = _steps(steps, epochs, sample_rate)
    sigma = noise_for_epsilon(target_epsilon=target, sample_rate=sample_rate, steps=n, delta=delta)
    reached = compute_epsilon(noise_multiplier=sigma, sample_rate=sample_rate, steps=n, delta=delta)
    if as_json:
        emit_json(
            {"noise_multiplier": sigma, "epsilon": reached, "target_epsilon": target,
             "sample_rate": sample_rate, "steps": n, "delta": delta, "neighbouring": NEIGHBOURING}
        )  # fmt: skip
        return
    out.print(
        f"noise multiplier [bold]{sigma:.4f}[/] reaches epsilon {reached:.4f} <= {target:g} "
        f"at delta {delta:g}"
    )
    out.print(f"  sample rate {sample_rate:g}, {n} steps (PLD accountant; {NEIGHBOURING})")


@app.command("ledger")
def ledger(
    ctx: typer.Context, dataset: str = typer.Argument(..., metavar="NAME"), as_json: bool = JSON
) -> None:
    """Every private computation recorded against a dataset, and what its budget has left."""
    privacy = workspace(ctx).privacy
    entries = privacy.entries(dataset)
    status = privacy.remaining(dataset)
    if as_json:
        emit_json({"status": status.to_json(), "entries": [e.to_json() for e in entries]})
        return
    table = Table("id", "when (UTC)", "kind", "version", "epsilon", "delta", "accountant", "run")
    for e in entries:
        table.add_row(
            str(e.id), e.created_at.strftime("%Y-%m-%d %H:%M"), e.kind,
            "-" if e.dataset_version is None else str(e.dataset_version), f"{e.epsilon:.4g}",
            f"{e.delta:.3g}", e.accountant, e.run_id or "-",
        )  # fmt: skip
    out.print(table if entries else f"no private computations recorded on {dataset!r}")
    out.print(status.describe())


@app.command("budget")
def budget(
    ctx: typer.Context,
    dataset: str | None = typer.Argument(None, metavar="[NAME]", help="One dataset (default: all)."),
    as_json: bool = JSON,
) -> None:
    """Budgets from keel.toml ([privacy.budget]) with spent and remaining epsilon and delta."""
    privacy = workspace(ctx).privacy
    names = [dataset] if dataset else privacy.datasets()
    statuses = [privacy.remaining(n) for n in names]
    if as_json:
        emit_json([s.to_json() for s in statuses])
        return
    if not statuses:
        out.print(
            "no budgets in keel.toml and no ledger entries "
            "(add [privacy.budget] NAME = { epsilon = 8.0, delta = 1e-5 })"
        )
        return
    table = Table("dataset", "budget (eps, delta)", "spent (eps, delta)", "remaining (eps, delta)", "entries")
    for s in statuses:
        b = "-" if s.budget is None else f"{s.budget.epsilon:g}, {s.budget.delta:g}"
        r = "-" if s.budget is None else f"{s.remaining_epsilon:.4g}, {s.remaining_delta:.3g}"
        table.add_row(s.dataset, b, f"{s.spent_epsilon:.4g}, {s.spent_delta:.3g}", r, str(s.entries))
    out.print(table)
    out.print(f"composition: {statuses[0].composition} (see docs/privacy.md#composition)")
