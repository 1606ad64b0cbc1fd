"""`keel serve MODEL@ALIAS`: the HTTP prediction service (FastAPI on uvicorn, ONNX Runtime)."""

from __future__ import annotations

import typer

from keelml.cli.context import err, workspace


def serve(
    ctx: typer.Context,
    spec: str = typer.Argument(..., metavar="MODEL@ALIAS", help="e.g. reviews-clf@production"),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; off loopback an API key is required."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (each loads the model)."),
    reload_seconds: float | None = typer.Option(
        None, "--reload-seconds", help="How often to poll the alias (default: [serve] reload_seconds)."
    ),
    model_threads: int | None = typer.Option(
        None,
        "--model-threads",
        help="ONNX Runtime intra-op threads per worker (default: [serve] model_threads).",
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve MODEL@ALIAS: /v1/predict, /v1/feedback, /v1/model, /healthz, /readyz, /metrics, /docs.

    The model follows the alias: when `keel models promote` or `rollback` moves it, the service
    swaps to that version within reload_seconds. The API key is read from $KEEL_API_KEY (or the
    variable named by [serve] api_key_env) and is never printed.
    """
    from keelml.serve.server import ServeOptions, config_of
    from keelml.serve.server import serve as run_server

    ws = workspace(ctx)
    config = config_of(ws)
    if reload_seconds is not None:
        config = config.with_overrides(reload_seconds=reload_seconds)
    if model_threads is not None:
        config = config.with_overrides(model_threads=model_threads)
    options = ServeOptions(host=host, port=port, workers=workers, log_level=log_level)
    err.print(f"serving {spec} on http://{host}:{port} (docs at /docs, metrics at /metrics)")
    run_server(ws, spec, options, config)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
