"""`keel label ...`: active learning, label import, annotator agreement, loop simulation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from keelml.cli.context import emit_json, out, progress_bar, workspace
from keelml.labeling import SimulationConfig, strategy_names
from keelml.labeling.simulate import parse_steps

app = typer.Typer(
    help="Labeling: what to label next, label import, annotator agreement, loop simulation.",
    no_args_is_help=True,
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


@app.command("suggest")
def suggest(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset with an id and a label column; unlabeled = label missing."),
    budget: int = typer.Option(..., "--budget", "-k", help="How many rows to label next."),
    strategy: str = typer.Option(
        "margin", "--strategy", "-s", help="Query strategy (see `keel label strategies`)."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="logreg (default, trained on the labeled rows), mlp, a registered model NAME[@V|@ALIAS] "
        "(e.g. reviews-clf@production), or a probabilities file (id + one column per class).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Batch file, .csv or .jsonl (default: BATCH_ID.csv here)."
    ),
    seed: int = typer.Option(0, help="Random seed (ties, random and k-center starts)."),
    as_json: bool = JSON,
) -> None:
    """Pick the next rows to label and write them as a labeling batch."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        result = ws.labels.suggest(name, budget, strategy=strategy, model=model, seed=seed, progress=bar)
    path = output if output is not None else Path(f"{result.batch_id}.csv")
    from keelml.labeling.batch import write_batch

    write_batch(result.table, path)
    data = {**result.to_json(), "path": str(path)}
    if as_json:
        emit_json(data)
        return
    if result.note:
        out.print(f"note: {result.note}")
    out.print(
        f"{len(result.ids)} rows of {result.source} to label ({result.strategy}, model {result.model}; "
        f"pool {result.pool_size:,} unlabeled, {result.labeled:,} labeled)"
    )
    table = Table("rank", "id", "suggested", "confidence")
    id_column = ws.datasets.dataset(name).id_column
    rows = result.table.select(["keel_rank", id_column, "keel_suggested", "keel_confidence"])
    for rank, id_, guess, conf in zip(*(rows.column(i).to_pylist() for i in range(4)), strict=True):
        if rank > 10:
            break
        table.add_row(str(rank), str(id_), guess or "-", _fmt(conf))
    out.print(table)
    out.print(f"batch {result.batch_id} written to {path}")
    out.print(f"fill in the label column, then: keel label import {name} {path} --annotator YOUR_ID")


@app.command("import")
def import_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset the batch was made for."),
    batch: Path = typer.Argument(..., help="The labeled batch (.csv or .jsonl)."),
    annotator: str | None = typer.Option(
        None, "--annotator", "-a", help="Who labeled it (or an 'annotator' column in the file)."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="The class set, comma-separated (default: the labels already present)."
    ),
    as_json: bool = JSON,
) -> None:
    """Store a labeled batch (checked as a whole) and write the resolved labels as a new version."""
    ws = workspace(ctx)
    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    with progress_bar() as bar:
        result = ws.labels.import_batch(name, batch, annotator=annotator, classes=class_list, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    if result.imported == 0:
        out.print(f"nothing new: all {result.already_imported} labels of {batch.name} were already imported")
        return
    out.print(
        f"imported {result.imported} labels by {', '.join(result.annotators)} "
        f"(batch {', '.join(result.batches)}; {result.blank} blank rows skipped) into {result.annotations}"
    )
    out.print(f"{result.dataset}: {result.rows_labeled} rows labeled (operation label-import)")


@app.command("agreement")
def agreement(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset whose annotations to compare."),
    use_model: bool = typer.Option(
        True, "--model/--no-model", help="CROWDLAB consensus with the default model (else majority vote)."
    ),
    write: bool = typer.Option(False, "--write", help="Write the consensus labels as a new version."),
    as_json: bool = JSON,
) -> None:
    """Inter-annotator agreement (Cohen, Fleiss, Krippendorff), annotator quality, consensus labels."""
    ws = workspace(ctx)
    with progress_bar() as bar:
        bar.stage("computing agreement")
        report = ws.labels.agreement(name, use_model=use_model, write=write)
    data = report.to_json()
    if write:
        data["written"] = str(ws.datasets.ref(name))
    if as_json:
        emit_json(data)
        return
    s = report.stats
    out.print(
        f"{s.items} rows, {s.ratings} labels by {len(s.annotators)} annotators "
        f"({s.multiply_labeled} rows labeled more than once)"
    )
    out.print(
        f"Cohen's kappa (mean over pairs) {_fmt(s.cohen_mean)}   Fleiss' kappa {_fmt(s.fleiss)}   "
        f"Krippendorff's alpha {_fmt(s.alpha)}"
    )
    table = Table("annotator", "labeled", "agrees with consensus", f"quality ({s.method})")
    for q in s.per_annotator:
        table.add_row(q.annotator, str(q.labeled), _fmt(q.agreement_with_consensus), _fmt(q.quality))
    out.print(table)
    if write:
        out.print(f"consensus labels written as {data['written']} (operation label-consensus)")


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset whose known labels act as the oracle."),
    strategy: list[str] = typer.Option(
        ["margin"], "--strategy", "-s", help="Strategies (repeat); random always runs."
    ),
    budget_steps: str = typer.Option(
        ..., "--budget-steps", help="Label counts to evaluate at: 20,40,80 or START:STOP:STEP."
    ),
    seeds: int = typer.Option(5, min=1, help="Number of seeds (splits and warm starts)."),
    model: str = typer.Option("logreg", "--model", help="logreg or mlp."),
    target: float | None = typer.Option(None, help="Accuracy to reach (default: training on all labels)."),
    test_fraction: float = typer.Option(0.25, help="Share of the labeled rows held out for accuracy."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the learning curves to this HTML file."),
    as_json: bool = JSON,
) -> None:
    """Replay the loop with the known labels, and report the labels each strategy needs."""
    ws = workspace(ctx)
    config = SimulationConfig(
        steps=parse_steps(budget_steps),
        strategies=tuple(strategy),
        seeds=tuple(range(seeds)),
        learner=model,  # type: ignore[arg-type]
        target=target,
        test_fraction=test_fraction,
    )
    with progress_bar() as bar:
        result = ws.labels.simulate(name, config, progress=bar)
    if plot is not None:
        result.plot(plot, title=f"{name}: accuracy vs labels ({model})")
    if as_json:
        emit_json({**result.to_json(), "plot": None if plot is None else str(plot)})
        return
    mean_target = sum(result.targets) / len(result.targets)
    out.print(
        f"pool {result.pool_size:,} rows, test {result.test_size:,}, {seeds} seeds; "
        f"target accuracy {mean_target:.3f} (all labels)"
        if target is None
        else f"pool {result.pool_size:,}, test {result.test_size:,}, {seeds} seeds; target {target:.3f}"
    )
    table = Table(
        "strategy", f"accuracy at {config.steps[-1]} labels", "labels to target", "% of pool", "seeds reached"
    )
    for c in result.curves:
        mean, std, reached = c.needed()
        needed = "-" if mean is None else f"{mean:.0f} +- {std:.0f}"
        share = "-" if mean is None else f"{100 * mean / result.pool_size:.1f}%"
        table.add_row(c.strategy, f"{c.mean[-1]:.3f} +- {c.std[-1]:.3f}", needed, share, f"{reached}/{seeds}")
    out.print(table)
    if plot is not None:
        out.print(f"learning curves written to {plot}")


@app.command("strategies")
def strategies(as_json: bool = JSON) -> None:
    """List the registered query strategies and the model outputs each needs."""
    from keelml.labeling import get_strategy

    rows = [(n, sorted(get_strategy(n).requires)) for n in strategy_names()]
    if as_json:
        emit_json([{"name": n, "requires": r} for n, r in rows])
        return
    for n, r in rows:
        out.print(f"{n:18} needs {', '.join(r) or 'nothing'}")
