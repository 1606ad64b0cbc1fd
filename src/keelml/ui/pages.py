"""One function per dashboard page: workspace in, HTML body out (the layout is added by the app)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from keelml.core.workspace import Workspace
from keelml.ui import queries
from keelml.ui.charts import chart
from keelml.ui.html import cards, esc, href, link, node_link, table
from keelml.ui.lineage_svg import lineage_svg


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def overview(ws: Workspace) -> str:
    datasets = ws.datasets.list()
    models = ws.models.list()
    monitors = queries.monitors(ws)
    alerts = queries.alerts(ws, limit=10)
    body = cards(
        [
            ("datasets", len(datasets)),
            ("dataset versions", sum(d.versions for d in datasets)),
            ("registered models", len(models)),
            ("monitors", len(monitors)),
            ("alerts", len(queries.alerts(ws))),
        ]
    )
    body += "<h2>Recent alerts</h2>" + _alerts_table(alerts)
    body += "<h2>Datasets</h2>" + datasets_table(ws, datasets)
    return body


def datasets_table(ws: Workspace, datasets: list[Any] | None = None) -> str:
    rows = [
        [
            link(href("datasets", d.name), d.name),
            esc(d.latest.version),
            esc(d.versions),
            esc(d.rows),
            esc(d.columns),
            esc(d.label or "-"),
            esc(_when(d.updated_at)),
        ]
        for d in (ws.datasets.list() if datasets is None else datasets)
    ]
    return table(["dataset", "latest", "versions", "rows", "columns", "label", "updated"], rows, raw=True)


def dataset(ws: Workspace, name: str) -> tuple[str, bool]:
    log = ws.datasets.log(name)
    latest = log[-1].ref
    profile = ws.datasets.profile(latest)
    versions = table(
        ["version", "operation", "rows", "parent", "status", "digest", "created", "lineage"],
        [
            [
                esc(v.ref.version),
                esc(v.operation),
                esc(v.rows),
                esc(v.parent or "-"),
                esc(v.status),
                f"<code>{esc(v.ref.digest[:16])}</code>",
                esc(_when(v.created_at)),
                node_link(v.ref.node_id),
            ]
            for v in log
        ],
        raw=True,
    )
    columns = table(
        ["column", "type", "kind", "missing", "distinct", "summary"],
        [
            [c.name, c.dtype, c.kind, f"{c.missing_rate:.2%}", str(c.distinct_estimate), _column_summary(c)]
            for c in profile.columns
        ],
    )
    charts = chart(
        "rows-per-version",
        [
            {
                "x": [v.ref.version for v in log],
                "y": [v.rows for v in log],
                "type": "scatter",
                "mode": "lines+markers",
            }
        ],
        {"title": {"text": "rows per version"}, "xaxis": {"title": {"text": "version"}, "dtick": 1}},
    )
    labels = profile.label_distribution if profile.label else {}
    if labels:
        charts += chart(
            "label-distribution",
            [{"x": list(labels), "y": list(labels.values()), "type": "bar"}],
            {"title": {"text": f"label {profile.label!r} in version {latest.version}"}},
        )
    body = f"<h2>Versions</h2>{versions}<h2>Charts</h2>{charts}<h2>Columns of version {latest.version}</h2>"
    return body + columns, True


def _column_summary(column: Any) -> str:
    summary = column.summary()
    if "stats" in summary:
        s = summary["stats"]
        return f"min {_num(s['min'])} · mean {_num(s['mean'])} · max {_num(s['max'])}"
    if "top" in summary:
        return ", ".join(f"{k} ({v})" for k, v in list(summary["top"].items())[:5])
    return ""


def lineage(ws: Workspace, focus: str | None) -> str:
    nodes, edges = queries.graph(ws, focus)
    intro = (
        f"<p>Upstream and downstream of <code>{esc(focus)}</code> · {link('/lineage', 'whole workspace')}</p>"
        if focus
        else f"<p class=muted>The {queries.MAX_NODES} newest nodes at most; click a node to focus on it.</p>"
    )
    body = intro + f'<div style="overflow:auto">{lineage_svg(nodes, edges, focus=focus)}</div>'
    if focus:
        attrs = queries.node_attrs(ws, focus)
        if attrs is not None:
            body += "<h2>Attributes</h2>" + table(
                ["key", "value"], [[k, json.dumps(v, default=str)[:300]] for k, v in sorted(attrs.items())]
            )
    return body


def models(ws: Workspace) -> tuple[str, bool]:
    rows = []
    for info in ws.models.list():
        rows.append(
            [
                link(href("models", info.name), info.name),
                esc(info.version),
                esc(", ".join(info.aliases) or "-"),
                esc(info.tags.get("keel.task", "?")),
                esc(info.tags.get("keel.variant", "-")),
                esc(_num(info.metrics.get("test_accuracy"))),
                esc(info.dataset or "-"),
            ]
        )
    body = table(
        ["model", "latest", "aliases", "task", "variant", "test accuracy", "trained on"], rows, raw=True
    )
    return body + "<h2>Accuracy, latency and cost</h2>" + pareto(ws), True


def pareto(ws: Workspace, name: str | None = None) -> str:
    """Accuracy against p50 latency at batch 1 for every benchmarked model version."""
    points = [p for p in queries.bench_points(ws) if p.batch_size == 1 and (name is None or p.model == name)]
    if not points:
        return "<p class=muted>No benchmarks yet: run <code>keel bench MODEL</code>.</p>"
    accuracy: dict[tuple[str, int], float | None] = {}
    for p in points:
        if (p.model, p.version) not in accuracy:
            accuracy[(p.model, p.version)] = ws.models.show(f"{p.model}@{p.version}").metrics.get(
                "test_accuracy"
            )
    by_model: dict[str, list[queries.BenchPoint]] = defaultdict(list)
    for p in points:
        by_model[p.model].append(p)
    traces = [
        {
            "x": [p.p50_ms for p in ps],
            "y": [accuracy[(p.model, p.version)] for p in ps],
            "name": model,
            "text": [f"v{p.version} {p.variant} {p.hardware}" for p in ps],
            "mode": "markers",
            "type": "scatter",
            "marker": {"size": 11},
        }
        for model, ps in sorted(by_model.items())
    ]
    figure = chart(
        f"pareto-{name or 'all'}",
        traces,
        {
            "title": {"text": "test accuracy vs p50 latency (batch 1)"},
            "xaxis": {"title": {"text": "p50 ms"}},
            "yaxis": {"title": {"text": "test accuracy"}},
        },
    )
    rows = [
        [
            f"{p.model}@{p.version}",
            p.variant or "-",
            p.hardware,
            _num(p.p50_ms, 2),
            _num(p.p99_ms, 2),
            _num(p.throughput, 1),
            "-" if p.size_bytes is None else f"{p.size_bytes / 1e6:.1f} MB",
            _num(p.cost_per_million, 4),
        ]
        for p in sorted(points, key=lambda p: p.p50_ms)
    ]
    headers = ["version", "variant", "hardware", "p50 ms", "p99 ms", "per s", "size", "$ per 1M"]
    return figure + table(headers, rows)


def model(ws: Workspace, name: str) -> tuple[str, bool]:
    versions = ws.models.versions(name)
    rows = [
        [
            esc(v.version),
            esc(", ".join(v.aliases) or "-"),
            esc(v.tags.get("keel.variant", "-")),
            esc(_num(v.metrics.get("test_accuracy"))),
            esc(v.dataset or "-"),
            node_link(v.ref.node_id),
        ]
        for v in versions
    ]
    body = table(["version", "aliases", "variant", "test accuracy", "trained on", "lineage"], rows, raw=True)
    card = ws.models.card(f"{name}@{versions[-1].version}")
    body += f"<h2>Model card of version {versions[-1].version}</h2>"
    for title, content in card.sections():
        body += f"<h3>{esc(title)}</h3>"
        if content and isinstance(content[0], list):
            body += table([""] * len(content[0]), content)
        else:
            body += "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in content) + "</ul>"
    return body + "<h2>Accuracy, latency and cost</h2>" + pareto(ws, name), True


def monitors(ws: Workspace) -> str:
    rows = [
        [
            link(href("monitors", m), m),
            esc(n),
            f'<span class="{"bad" if a else "ok"}">{a}</span>',
            esc(_when(last)),
        ]
        for m, n, a, last in queries.monitors(ws)
    ]
    return table(["monitor", "results", "alarms", "last result"], rows, raw=True)


def monitor(ws: Workspace, name: str) -> tuple[str, bool]:
    points = queries.monitor_points(ws, name)
    by_check: dict[str, dict[str, list[queries.MonitorPoint]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        by_check[p.check][p.target].append(p)
    body = ""
    for i, (check, targets) in enumerate(sorted(by_check.items())):
        traces = [
            {
                "x": [p.at for p in ps],
                "y": [p.value for p in ps],
                "name": target or check,
                "mode": "lines+markers",
                "type": "scatter",
                "marker": {"color": ["#b42318" if p.alarm else "#2563eb" for p in ps]},
            }
            for target, ps in sorted(targets.items())[:20]
        ]
        body += chart(f"check-{i}", traces, {"title": {"text": check}, "showlegend": len(traces) > 1})
    latest = {(p.check, p.target): p for p in points}
    body += "<h2>Latest values</h2>" + table(
        ["check", "target", "value", "p-value", "alarm", "at"],
        [
            [
                p.check,
                p.target or "-",
                _num(p.value, 4),
                _num(p.p_value, 4),
                "ALARM" if p.alarm else "ok",
                _when(p.at),
            ]
            for p in sorted(latest.values(), key=lambda p: (not p.alarm, p.check, p.target))
        ],
    )
    return body, True


def alerts(ws: Workspace) -> str:
    return _alerts_table(queries.alerts(ws))


def _alerts_table(rows: list[queries.AlertRow]) -> str:
    return table(
        ["fired", "monitor", "rule", "severity", "value", "message"],
        [[_when(a.fired_at), a.monitor, a.rule, a.severity, _num(a.value, 4), a.message] for a in rows],
    )
