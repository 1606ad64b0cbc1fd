"""Plotly charts as a ``<div>`` plus an inline call to the locally served plotly.js."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

_CONFIG = {"displaylogo": False, "responsive": True}


def plotly_js() -> Path:
    """The plotly.min.js bundled in the ``plotly`` package (the dashboard never uses a CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def chart(div_id: str, traces: Sequence[Mapping[str, Any]], layout: Mapping[str, Any]) -> str:
    """HTML for one chart; ``traces``/``layout`` are plotly.js JSON.

    >>> 'Plotly.newPlot("c1"' in chart("c1", [{"y": [1, 2]}], {"title": {"text": "t"}})
    True
    """
    base = {"height": 320, "margin": {"l": 50, "r": 20, "t": 40, "b": 40}}
    payload = ", ".join(
        json.dumps(x, default=str).replace("</", "<\\/") for x in (list(traces), {**base, **layout}, _CONFIG)
    )
    return f'<div id="{div_id}" class="chart"></div><script>Plotly.newPlot("{div_id}", {payload});</script>'
