"""`keel ui`: the local web dashboard over the workspace (read-only)."""

from __future__ import annotations

import typer

from keelml.cli.context import err, workspace
from keelml.core.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        ctx: typer.Context,
        host: str = typer.Option(
            "127.0.0.1", help="Address to bind; the dashboard has no auth, keep it local."
        ),
        port: int = typer.Option(8765, min=1, max=65535, help="Port to listen on."),
    ) -> None:
        """Serve the dashboard: datasets, lineage, models and benchmarks, monitors, alerts."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidInputError(
                f"refusing to bind the dashboard to {host}",
                expected="a loopback address (127.0.0.1, localhost or ::1)",
                received=host,
                fix="keep the dashboard local and reach it through an SSH tunnel or an authenticating proxy",
            )
        import uvicorn

        from keelml.ui import create_app

        ws = workspace(ctx)
        err.print(f"keel ui: http://{host}:{port}/  (Ctrl+C to stop)")
        uvicorn.run(create_app(ws), host=host, port=port, log_level="warning")
