"""The demo's final HTML report: every step with its timing and output, the lineage graph, the
accuracy/latency plot of the benchmarked variants, and links to every artifact the demo left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from keelml.pipeline.demo import STATE_FILE, Demo, Step
from keelml.ui import queries
from keelml.ui.charts import chart, plotly_js
from keelml.ui.html import esc, table
from keelml.ui.lineage_svg import lineage_svg

REPORT = "demo-report.html"
MODEL_COLUMNS = ["version", "aliases", "variant / task", "test accuracy", "parent / data"]
_STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1150px;color:#1f2933}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid #d9dee5;padding:4px 10px;text-align:left}
th{background:#eef1f5}.muted{color:#6b7785}li{margin:2px 0}svg text{font:11px system-ui,sans-serif}"""


def _artifacts(root: Path) -> list[list[str]]:
    rows = [['<a href="demo-report.md">demo-report.md</a>', "the step log as markdown"]]
    for path in sorted([*root.glob("reports/*.html"), *root.glob("exports/*")]):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            rows.append([f'<a href="{esc(rel)}">{esc(rel)}</a>', f"{path.stat().st_size / 1e3:,.0f} kB"])
    return rows


def _models(d: Demo) -> list[list[str]]:
    rows = []
    for latest in d.ws.models.list():
        for v in d.ws.models.versions(latest.name):
            acc = v.metrics.get("test_accuracy")
            rows.append(
                [
                    esc(f"{v.name}@{v.version}"),
                    esc(", ".join(v.aliases) or "-"),
                    esc(v.tags.get("keel.variant", v.tags.get("keel.task", "-"))),
                    esc("-" if acc is None else f"{acc:.3f}"),
                    esc(v.tags.get("keel.parent", v.dataset or "-")),
                ]
            )
    return rows


def _bench_chart(d: Demo) -> str:
    rows = d.saved.get("bench") or []
    if not rows:
        return "<p class=muted>No benchmark in this run.</p>"
    by_variant: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        by_variant.setdefault(str(r["variant"]), []).append(r)
    traces = [
        {"x": [r["batch_size"] for r in rs], "y": [r["p50_ms"] for r in rs], "name": name, "type": "bar"}
        for name, rs in sorted(by_variant.items())
    ]
    layout = {"title": {"text": "p50 latency by batch size (ms, lower is better)"}, "barmode": "group",
              "xaxis": {"title": {"text": "batch size"}, "type": "category"}}  # fmt: skip
    return chart("bench", traces, layout)


def write_report(d: Demo) -> Path:
    root = d.ws.root
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    shutil.copyfile(plotly_js(), reports / "plotly.min.js")  # the report works offline, no CDN
    state = (
        json.loads((root / STATE_FILE).read_text(encoding="utf-8")) if (root / STATE_FILE).exists() else {}
    )
    steps = [[esc(k), esc(f"{v['seconds']:.1f} s")] for k, v in state.get("done", {}).items()]
    nodes, edges = queries.graph(d.ws, None)
    log_items = "".join(
        f"<li>{esc(line[2:])}</li>" if line.startswith("- ") else f"</ul><h3>{esc(line.strip('# '))}</h3><ul>"
        for line in d.log.lines
        if line.strip() and not line.strip().startswith("_")
    )
    html = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>keelml demo report</title>"
        f'<style>{_STYLE}</style><script src="reports/plotly.min.js"></script></head><body>'
        f"<h1>keelml demo report</h1><p class=muted>workspace {esc(root)} · open it live with "
        f"<code>keel -w {esc(root)} ui</code></p>"
        f"<h2>Artifacts</h2>{table(['file', 'size'], _artifacts(root), raw=True)}"
        f"<h2>Registered models</h2>"
        f"{table(MODEL_COLUMNS, _models(d), raw=True)}"
        f"<h2>Benchmark</h2>{_bench_chart(d)}"
        f'<h2>Lineage</h2><div style="overflow:auto">{lineage_svg(nodes, edges, focus=None)}</div>'
        f"<h2>Steps</h2>{table(['step', 'time'], steps, raw=True)}"
        f"<h2>What each step printed</h2><ul>{log_items}</ul></body></html>"
    )
    path = root / REPORT
    path.write_text(html, encoding="utf-8")
    return path


def report(d: Demo) -> None:
    path = write_report(d)
    d.say(f"HTML report with lineage graph, plots and links to every artifact: {path.relative_to(d.ws.root)}")


STEPS = [Step("report", "18. the final HTML report", report)]
