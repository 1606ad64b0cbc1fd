from __future__ import annotations

from pathlib import Path

import pytest

from keelml import Workspace
from keelml.cli.main import run


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KEEL_API_KEY", raising=False)
    Workspace.init(tmp_path / "ws")
    return tmp_path / "ws"


def test_serve_refuses_an_exposed_address_without_a_key(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["-w", str(root), "serve", "loans@production", "--host", "0.0.0.0"]) == 6
    assert "without an API key" in capsys.readouterr().err


def test_serve_needs_an_alias_and_valid_settings(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-w", str(root), "serve", "loans"]) == 4
    assert "MODEL@ALIAS" in capsys.readouterr().err
    with (root / "keel.toml").open("a") as fh:
        fh.write("\n[serve]\nmax_batch_rows = -1\n")
    assert run(["-w", str(root), "serve", "loans@production"]) == 6
    assert "max_batch_rows" in capsys.readouterr().err


def test_serve_help_lists_the_options() -> None:
    from typer.testing import CliRunner

    from keelml.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--workers" in result.output and "--port" in result.output
