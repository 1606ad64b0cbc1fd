"""HTML building blocks: the page layout, tables and links. Every value passes through ``esc``."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import quote

NAV: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/datasets", "Datasets"),
    ("/lineage", "Lineage"),
    ("/models", "Models"),
    ("/monitors", "Monitors"),
    ("/alerts", "Alerts"),
)

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
header{background:#14213d;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cbd5e1;text-decoration:none}header a.active,header a:hover{color:#fff}
header strong{font-size:16px;margin-right:12px}
main{padding:16px 24px;max-width:1200px}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px}
th,td{border:1px solid #d9dee5;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef1f5}
.muted{color:#6b7785}.bad{color:#b42318;font-weight:600}.ok{color:#067647}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d9dee5;padding:10px 16px;min-width:140px}
.card b{display:block;font-size:22px}
svg text{font:11px system-ui,sans-serif}
"""


def esc(value: object) -> str:
    """Escape any value for HTML text or attribute content.

    >>> esc('<a href="x">')
    '&lt;a href=&quot;x&quot;&gt;'
    """
    return html.escape("" if value is None else str(value), quote=True)


def href(*parts: str) -> str:
    """A URL path from raw segments, each percent-encoded.

    >>> href("datasets", "food reviews")
    '/datasets/food%20reviews'
    """
    return "/" + "/".join(quote(p, safe="@") for p in parts)


def link(url: str, text: object) -> str:
    return f'<a href="{esc(url)}">{esc(text)}</a>'


def node_link(node_id: str, text: object = "graph") -> str:
    """A link to the lineage page focused on one node.

    >>> node_link("dataset:reviews@2")
    '<a href="/lineage?node=dataset%3Areviews%402">graph</a>'
    """
    return link("/lineage?node=" + quote(node_id, safe=""), text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells already built with ``link``/``esc``)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="muted">nothing yet</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cards(items: Iterable[tuple[str, object]]) -> str:
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in items)
        + "</div>"
    )


def page(title: str, body: str, *, active: str, workspace: str, charts: bool = False) -> str:
    nav = "".join(
        f'<a href="{url}"{" class=active" if url == active else ""}>{esc(label)}</a>' for url, label in NAV
    )
    script = '<script src="/assets/plotly.min.js"></script>' if charts else ""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)} · keelml</title>"
        f'<link rel=icon href="data:,"><style>{_CSS}</style>{script}</head><body>'
        f"<header><strong>keelml</strong>{nav}<span class=muted>{esc(workspace)}</span></header>"
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
