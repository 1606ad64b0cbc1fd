"""The import rule of DESIGN.md (refined in docs/adr/0001-layers.md), checked on the source tree.

core imports nothing else from keelml; a capability imports core and no other capability;
front ends compose them in layers (serve < pipeline < cli); nothing imports the cli.
Heavy frameworks are never imported by `import keelml` or by the CLI's start-up.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "keelml"
FRONT_ENDS = ["serve", "ui", "pipeline", "cli"]  # each may import those before it, never after
ROOT_ONLY = {"__init__"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else Path(rel[0]).stem


def _keelml_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "keelml" and len(parts) > 1:
                found.add(parts[1])
    return found


def _allowed(importer: str, imported: str) -> bool:
    if importer == imported or importer in ROOT_ONLY:
        return True
    if importer == "core":
        return False
    if imported == "core":
        return True
    if imported in FRONT_ENDS:
        return importer in FRONT_ENDS and FRONT_ENDS.index(imported) < FRONT_ENDS.index(importer)
    # imported is a capability: only front ends (and the testing suites) may compose capabilities
    return importer in FRONT_ENDS or importer == "testing"


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_the_import_rule(path: Path) -> None:
    importer = _package_of(path)
    bad = sorted(m for m in _keelml_imports(path) if not _allowed(importer, m))
    assert not bad, (
        f"{path.relative_to(SRC)} ({importer}) imports keelml.{', keelml.'.join(bad)}; "
        "core imports nothing from keelml, a capability imports only core, front ends compose. "
        "Fix: move the shared piece into core, or pass it in from a front end."
    )


def test_rule_checker_flags_a_violation() -> None:
    assert not _allowed("core", "data")
    assert not _allowed("data", "labeling")
    assert not _allowed("data", "cli")
    assert _allowed("cli", "pipeline") and not _allowed("pipeline", "cli")


HEAVY = ["torch", "transformers", "flwr", "mlflow", "opacus", "peft", "sklearn"]


@pytest.mark.parametrize("module", ["keelml", "keelml.cli.main"])
def test_heavy_frameworks_are_not_imported_at_start_up(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"`import {module}` pulled in {result.stdout.strip()}"
