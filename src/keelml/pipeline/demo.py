"""`keel demo`: the keelml loop on real bundled data, one printed, timed step at a time.

Steps live in ``demo_*`` modules, in order. A finished step is recorded in ``.keel/demo-state.json``
with what it printed and the values later steps need; a re-run prints the record instead of redoing
the work, so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from keelml.core.config import CONFIG_FILE
from keelml.core.workspace import Workspace

Echo = Callable[[str], object]
STATE_FILE = Path(".keel") / "demo-state.json"


@dataclass
class DemoLog:
    echo: Echo
    lines: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.echo(f"\n[bold cyan]== {title}[/]")
        self.lines.append(f"\n## {title}\n")
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        self.echo(f"[dim]   ({took:.2f} s)[/]")
        self.lines.append(f"\n_{took:.2f} s_\n")

    def say(self, text: str) -> None:
        self.echo(f"   {escape(text)}")  # the console reads [brackets] as markup; a message may have them
        self.lines.append(f"- {text}")


@dataclass
class Demo:
    """What a step sees: the workspace, the mode, the log, and values earlier steps saved."""

    ws: Workspace
    quick: bool
    log: DemoLog
    saved: dict[str, Any]

    def say(self, text: str) -> None:
        self.log.say(text)

    def reopen(self) -> None:
        """Re-read keel.toml after a step changed it."""
        self.ws = Workspace.open(self.ws.root)


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    title: str
    run: Callable[[Demo], None]


def steps(quick: bool) -> list[Step]:
    """The demo's steps in order; the full run adds compression by distillation and a federated run."""
    from keelml.pipeline import demo_data, demo_features, demo_models, demo_ops, demo_report

    full = not quick
    return [
        *demo_data.STEPS,
        *demo_features.STEPS,
        *demo_models.STEPS[:5],
        *(demo_models.FULL_ONLY if full else []),
        *demo_models.STEPS[5:],
        *demo_ops.STEPS,
        *(demo_ops.FULL_ONLY if full else []),
        *demo_report.STEPS,
    ]


def _load_state(path: Path) -> dict[str, Any]:
    if path.is_file():
        try:
            state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return state
        except json.JSONDecodeError:
            pass  # a torn write from an interrupted run: start the record again, the data is intact
    return {"done": {}, "saved": {}}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def quiet_third_party_noise() -> None:
    """The demo prints its own account; libraries' deprecation chatter would bury it."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    # torch resets its loggers' levels when it is imported: this is the setting it reads then
    os.environ.setdefault("TORCH_LOGS", "-onnx")
    # mlflow re-enables UserWarnings inside its own calls (catch_warnings + simplefilter), which
    # overrides any filter; what is printed still goes through showwarning
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if "type hints to the `predict` method" not in str(message):
            shown(message, category, *args, **kwargs)

    if getattr(warnings.showwarning, "__name__", "") != "show":
        warnings.showwarning = show


def run_demo(directory: Path, *, quick: bool = False, echo: Echo = print) -> Path:
    """Run (or resume) the demo in ``directory``; returns the path of the report."""
    quiet_third_party_noise()
    log = DemoLog(echo)
    directory = directory.resolve()
    fresh = not (directory / CONFIG_FILE).exists()
    with log.step("1. workspace"):
        ws = Workspace.init(directory, exist_ok=True)
        log.say(
            f"{'created' if fresh else 'reusing'} workspace at {ws.root} "
            "(SQLite catalog, local Delta storage)"
        )
    state_path = ws.root / STATE_FILE
    state = _load_state(state_path)
    demo = Demo(ws, quick, log, state["saved"])
    for step in steps(quick):
        done = state["done"].get(step.key)
        if done is not None:
            echo(f"\n[bold cyan]== {step.title}[/] [dim](done earlier, {done['seconds']:.2f} s)[/]")
            log.lines.append(f"\n## {step.title}\n")
            log.lines.extend(done["lines"])
            continue
        before = len(log.lines)
        start = time.perf_counter()
        with log.step(step.title):
            step.run(demo)
        state["done"][step.key] = {
            "seconds": round(time.perf_counter() - start, 2),
            "lines": log.lines[before + 1 :],
        }
        _save_state(state_path, state)
    report_path = ws.root / "demo-report.md"
    report_path.write_text("# keelml demo report\n" + "\n".join(log.lines) + "\n", encoding="utf-8")
    html = ws.root / "demo-report.html"
    shown = html if html.exists() else report_path
    echo(f"\n[bold green]done.[/] report: {shown} (text log: {report_path.name})")
    echo(f"dashboard: keel -w {ws.root} ui")
    return report_path
