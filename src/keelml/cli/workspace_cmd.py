"""`keel init`, `keel gc`, `keel pin/unpin/pins`, `keel demo`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from keelml.cli.context import emit_json, err, out, workspace
from keelml.cli.lineage_cmd import node_id
from keelml.core.workspace import Workspace

JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def init(
    directory: Path = typer.Argument(Path("."), help="Directory for the workspace (created if missing)."),
    name: str | None = typer.Option(None, help="Workspace name (default: the directory name)."),
    catalog: str | None = typer.Option(
        None, help="Catalog URL, e.g. postgresql://user@host/db (default: SQLite)."
    ),
    storage: str | None = typer.Option(None, help="Storage path for tables and artifacts (default: .keel)."),
) -> None:
    """Create keel.toml and .keel/ with embedded backends."""
    ws = Workspace.init(directory, name=name, catalog=catalog, storage=storage)
    out.print(f"initialised workspace {ws.config.name!r} in {ws.root}")
    out.print(f"  catalog  {ws.config.backends.catalog}\n  storage  {ws.config.backends.storage}")


def gc(
    ctx: typer.Context,
    keep_last: int | None = typer.Option(
        None, min=1, help="Newest versions kept per dataset (keel.toml gc.keep_last)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed; remove nothing."),
    grace: float = typer.Option(3600.0, min=0, help="Seconds before an unrecorded file counts as orphaned."),
    as_json: bool = JSON,
) -> None:
    """Remove old unpinned dataset versions and unreferenced files."""
    from keelml.data.gc import collect

    report = collect(workspace(ctx), keep_last=keep_last, dry_run=dry_run, grace_seconds=grace)
    if as_json:
        emit_json(
            {
                "dry_run": report.dry_run,
                "collected": [str(r) for r in report.collected],
                "kept_pinned": [str(r) for r in report.kept_pinned],
                "files_removed": report.files_removed,
                "bytes_freed": report.bytes_freed,
                "orphan_tables_removed": report.orphan_tables_removed,
                "artifacts_removed": report.artifacts_removed,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    out.print(f"{verb} {len(report.collected)} versions: {', '.join(map(str, report.collected)) or '-'}")
    if report.kept_pinned:
        out.print(f"kept because pinned upstream: {', '.join(map(str, report.kept_pinned))}")
    out.print(
        f"{verb} {report.files_removed} files ({report.bytes_freed / 1e6:.1f} MB), "
        f"{report.orphan_tables_removed} orphan tables, {report.artifacts_removed} artifacts"
    )


def pin(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="NAME@V|NODE", help="A dataset version or a lineage node id."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why it must be kept (recorded)."),
) -> None:
    """Protect a node and everything upstream of it from `keel gc`."""
    ws = workspace(ctx)
    nid = node_id(ws, target)
    ws.catalog.lineage.pin(nid, reason)
    out.print(f"pinned {nid}")


def unpin(ctx: typer.Context, target: str = typer.Argument(..., metavar="NAME@V|NODE")) -> None:
    """Remove a pin."""
    ws = workspace(ctx)
    nid = node_id(ws, target)
    if ws.catalog.lineage.unpin(nid):
        out.print(f"unpinned {nid}")
    else:
        err.print(f"{nid} was not pinned")


def pins(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List pins."""
    items = workspace(ctx).catalog.lineage.pins()
    if as_json:
        emit_json(
            [{"node": p.node_id, "reason": p.reason, "created_at": p.created_at.isoformat()} for p in items]
        )
        return
    table = Table("node", "reason", "pinned at")
    for p in items:
        table.add_row(p.node_id, p.reason, f"{p.created_at:%Y-%m-%d %H:%M}")
    out.print(table)


def demo(
    directory: Path = typer.Option(Path("keel-demo"), "--dir", help="Workspace directory for the demo."),
    quick: bool = typer.Option(False, "--quick", help="The short version (same steps, less data)."),
) -> None:
    """Run the keelml loop on real bundled data and print each step."""
    from keelml.pipeline.demo import run_demo

    run_demo(directory, quick=quick, echo=out.print)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("gc")(gc)
    app.command("pin")(pin)
    app.command("unpin")(unpin)
    app.command("pins")(pins)
    app.command("demo")(demo)
