"""A self-contained HTML validation report with plotly plots (plotly.js inlined: works offline).

Sections: the verdict, the anomalies table, missing rates per column, and, for each column with a
reference profile, its distribution in the reference and the target (value shares for categorical
columns, the CDF from the quantile sketches for numeric ones): all drawn from stored profiles.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from keelml.data.profile import ColumnProfile, DatasetProfile
from keelml.data.validation import ValidationReport

MAX_PLOTS = 40
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left}
th{background:#f4f4f4}.blocking{color:#b00020;font-weight:600}.warning{color:#9a6700}.ok{color:#116329}
"""


def _figure_html(fig: Any, first: bool) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=first))


def _distribution(ref: ColumnProfile | None, tgt: ColumnProfile) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    pairs = [("reference", ref), ("target", tgt)] if ref is not None else [("target", tgt)]
    if tgt.top is not None and tgt.kind != "numeric":
        keys = [k for k, _ in tgt.top.counts[:20]]
        if ref is not None and ref.top is not None:
            keys += [k for k, _ in ref.top.counts[:20] if k not in keys]
        for name, col in pairs:
            if col is None or col.top is None:
                continue
            counts = dict(col.top.counts)
            total = max(sum(counts.values()) + col.top.other, 1)
            fig.add_bar(name=name, x=keys, y=[counts.get(k, 0) / total for k in keys])
        fig.update_layout(barmode="group", yaxis_title="share of rows")
    elif tgt.quantiles is not None and tgt.quantiles.points:
        for name, col in pairs:
            if col is None or col.quantiles is None or not col.quantiles.points:
                continue
            x = np.asarray(col.quantiles.points)
            fig.add_scatter(name=name, x=x, y=col.quantiles.cdf(x), mode="lines")
        fig.update_layout(yaxis_title="cumulative share")
    else:
        return None
    fig.update_layout(title=tgt.name, height=300, margin={"t": 40, "b": 30, "l": 50, "r": 20})
    return fig


def validation_html(report: ValidationReport) -> str:
    import plotly.graph_objects as go

    verdict = (
        '<p class="ok">OK: no blocking anomaly</p>'
        if report.ok
        else f'<p class="blocking">FAILED: {len(report.blocking)} blocking anomalies</p>'
    )
    rows = "".join(
        f'<tr><td class="{a.severity}">{a.severity}</td><td>{html.escape(a.column or "-")}</td>'
        f"<td>{html.escape(a.kind)}</td><td>{html.escape(a.description)}</td>"
        f"<td>{html.escape(a.expected)}</td><td>{html.escape(a.received)}</td></tr>"
        for a in report.anomalies
    )
    table = (
        "<table><tr><th>severity</th><th>column</th><th>kind</th><th>description</th>"
        f"<th>expected</th><th>received</th></tr>{rows}</table>"
        if rows
        else "<p>No anomalies.</p>"
    )
    missing = go.Figure(
        go.Bar(x=[c.name for c in report.columns], y=[c.missing_rate for c in report.columns], name="missing")
    )
    missing.update_layout(title="missing rate per column", height=300, yaxis_tickformat=".0%")
    parts = [_figure_html(missing, True)]
    ref_cols = {c.name: c for c in report.reference_profile.columns} if report.reference_profile else {}
    target: DatasetProfile | None = report.profile
    for col in (target.columns if target else ())[:MAX_PLOTS]:
        if col.kind == "text" or col.nulls == col.rows:
            continue
        fig = _distribution(ref_cols.get(col.name), col)
        if fig is not None:
            parts.append(_figure_html(fig, False))
    title = f"Validation of {report.target}" + (f" against {report.reference}" if report.reference else "")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{report.rows:,} rows, environment {report.environment}, {report.seconds:.2f} s</p>{verdict}"
        f"<h2>Anomalies</h2>{table}<h2>Columns</h2>{''.join(parts)}</body></html>"
    )


def write_validation_html(report: ValidationReport, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(validation_html(report), encoding="utf-8")
    return target
