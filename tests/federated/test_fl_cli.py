from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.cli.main import run


def _keel(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keel_fl_simulate_prints_rounds_as_json(fl_ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _keel(
        capsys,
        "-w",
        str(fl_ws.root),
        "fl",
        "simulate",
        "--data",
        "customers",
        "--clients",
        "4",
        "--partition",
        "dirichlet:1.0",
        "--rounds",
        "2",
        "--strategy",
        "fedprox",
        "--robust",
        "trimmed-mean",
        "--dropout",
        "0.1",
        "--no-register",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] is None and len(data["rounds"]) == 2 and len(data["partitions"]) == 4
    assert data["rounds"][-1]["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--robust", "median", "--secure-agg", "keelml"], "secure aggregation hides"),
        (["--partition", "shards"], "unknown partition"),
        (["--client-dp", "1.0"], "CLIP,NOISE"),
        (["--strategy", "fedsgd"], "unknown strategy"),
    ],
)
def test_bad_options_exit_4_with_a_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, _, err = _keel(capsys, "-w", str(tmp_path), "fl", "simulate", "--data", "x", *args)
    assert code == 4 and needle in err and "fix:" in err, err


def test_keel_fl_client_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _keel(capsys, "fl", "client", "--data", str(tmp_path / "none.csv"), "--label", "y")
    assert code == 3 and "no client data" in err
