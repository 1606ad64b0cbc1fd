"""`keel data validate | schema | issues | relabel | split | slices` end to end, in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from tests.cli.conftest import Result

Keel = Callable[..., Result]


def _write(path: Path, table: pa.Table) -> Path:
    pcsv.write_csv(table, path)
    return path


def _reviews(n: int, start: int = 0, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    good = [
        "tasty and fresh, I would buy it again for the family",
        "great flavour and value, my kids love these",
    ]
    bad = ["stale, bland and overpriced, never again for me", "arrived broken and tasted of cardboard, sadly"]
    y = rng.integers(0, 2, n)
    return pa.table(
        {
            "review_id": pa.array(range(start, start + n), pa.int64()),
            "review": [
                f"{(good if v else bad)[i % 2]} #{i}" for i, v in zip(range(start, start + n), y, strict=True)
            ],
            "region": pa.array(rng.choice(["EU", "US"], n)),
            "stars": pa.array(np.where(y == 1, rng.integers(4, 6, n), rng.integers(1, 3, n)), pa.int64()),
            "score": pa.array(np.where(y == 1, "great", "other")),
        }
    )


def _setup(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    src = _write(tmp_path / "reviews.csv", _reviews(120))
    assert keel("-w", wsdir, "data", "add", "reviews", src, "--label", "score", "--id", "review_id").code == 0


def test_validate_ok_then_blocking_with_json_and_html(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    _setup(keel, wsdir, tmp_path)
    ok = keel("-w", wsdir, "data", "validate", "reviews")
    assert ok.code == 0 and "self-check" in ok.out and "OK" in ok.out
    good = _write(tmp_path / "good.csv", _reviews(60, start=1000, seed=1))
    assert keel("-w", wsdir, "data", "validate", good, "--against", "reviews@1").code == 0
    bad = _reviews(60, start=2000, seed=2)
    bad = bad.set_column(3, "stars", pa.array([9] * 60, pa.int64()))
    bad_path = _write(tmp_path / "bad.csv", bad)
    html = tmp_path / "report.html"
    result = keel("-w", wsdir, "data", "validate", bad_path, "--against", "reviews", "--json", "--html", html)
    assert result.code == 9
    data = json.loads(result.out)
    assert data["ok"] is False and data["anomalies"][0]["kind"] == "out_of_range"
    assert html.is_file() and "plotly" in html.read_text()[:200_000]
    table = keel("-w", wsdir, "data", "validate", bad_path, "--against", "reviews")
    assert table.code == 9 and "FAILED" in table.out and "out_of_range" in table.out


def test_validate_serving_environment(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    _setup(keel, wsdir, tmp_path)
    serving = _write(tmp_path / "serving.csv", _reviews(40, start=500).drop_columns(["score"]))
    assert keel("-w", wsdir, "data", "validate", serving, "--against", "reviews", "-e", "serving").code == 0
    training = keel("-w", wsdir, "data", "validate", serving, "--against", "reviews", "--json")
    assert training.code == 9 and json.loads(training.out)["anomalies"][0]["kind"] == "missing_column"
    wrong = keel("-w", wsdir, "data", "validate", serving, "--against", "reviews", "-e", "prod")
    assert wrong.code == 4 and "unknown environment" in wrong.err


def test_schema_write_edit_and_validate_with_it(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    _setup(keel, wsdir, tmp_path)
    path = tmp_path / "schema.yaml"
    shown = keel("-w", wsdir, "data", "schema", "reviews", "--write", path)
    assert shown.code == 0 and "stars" in shown.out and path.is_file()
    as_json = json.loads(keel("-w", wsdir, "data", "schema", "reviews", "--json").out)
    assert as_json["source"] == "reviews@1"
    path.write_text(path.read_text().replace("maximum: 5.0", "maximum: 4.0"))
    edited = keel("-w", wsdir, "data", "validate", "reviews", "--schema", path)
    assert edited.code == 9 and "stars" in edited.out
    path.write_text("columns: [")
    broken = keel("-w", wsdir, "data", "validate", "reviews", "--schema", path)
    assert broken.code == 4 and "not valid YAML" in broken.err


def test_batch_errors_are_clear(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    _setup(keel, wsdir, tmp_path)
    batch = _write(tmp_path / "b.csv", _reviews(10))
    no_schema = keel("-w", wsdir, "data", "validate", batch)
    assert no_schema.code == 4 and "--against" in no_schema.err and "Traceback" not in no_schema.err
    missing = keel("-w", wsdir, "data", "validate", tmp_path / "nope.csv", "--against", "reviews")
    assert missing.code == 3
    bytes_path = tmp_path / "utf8.csv"
    bytes_path.write_bytes(b"review_id,review,region,stars,score\n1,caf\xe9 tasty,EU,5,great\n")
    bad_text = keel("-w", wsdir, "data", "validate", bytes_path, "--against", "reviews")
    assert bad_text.code == 9 and "invalid_ut" in bad_text.out


def test_issues_then_relabel(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    table = _reviews(120)
    labels = table.column("score").to_pylist()
    for i in (5, 50, 90):
        labels[i] = "other" if labels[i] == "great" else "great"
    src = _write(tmp_path / "noisy.csv", table.set_column(4, "score", pa.array(labels)))
    assert keel("-w", wsdir, "data", "add", "noisy", src, "--label", "score", "--id", "review_id").code == 0
    queue = tmp_path / "queue.csv"
    found = keel("-w", wsdir, "data", "issues", "noisy", "--folds", "3", "--out", queue, "--json")
    assert found.code == 0, found.err
    data = json.loads(found.out)
    assert {5, 50, 90} <= {i["id"] for i in data["issues"]} and data["queue"] == str(queue)
    printed = keel("-w", wsdir, "data", "issues", "noisy", "--folds", "3")
    assert printed.code == 0 and "review queue" in printed.out
    assert (wsdir / "reviews" / "noisy@1-label-issues.csv").is_file()
    relabelled = keel("-w", wsdir, "data", "relabel", "noisy@1", queue, "--accept-suggested")
    assert relabelled.code == 0 and "noisy@2 written" in relabelled.out
    log = json.loads(keel("-w", wsdir, "data", "log", "noisy", "--json").out)
    assert [v["operation"] for v in log] == ["add", "relabel"]
    nothing = keel("-w", wsdir, "data", "relabel", "noisy", src)
    assert nothing.code == 4 and "corrected_label" in nothing.err


def test_issues_bad_input(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    one = _write(tmp_path / "one.csv", pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a"] * 4}))
    assert keel("-w", wsdir, "data", "add", "one", one, "--label", "y").code == 0
    single = keel("-w", wsdir, "data", "issues", "one")
    assert single.code == 4 and "two classes" in single.err
    assert keel("-w", wsdir, "data", "issues", "one", "--folds", "1").code == 4


def test_split_and_slices(keel: Keel, wsdir: Path, tmp_path: Path) -> None:
    _setup(keel, wsdir, tmp_path)
    split = keel("-w", wsdir, "data", "split", "reviews", "--by", "random", "--test", "0.25", "--seed", "1")
    assert split.code == 0 and "reviews-test@1" in split.out and "no leakage" in split.out
    again = json.loads(
        keel("-w", wsdir, "data", "split", "reviews", "--test", "0.25", "--seed", "1", "--json").out
    )
    assert [p["dataset"] for p in again["parts"]] == ["reviews-train@1", "reviews-test@1"]
    grouped = keel("-w", wsdir, "data", "split", "reviews", "--by", "group", "--column", "region")
    assert grouped.code == 0
    assert keel("-w", wsdir, "data", "split", "reviews", "--by", "time").code == 4
    none = keel("-w", wsdir, "data", "slices", "reviews")
    assert none.code == 4 and "slices table in keel.toml" in none.err
    toml = wsdir / "keel.toml"
    toml.write_text(
        toml.read_text() + '\n[slices]\neu = \'region == "EU"\'\nlong = "text_length(review) > 45"\n'
    )
    report = keel(
        "-w",
        wsdir,
        "data",
        "slices",
        "reviews-test",
        "--against",
        "reviews-train",
        "--slice",
        "happy=stars >= 4",
        "--json",
    )
    assert report.code == 0, report.err
    names = [s["name"] for s in json.loads(report.out)["slices"]]
    assert names == ["eu", "long", "happy"]
    shown = keel("-w", wsdir, "data", "slices", "reviews")
    assert shown.code == 0 and "eu" in shown.out
    toml.write_text(toml.read_text() + 'bad = "region =="\n')
    assert keel("-w", wsdir, "data", "slices", "reviews").code == 6
