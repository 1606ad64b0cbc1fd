"""What every command shares: the workspace option, output helpers, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import keelml  # noqa: F401  (registers workspace accessors)
from keelml.core.workspace import Workspace

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    workspace: Path | None = None


def workspace(ctx: typer.Context) -> Workspace:
    state: State = ctx.ensure_object(State)
    if state.workspace is not None:
        return Workspace.open(state.workspace)
    return Workspace.discover(Path.cwd())


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


class RichProgress:
    """Adapts the library's Progress seam to a rich bar on stderr (silent when not a terminal)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def stage(self, name: str, total: float | None = None) -> None:
        if self._task is not None:  # close the previous stage as done
            done = next(t for t in self._progress.tasks if t.id == self._task)
            self._progress.update(self._task, total=done.total or 1, completed=done.total or 1)
            self._progress.stop_task(self._task)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, amount: float = 1.0) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def note(self, text: str) -> None:
        """Show ``text`` after the current stage's name (e.g. the latest loss)."""
        if self._task is not None:
            task = next(t for t in self._progress.tasks if t.id == self._task)
            base = task.fields.setdefault("base", task.description)
            self._progress.update(self._task, description=f"{base} [dim]{text}[/]")


@contextmanager
def progress_bar() -> Iterator[RichProgress]:
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        yield RichProgress(bar)
