"""`keel fl ...`: federated learning: simulate on a workspace dataset, or deploy a server and clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keelml.cli.context import emit_json, err, out, progress_bar, workspace
from keelml.core.errors import InvalidInputError

app = typer.Typer(
    help="Federated learning (Flower): simulate, or run a server and clients.", no_args_is_help=True
)

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")
SECURE_NOISE = typer.Option(
    None,
    "--secure-noise/--no-secure-noise",
    help="Client-level DP noise from a CSPRNG (default on); off: numpy seeded by --seed (reproducible).",
)


def _client_dp(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        clip, noise = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidInputError(
            "--client-dp takes CLIP,NOISE",
            expected="two numbers such as 1.0,0.8",
            received=value,
            fix="pass --client-dp 1.0,0.8 (clip norm, noise multiplier)",
        ) from None
    return clip, noise


def _config(**values: Any) -> Any:
    from keelml.federated.config import FederatedConfig

    return FederatedConfig.from_mapping({k: v for k, v in values.items() if v is not None}, "the options")


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    data: str = typer.Option(..., "--data", "-d", help="Dataset version NAME[@V] to split across clients."),
    clients: int = typer.Option(10, "--clients", help="Number of simulated clients."),
    partition: str = typer.Option("iid", "--partition", help="iid | dirichlet:ALPHA | by:COLUMN."),
    task: str = typer.Option(
        "tabular", "--task", help="tabular (MLP) | text (MiniLM + LoRA, adapter and head)."
    ),
    text: str | None = typer.Option(None, "--text", help="Text column for --task text (default: text)."),
    max_length: int | None = typer.Option(None, "--max-length", help="Tokens per text (64)."),
    lora_rank: int | None = typer.Option(None, "--lora-rank", help="LoRA rank for --task text (8)."),
    base: str | None = typer.Option(None, "--base", help="Text base model: minilm (default) or a folder."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Client batch size (32)."),
    rounds: int = typer.Option(10, "--rounds", help="Federated rounds."),
    strategy: str = typer.Option("fedavg", "--strategy", help="fedavg | fedprox | fedadam."),
    robust: str | None = typer.Option(
        None, "--robust", help="trimmed-mean | median (secure aggregation off)."
    ),
    client_dp: str | None = typer.Option(
        None, "--client-dp", help="CLIP,NOISE: client-level DP (clip, noise multiplier)."
    ),
    delta: float | None = typer.Option(
        None, "--delta", help="Delta of the client-level DP guarantee (1e-5)."
    ),
    secure_noise: bool | None = SECURE_NOISE,
    secure_agg: str = typer.Option("off", "--secure-agg", help="keelml | flower | off."),
    max_update_norm: float | None = typer.Option(
        None, "--max-update-norm", help="Clip each update to this L2 norm."
    ),
    engine: str = typer.Option("inprocess", "--engine", help="inprocess (fast) | flower (Ray simulation)."),
    local_epochs: int | None = typer.Option(None, "--local-epochs", help="Local epochs per round (1)."),
    lr: float | None = typer.Option(
        None, "--lr", help="Client learning rate (tabular 0.05, text 5e-3 with AdamW)."
    ),
    server_lr: float | None = typer.Option(None, "--server-lr", help="FedAdam server learning rate."),
    fraction_fit: float | None = typer.Option(
        None, "--fraction-fit", help="Share of clients sampled per round."
    ),
    min_clients: int | None = typer.Option(
        None, "--min-clients", help="Fewest answers that make a round (2)."
    ),
    dropout: float | None = typer.Option(
        None, "--dropout", help="Simulated chance a client drops out mid-round."
    ),
    label: str | None = typer.Option(None, "--label", help="Label column (default: the dataset's)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    name: str | None = typer.Option(None, "--name", "-n", help="Registered model name (default: DATA-fl)."),
    no_register: bool = typer.Option(False, "--no-register", help="Track the run but do not register."),
    as_json: bool = JSON,
) -> None:
    """Federated training on simulated clients; per-round metrics tracked; the model registered."""
    config = _config(
        clients=clients,
        partition=partition,
        task=task,
        text=text,
        max_length=max_length,
        lora_rank=lora_rank,
        base=base,
        batch_size=batch_size,
        rounds=rounds,
        strategy=strategy,
        robust=robust,
        client_dp=_client_dp(client_dp),
        delta=delta,
        secure_noise=secure_noise,
        secure_agg=secure_agg,
        max_update_norm=max_update_norm,
        engine=engine,
        local_epochs=local_epochs,
        learning_rate=lr,
        server_learning_rate=server_lr,
        fraction_fit=fraction_fit,
        min_clients=min_clients,
        dropout=dropout,
        label=label,
        seed=seed,
    )
    ws = workspace(ctx)
    with progress_bar() as bar:
        run = ws.federated.simulate(data, config, name=name, register=not no_register, progress=bar)
    if as_json:
        emit_json(
            {
                "run_id": run.run_id,
                "model": run.model,
                "dataset": str(run.dataset),
                "epsilon": run.epsilon,
                "delta": config.delta if run.epsilon is not None else None,
                "seconds_to_first_round": run.seconds_to_first_round,
                "seconds": run.seconds,
                "partitions": [
                    {"client": p.client, "rows": p.rows, "labels": p.labels, "node": p.node_id}
                    for p in run.partitions
                ],
                "rounds": [
                    {"round": m.round, **m.scalars(), "dropped": list(m.dropped)} for m in run.history
                ],
            }
        )
        return
    out.print(
        f"federated {config.task} {config.strategy} on {run.dataset}: {config.clients} clients "
        f"({config.partition}), {config.rounds} rounds, engine {config.engine}, "
        f"secure aggregation {config.secure_agg}"
    )
    table = Table("round", "clients", "dropped", "train loss", "test accuracy", "seconds")
    for m in run.history:
        table.add_row(
            str(m.round),
            f"{m.aggregated}/{m.sampled}",
            str(len(m.dropped)),
            _fmt(m.train_loss),
            _fmt(m.test.get("accuracy")),
            f"{m.seconds:.2f}",
        )
    out.print(table)
    if run.epsilon is not None:
        out.print(
            f"client-level DP: epsilon {run.epsilon:.3f} at delta {config.delta:g} (PLD accountant, "
            "add/remove one client)"
        )
    out.print(f"first round after {run.seconds_to_first_round:.2f} s; MLflow run {run.run_id}")
    if run.model is not None:
        out.print(
            f"registered [bold]{run.model}[/] with lineage from {len(run.partitions)} client partitions"
        )


@app.command("server")
def server(
    clients: int = typer.Option(..., "--clients", help="Clients to wait for (each a `keel fl client`)."),
    rounds: int = typer.Option(3, "--rounds", help="Federated rounds."),
    label: str = typer.Option(..., "--label", help="Label column (the clients' files must have it)."),
    strategy: str = typer.Option("fedavg", "--strategy", help="fedavg | fedprox | fedadam."),
    robust: str | None = typer.Option(None, "--robust", help="trimmed-mean | median."),
    client_dp: str | None = typer.Option(None, "--client-dp", help="CLIP,NOISE: client-level DP."),
    secure_noise: bool | None = SECURE_NOISE,
    secure_agg: str = typer.Option(
        "off", "--secure-agg", help="keelml (SecAgg+, keelml's protocol) | flower (Flower's SecAgg+) | off."
    ),
    secagg_shares: int | None = typer.Option(
        None, "--secagg-shares", help="Flower SecAgg+ shares per client (odd; default 5, at most --clients)."
    ),
    max_update_norm: float | None = typer.Option(
        None, "--max-update-norm", help="Clip updates to this norm."
    ),
    min_clients: int | None = typer.Option(None, "--min-clients", help="Fewest answers that make a round."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the SuperLink listens on."),
    port: int = typer.Option(9091, "--port", help="SuperLink port (clients connect here)."),
    out_dir: Path = typer.Option(Path("fl-server"), "--out", help="Working folder: logs, model, metrics."),
    connect_timeout: float = typer.Option(60.0, "--connect-timeout", help="Seconds to wait for the clients."),
    round_timeout: float = typer.Option(
        120.0, "--round-timeout", help="Seconds to wait for a round's replies."
    ),
    run_timeout: float = typer.Option(600.0, "--run-timeout", help="Seconds the whole run may take."),
    as_json: bool = JSON,
) -> None:
    """Run a Flower SuperLink and keelml's server app; write the final model to --out/model.keel."""
    from keelml.federated.deploy import run_server
    from keelml.federated.model import model_bytes

    config = _config(
        clients=clients,
        rounds=rounds,
        label=label,
        strategy=strategy,
        robust=robust,
        client_dp=_client_dp(client_dp),
        secure_noise=secure_noise,
        secure_agg=secure_agg,
        secagg_shares=secagg_shares,
        max_update_norm=max_update_norm,
        min_clients=min_clients,
        round_timeout=round_timeout,
    )
    err.print(
        f"SuperLink on {host}:{port}; waiting for {clients} clients "
        f"(`keel fl client --server {host}:{port}`); secure aggregation {config.secure_agg}"
    )
    result = run_server(
        config, out_dir, host=host, port=port, connect_timeout=connect_timeout, run_timeout=run_timeout
    )
    path = out_dir / "model.keel"
    path.write_bytes(
        model_bytes(result.weights, result.spec, hidden=config.hidden, label=label, seed=config.seed)
    )
    (out_dir / "rounds.json").write_text(json.dumps(result.rounds, indent=2), encoding="utf-8")
    if as_json:
        emit_json(
            {
                "model": str(path),
                "rounds": result.rounds,
                "seconds": result.seconds,
                "classes": list(result.spec.classes),
                "secure_agg": config.secure_agg,
            }
        )
        return
    final: dict[str, Any] = result.rounds[-1] if result.rounds else {}
    out.print(
        f"{len(result.rounds)} rounds in {result.seconds:.1f} s; final federated accuracy "
        f"{_fmt(final.get('test_accuracy'))}; model written to {path}"
    )


@app.command("client")
def client(
    data: Path = typer.Option(..., "--data", help="This client's own data file (.csv or .parquet)."),
    label: str = typer.Option(..., "--label", help="Label column."),
    server_address: str = typer.Option("127.0.0.1:9091", "--server", help="SuperLink address HOST:PORT."),
    port: int = typer.Option(
        9094, "--port", help="Local port of this SuperNode's runtime API (unique per client)."
    ),
    name: str | None = typer.Option(None, "--name", help="Client name in logs (default: the file's stem)."),
    max_wait: float = typer.Option(
        30.0, "--max-wait", help="Exit after the server is unreachable this long."
    ),
    connect_timeout: float = typer.Option(
        120.0, "--connect-timeout", help="Give up if no server answers within this many seconds."
    ),
    timeout: float = typer.Option(3600.0, "--timeout", help="Exit after this many seconds in any case."),
) -> None:
    """Run a Flower SuperNode on this machine's own data; only model updates leave it."""
    from keelml.federated.deploy import run_client

    err.print(f"client {name or data.stem}: connecting to {server_address}")
    code = run_client(
        data,
        label=label,
        server=server_address,
        port=port,
        name=name,
        max_wait=max_wait,
        connect_timeout=connect_timeout,
        timeout=timeout,
    )
    err.print(f"client {name or data.stem}: SuperNode exited with code {code}")
