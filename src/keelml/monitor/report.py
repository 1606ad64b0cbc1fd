"""The HTML monitoring report: one self-contained file (plotly's JavaScript inlined, no CDN).

Panels: the latest window's alarms and findings; reference vs current distributions of the most shifted
features and outputs; drift p-values over time; text columns (the embedding test over windows, and the
latest window's embeddings vs the reference's); estimated vs realised accuracy; slices with bootstrap
intervals; fairness by group; latency percentiles; alerts.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from keelml.monitor.store import MonitorStore, StoredResult

MAX_FEATURES = 12


def _figures(rows: list[StoredResult]) -> list[tuple[str, Any]]:
    import plotly.graph_objects as go

    figs: list[tuple[str, Any]] = []
    latest_end = rows[-1].window_end if rows else None
    latest_run = rows[-1].details.get("run_id") if rows else None
    latest = [r for r in rows if r.details.get("run_id") == latest_run and r.window_end == latest_end]

    per_col = [r for r in latest if r.check in ("data_drift", "output_drift") and r.details.get("histogram")]
    per_col.sort(key=lambda r: r.p_value if r.p_value is not None else 1.0)
    for r in per_col[:MAX_FEATURES]:
        h = r.details["histogram"]
        fig = go.Figure(
            [
                go.Bar(name="reference", x=h["labels"], y=h["reference"]),
                go.Bar(name="current", x=h["labels"], y=h["current"]),
            ]
        )
        p = "untested" if r.p_value is None else f"adjusted p = {r.p_value:.3g}"
        fig.update_layout(
            title=f"{r.check}: {r.target} ({r.details.get('test')}, {p})", barmode="group", height=320
        )
        figs.append(("Distributions, reference vs current", fig))

    series: dict[str, list[StoredResult]] = defaultdict(list)
    for r in rows:
        if r.check in ("data_drift", "output_drift") and r.target != "*" and r.p_value is not None:
            series[f"{r.check}:{r.target}"].append(r)
    if series:
        fig = go.Figure(
            [
                go.Scatter(name=k, mode="lines+markers", x=[_x(r) for r in v], y=[r.p_value for r in v])
                for k, v in list(series.items())[:40]
            ]
        )
        fig.update_yaxes(type="log", title="adjusted p-value")
        fig.update_layout(title="Drift over time (lower is stronger evidence of drift)", height=420)
        figs.append(("Drift over time", fig))

    figs += _text_figures(rows, latest)

    est = [r for r in rows if r.check == "performance_estimate" and r.value is not None]
    real = [r for r in rows if r.check == "performance_realised" and r.value is not None]
    if est:
        fig = go.Figure(
            [
                go.Scatter(
                    name="CBPE estimate",
                    x=[_x(r) for r in est],
                    y=[r.value for r in est],
                    mode="lines+markers",
                    error_y=_bars(est, "high", "low"),
                ),
                go.Scatter(
                    name="realised",
                    x=[r.target.split("/")[-1] for r in real],
                    y=[r.value for r in real],
                    mode="markers",
                    marker={"symbol": "x", "size": 10},
                ),
            ]
        )
        fig.update_layout(
            title="Accuracy: estimated without labels (band) vs realised once labels arrived", height=380
        )
        figs.append(("Performance", fig))

    sl = [r for r in latest if r.check == "slice_accuracy" and r.value is not None]
    if sl:
        fig = go.Figure(
            go.Bar(
                x=[r.target for r in sl],
                y=[r.value for r in sl],
                error_y=_bars(sl, "ci_high", "ci_low"),
            )
        )
        ref = sl[0].details.get("reference_accuracy")
        if ref is not None:
            fig.add_hline(y=ref, line_dash="dash", annotation_text="reference accuracy")
        fig.update_layout(title="Slice accuracy with 95% bootstrap intervals", height=380)
        figs.append(("Slices", fig))

    groups = [r for r in latest if r.check == "fairness_group"]
    if groups:
        keys = [
            k
            for k in ("selection_rate", "true_positive_rate", "false_positive_rate")
            if k in groups[0].details
        ]
        fig = go.Figure(
            [go.Bar(name=k, x=[r.target for r in groups], y=[r.details.get(k) for r in groups]) for k in keys]
        )
        diffs = ", ".join(
            f"{r.target} = {r.value:.3f}" for r in latest if r.check == "fairness" and r.value is not None
        )
        fig.update_layout(
            title=f"Fairness by group ({diffs or 'differences undefined'})", barmode="group", height=380
        )
        figs.append(("Fairness", fig))

    lat: dict[str, list[StoredResult]] = defaultdict(list)
    for r in rows:
        if r.check == "latency" and r.value is not None:
            lat[r.target].append(r)
    if lat:
        fig = go.Figure(
            [
                go.Scatter(name=k, x=[_x(r) for r in v], y=[r.value for r in v], mode="lines+markers")
                for k, v in sorted(lat.items())
            ]
        )
        fig.update_layout(title="Latency percentiles (ms)", height=340)
        figs.append(("Latency", fig))
    return figs


def _text_figures(rows: list[StoredResult], latest: list[StoredResult]) -> list[tuple[str, Any]]:
    """Per text column: the test over windows, and the latest window's embeddings vs the reference's."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series: dict[str, list[StoredResult]] = defaultdict(list)
    for r in rows:
        if r.check == "text_drift" and r.target != "*" and r.p_value is not None:
            series[r.target].append(r)
    views = {r.target: r for r in latest if r.check == "text_drift" and r.details.get("view")}
    figs: list[tuple[str, Any]] = []
    for col in sorted(set(series) | set(views))[:MAX_FEATURES]:
        runs = series.get(col, [])
        if runs:
            test = runs[-1].details.get("test", "mmd")
            label = "MMD²" if test == "mmd" else "domain-classifier AUC"
            fig = go.Figure(
                [
                    go.Scatter(
                        name="adjusted p-value", x=[_x(r) for r in runs], y=[r.p_value for r in runs],
                        mode="lines+markers",
                    ),
                    go.Scatter(
                        name=label, x=[_x(r) for r in runs], y=[r.value for r in runs],
                        mode="lines+markers", yaxis="y2", line={"dash": "dot"},
                    ),
                ]
            )  # fmt: skip
            alpha = runs[-1].details.get("alpha")
            if alpha is not None:
                fig.add_hline(y=alpha, line_dash="dash", annotation_text=f"alpha {alpha:.3g}")
            fig.update_layout(
                title=f"text_drift: {col} over windows ({label} on embeddings, permutation p-value)",
                yaxis={"type": "log", "title": "adjusted p-value"},
                yaxis2={"title": label, "overlaying": "y", "side": "right"},
                height=360,
            )
            figs.append(("Text columns", fig))
        latest_col = views.get(col)
        if latest_col is not None:
            view = latest_col.details["view"]
            proj, sim = view["projection"], view["similarity"]
            fig = make_subplots(
                rows=1,
                cols=2,
                subplot_titles=(
                    "embeddings on the reference's 2 principal axes "
                    f"({sum(proj['explained']):.0%} of its variance)",
                    "cosine similarity to the reference centroid (shares)",
                ),
            )
            for side, colour in (("reference", "#1f77b4"), ("current", "#ff7f0e")):
                pts = proj[side]
                fig.add_trace(
                    go.Scatter(
                        name=side, x=[q[0] for q in pts], y=[q[1] for q in pts], mode="markers",
                        marker={"color": colour, "size": 5, "opacity": 0.6}, legendgroup=side,
                    ),
                    row=1, col=1,
                )  # fmt: skip
                fig.add_trace(
                    go.Bar(
                        name=side, x=sim["labels"], y=sim[side], marker={"color": colour},
                        legendgroup=side, showlegend=False,
                    ),
                    row=1, col=2,
                )  # fmt: skip
            p = "untested" if latest_col.p_value is None else f"adjusted p = {latest_col.p_value:.3g}"
            fig.update_layout(
                title=f"text_drift: {col}, latest window vs reference ({p})", barmode="group", height=380
            )
            figs.append(("Text columns", fig))
    return figs


def _bars(rows: list[StoredResult], high: str, low: str) -> dict[str, Any]:
    """Asymmetric error bars from the interval bounds stored in each result's details."""
    vals = [float(r.value or 0.0) for r in rows]
    return {
        "type": "data",
        "symmetric": False,
        "array": [float(r.details.get(high) or v) - v for r, v in zip(rows, vals, strict=True)],
        "arrayminus": [v - float(r.details.get(low) or v) for r, v in zip(rows, vals, strict=True)],
    }


def _x(r: StoredResult) -> str:
    return (r.window_end or r.created_at).isoformat()


def _table(head: list[str], body: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{th}</tr>{trs}</table>"


def write_report(store: MonitorStore, monitor: str, path: Path) -> Path:
    import plotly.io as pio

    rows = store.results(monitor)
    figs = _figures(rows)
    latest_end = rows[-1].window_end if rows else None
    latest = [
        r
        for r in rows
        if r.window_end == latest_end and r.details.get("run_id") == rows[-1].details.get("run_id")
    ]
    window = next((r for r in latest if r.check == "window"), None)
    findings = (
        window.details.get("findings", [])
        if window
        else ["no monitor results stored yet: run `keel monitor run`"]
    )
    alarms = [[r.check, r.target, r.value, r.p_value] for r in latest if r.alarm]
    alerts = [
        [a.fired_at.isoformat(), a.severity, a.rule, a.message] for a in store.alerts(monitor, limit=50)
    ]
    parts = [
        f"<h1>keelml monitor: {html.escape(monitor)}</h1>",
        f"<p>{len(rows)} stored results; latest window ends {latest_end or '-'}"
        f" ({int(window.value or 0) if window else 0} rows).</p>",
        "<h2>Alarms in the latest window</h2>",
        _table(["check", "target", "value", "p-value"], alarms) if alarms else "<p>none</p>",
        "<h2>Findings</h2><ul>" + "".join(f"<li>{html.escape(str(f))}</li>" for f in findings) + "</ul>",
    ]
    section = None
    for i, (title, fig) in enumerate(figs):
        if title != section:
            parts.append(f"<h2>{html.escape(title)}</h2>")
            section = title
        parts.append(pio.to_html(fig, include_plotlyjs=i == 0, full_html=False))
    parts += [
        "<h2>Alerts</h2>",
        _table(["fired", "severity", "rule", "message"], alerts) if alerts else "<p>none</p>",
    ]
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px}"
    )
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>monitor {html.escape(monitor)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
