"""`keel label ...` end to end, in-process: one labeling round, agreement, simulation, bad input."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.labeling.conftest import pool_table


@pytest.fixture
def pets(wsdir: Path, tmp_path: Path, keel: Callable[..., object]) -> tuple[Path, list[str]]:
    table, truth = pool_table(90, labeled=30)
    path = tmp_path / "pets.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow(["" if v is None else v for v in row.values()])
    result = keel("-w", wsdir, "data", "add", "pets", path, "--label", "label", "--id", "id")
    assert result.code == 0, result.err
    return wsdir, truth


def _fill(batch: Path, truth: list[str], out: Path, flip: int = 0) -> Path:
    with batch.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        label = truth[int(row["id"])]
        row["label"] = {"cat": "dog", "dog": "fish", "fish": "cat"}[label] if i < flip else label
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_one_round_from_the_cli(pets, keel, tmp_path: Path) -> None:
    ws, truth = pets
    batch = tmp_path / "batch.csv"
    r = keel("-w", ws, "label", "suggest", "pets", "--budget", "8", "--strategy", "hybrid", "-o", batch)
    assert r.code == 0, r.err
    assert "8 rows of pets@1 to label (hybrid" in r.out and "keel label import pets" in r.out
    assert len(batch.read_text().splitlines()) == 9

    r = keel(
        "-w", ws, "label", "import", "pets", _fill(batch, truth, tmp_path / "a.csv"), "--annotator", "ann"
    )
    assert r.code == 0, r.err
    assert "imported 8 labels by ann" in r.out and "pets@2" in r.out
    r = keel(
        "-w",
        ws,
        "label",
        "import",
        "pets",
        _fill(batch, truth, tmp_path / "b.csv", flip=2),
        "-a",
        "bob",
        "--json",
    )
    assert r.code == 0, r.err
    assert json.loads(r.out)["imported"] == 8

    r = keel("-w", ws, "label", "agreement", "pets")
    assert r.code == 0, r.err
    assert "Cohen's kappa" in r.out and "Krippendorff's alpha" in r.out and "bob" in r.out
    data = json.loads(keel("-w", ws, "label", "agreement", "pets", "--json").out)
    assert data["items"] == 8 and data["annotators"] == ["ann", "bob"]
    assert data["cohen_kappa_pairs"][0]["shared"] == 8

    r = keel("-w", ws, "data", "log", "pets", "--json")
    assert [v["operation"] for v in json.loads(r.out)] == ["add", "label-import", "label-import"]

    r = keel("-w", ws, "label", "suggest", "pets", "--budget", "3", "--json", "-o", tmp_path / "next.jsonl")
    assert r.code == 0, r.err
    assert json.loads(r.out)["pool_size"] == 52 and (tmp_path / "next.jsonl").exists()


def test_simulate_from_the_cli_writes_curves(pets, keel, tmp_path: Path) -> None:
    ws, _ = pets
    plot = tmp_path / "curves.html"
    r = keel(
        "-w",
        ws,
        "label",
        "simulate",
        "pets",
        "--strategy",
        "margin",
        "--strategy",
        "entropy",
        "--budget-steps",
        "6:18:6",
        "--seeds",
        "2",
        "--plot",
        plot,
    )
    assert r.code == 0, r.err
    assert "labels to target" in r.out and "random" in r.out and "margin" in r.out and plot.exists()
    r = keel("-w", ws, "label", "simulate", "pets", "--budget-steps", "6,12", "--seeds", "1", "--json")
    data = json.loads(r.out)
    assert [c["strategy"] for c in data["curves"]] == ["random", "margin"] and data["pool_size"] == 22


def test_strategies_are_listed(keel) -> None:
    r = keel("label", "strategies")
    assert r.code == 0 and "bald" in r.out and "mc_probs" in r.out


def test_bad_input_gives_exit_codes_and_no_traceback(pets, keel, tmp_path: Path) -> None:
    ws, _ = pets
    r = keel("-w", ws, "label", "suggest", "pets", "--budget", "61", "-o", tmp_path / "x.csv")
    assert r.code == 4 and "budget of 61" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "x.csv").exists()
    r = keel("-w", ws, "label", "suggest", "pets", "--budget", "2", "--strategy", "nope")
    assert r.code == 3 and "no query strategy named 'nope'" in r.err
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n31,cat\n9999,dog\n32,horse\n")
    r = keel("-w", ws, "label", "import", "pets", bad, "--annotator", "ann")
    assert (
        r.code == 4
        and "unknown id" in r.err
        and "outside the class set" in r.err
        and "Traceback" not in r.err
    )
    log = json.loads(keel("-w", ws, "data", "log", "pets", "--json").out)
    assert len(log) == 1  # nothing half-imported
    r = keel("-w", ws, "label", "simulate", "pets", "--budget-steps", "10,5")
    assert r.code == 4 and "increasing" in r.err
    r = keel("-w", ws, "label", "agreement", "pets")
    assert r.code == 4 and "no annotations" in r.err
