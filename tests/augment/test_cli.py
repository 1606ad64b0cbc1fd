from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelml.cli.main import run

from .conftest import mixed_table


@pytest.fixture
def wsdir(tmp_path: Path) -> Path:
    import pyarrow.csv as csv

    root = tmp_path / "ws"
    assert run(["init", str(root)]) == 0
    csv.write_csv(mixed_table(), tmp_path / "mixed.csv")
    assert (
        run(
            [
                "-w",
                str(root),
                "data",
                "add",
                "mixed",
                str(tmp_path / "mixed.csv"),
                "--label",
                "label",
                "--id",
                "id",
            ]
        )
        == 0
    )
    return root


def test_augment_then_evaluate(wsdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = run(
        [
            "-w",
            str(wsdir),
            "augment",
            "mixed",
            "--target",
            "rare",
            "--method",
            "smote-nc",
            "--ratio",
            "1",
            "--json",
        ]
    )
    assert code == 0
    made = json.loads(capsys.readouterr().out)
    assert made["dataset"] == "mixed@2" and made["synthetic_rows"] == 30 and made["method"] == "smote-nc"
    report = tmp_path / "report.html"
    code = run(
        [
            "-w",
            str(wsdir),
            "augment",
            "evaluate",
            "mixed@2",
            "--real",
            "mixed@1",
            "--report",
            str(report),
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["synthetic"] == "mixed@2" and data["holdout_rows"] == 60 and report.stat().st_size > 1_000_000
    assert {u["trained_on"] for u in data["utility"]} == {"real", "real, class weights", "augmented"}
    assert run(["-w", str(wsdir), "augment", "run", "mixed@1", "-t", "x1 > 2", "-m", "copula"]) == 0
    assert "synthetic rows by copula on slice 'x1 > 2'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--target", "rare", "--method", "smote"], "SMOTE interpolates numbers"),
        (["--target", "x1 > 99", "--method", "copula"], "matches no real rows"),
        (["--target", "rare", "--method", "magic"], "unknown augmentation method"),
        (["--target", "rare", "--method", "smote-nc", "--k-neighbors", "40"], "k_neighbors + 1 = 41"),
    ],
)
def test_bad_input_exits_4_with_the_constraint(
    wsdir: Path, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["-w", str(wsdir), "augment", "mixed", *args]) == 4
    err = capsys.readouterr().err
    assert needle in err and "fix:" in err and "Traceback" not in err
