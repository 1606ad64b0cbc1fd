"""The full demo's compression step (skipped by `keel demo --quick`, which CI runs) on the tiny text model."""

from __future__ import annotations

from keelml import Workspace
from keelml.pipeline.demo import Demo, DemoLog
from keelml.pipeline.demo_models import compress


def test_the_demo_compression_step_prints_the_table_and_writes_the_pareto_plot(
    compress_ws: Workspace,
) -> None:
    shown: list[str] = []
    demo = Demo(
        compress_ws, False, DemoLog(shown.append), {"text_model": "review-clf@1", "text_max_length": 16}
    )
    compress(demo)
    said = "\n".join(demo.log.lines)
    for label in ("parent (torch fp32)", "int8 (onnx)", "distilled (torch fp32)", "distill+int8 (onnx)"):
        assert label in said
    assert "winner within budget:" in said and "Pareto plot: reports/compress-reviews.html" in said
    page = (compress_ws.root / "reports" / "compress-reviews.html").read_text()
    assert "Plotly.newPlot" in page and "distill+int8 (onnx)" in page
