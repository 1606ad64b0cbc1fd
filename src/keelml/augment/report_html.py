"""A self-contained HTML report of an augmentation evaluation (plotly.js inlined: works offline).

Sections: the summary numbers; column shapes; real vs synthetic distributions of a few columns;
privacy (DCR and membership inference); utility of each training set on the real holdout.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keelml.augment.evaluate import AugmentEvaluation

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}.note{color:#555;font-size:.9rem}
"""


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def _figures(report: AugmentEvaluation) -> list[Any]:
    import plotly.graph_objects as go

    layout = {"height": 320, "margin": {"t": 40, "b": 40, "l": 50, "r": 20}}
    shapes = go.Figure(go.Bar(x=list(report.quality.shapes), y=list(report.quality.shapes.values())))
    shapes.update_layout(
        title="column shape similarity (1 = same distribution)", yaxis_range=[0, 1], **layout
    )
    figures = [shapes]
    for preview in report.previews:
        fig = go.Figure()
        for name, values in (
            ("real (training rows of the target)", preview.real),
            ("synthetic", preview.synthetic),
        ):
            fig.add_histogram(x=list(values), name=name, histnorm="probability", opacity=0.6)
        fig.update_layout(title=preview.name, barmode="overlay", **layout)
        figures.append(fig)
    if report.utility:
        util = go.Figure()
        for metric in ("auprc", "recall_at_precision", "recall"):
            util.add_bar(
                name=metric,
                x=[u.trained_on for u in report.utility],
                y=[getattr(u, metric) for u in report.utility],
            )
        util.update_layout(
            title=f"rare class {report.rare_class!r} on the real holdout", barmode="group", **layout
        )
        figures.append(util)
    return figures


def write_report(report: AugmentEvaluation, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = [
        ("synthetic rows", str(report.synthetic_rows)),
        ("real training rows / holdout rows", f"{report.train_rows} / {report.holdout_rows}"),
        ("quality (column shapes + pair trends)", _fmt(report.quality.score)),
        (
            "column shapes / pair trends",
            f"{_fmt(report.quality.shape_score)} / {_fmt(report.quality.trend_score)}",
        ),
        ("detection AUC (0.5: indistinguishable)", _fmt(report.detection.auc)),
        ("DP epsilon", "-" if report.epsilon is None else f"{report.epsilon:g} (delta 0)"),
    ]
    if report.privacy is not None:
        p = report.privacy
        summary += [
            ("membership-inference AUC (0.5 ideal)", _fmt(p.membership_auc)),
            ("synthetic rows closer to training than holdout (0.5 ideal)", _fmt(p.closer_to_training)),
            (
                "median DCR synthetic / holdout -> training",
                f"{_fmt(p.dcr_synthetic_median)} / {_fmt(p.dcr_holdout_median)}",
            ),
            ("exact copies of training rows", _fmt(p.exact_copies)),
        ]
    utility = [
        (
            u.trained_on,
            str(u.train_rows),
            _fmt(u.auprc),
            _fmt(u.recall_at_precision),
            _fmt(u.recall),
            _fmt(u.ece),
            _fmt(u.brier),
        )
        for u in report.utility
    ]
    parts = [
        f"<h1>Augmentation report: {html.escape(str(report.synthetic))}</h1>",
        f"<p class='note'>{html.escape(report.method)} on {html.escape(report.target_kind)} "
        f"{html.escape(report.target)!r}, against real rows of {html.escape(str(report.real))}. "
        "Test rows are real rows the method never saw; synthetic rows are never evaluated on.</p>",
        _table(summary, ("measure", "value")),
        f"<h2>Utility (rare class {html.escape(str(report.rare_class))!r})</h2>",
        _table(
            utility,
            (
                "trained on",
                "rows",
                "AUPRC",
                f"recall @ precision {report.utility[0].precision if report.utility else 0.5:g}",
                "recall @ 0.5",
                "ECE",
                "Brier",
            ),
        ),
        "<h2>Plots</h2>",
    ]
    parts += [
        str(fig.to_html(full_html=False, include_plotlyjs=i == 0)) for i, fig in enumerate(_figures(report))
    ]
    title = html.escape(str(report.synthetic))
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>augment {title}</title>"
    page += f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    target.write_text(page, encoding="utf-8")
    return target
