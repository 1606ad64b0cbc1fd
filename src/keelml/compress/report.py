"""The compression report: a Pareto table and a self-contained HTML plot (plotly, JS inlined)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from keelml.compress.pareto import Candidate

COLUMNS = ("variant", "version", "accuracy", "drop", "p50 ms", "p90 ms", "size", "$/1M", "params", "")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]  # int -> float on purpose
    return str(n)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def rows(
    candidates: Sequence[Candidate], front: Sequence[Candidate], winner: Candidate | None, budget: float
) -> list[tuple[str, ...]]:
    """One row of strings per candidate; the last column marks Pareto points, misses and the winner."""
    out: list[tuple[str, ...]] = []
    for c in candidates:
        marks = []
        if winner is not None and c is winner:
            marks.append("WINNER")
        if any(c is f for f in front):
            marks.append("pareto")
        if c.accuracy_drop > budget + 1e-12:
            marks.append("over budget")
        if c.note:
            marks.append(c.note)
        out.append((
            c.label, c.spec or "-", f"{c.accuracy:.4f}", f"{c.accuracy_drop * 100:+.2f} pt",
            _num(c.p50_ms, ".3f"), _num(c.p90_ms, ".3f"), _size(c.size_bytes),
            _num(c.cost_per_million, ".4f"),
            "-" if c.parameters is None else f"{c.parameters:,}", ", ".join(marks),
        ))  # fmt: skip
    return out


def markdown(table: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    return "\n".join(lines)


def write_html(
    path: Path,
    title: str,
    candidates: Sequence[Candidate],
    table: Sequence[tuple[str, ...]],
    budget: float,
) -> Path:
    """Accuracy against p50 latency (marker area ~ file size), with the table below; works offline."""
    import plotly.graph_objects as go

    plotted = [c for c in candidates if c.p50_ms is not None]
    largest = max((c.size_bytes or 1 for c in plotted), default=1)
    fig = go.Figure()
    for group, members in (
        ("within budget", [c for c in plotted if c.accuracy_drop <= budget + 1e-12]),
        ("over budget", [c for c in plotted if c.accuracy_drop > budget + 1e-12]),
    ):
        fig.add_trace(
            go.Scatter(
                x=[c.p50_ms for c in members], y=[c.accuracy for c in members], mode="markers+text",
                name=group, text=[c.label for c in members], textposition="top center",
                marker={"size": [12 + 40 * ((c.size_bytes or 1) / largest) ** 0.5 for c in members]},
                hovertext=[f"{c.spec}: size {_size(c.size_bytes)}, $/1M {_num(c.cost_per_million, '.4f')}"
                           for c in members],
            )
        )  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="p50 latency (ms, log)", yaxis_title="test accuracy", xaxis_type="log",
        template="plotly_white",
    )  # fmt: skip
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in table)
    plot = fig.to_html(full_html=False, include_plotlyjs=True)  # inlined: the report opens offline
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{plot}<table><tr>{head}</tr>{body}</table></body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
