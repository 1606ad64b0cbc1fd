"""The dashboard's HTTP app (Starlette): routes, the local plotly.js asset, and error pages.

Read-only: no route writes to the workspace. A workspace error (an unknown dataset, say) becomes a
404 page naming the problem and the fix, never a traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from keelml.core.errors import KeelError, NotFoundError
from keelml.core.workspace import Workspace
from keelml.ui import pages
from keelml.ui.charts import plotly_js
from keelml.ui.html import esc, page

Handler = Callable[[Request], Awaitable[Response]]


def create_app(ws: Workspace) -> Starlette:
    """The dashboard over ``ws``; serve it with uvicorn (``keel ui``) or test it with a TestClient."""
    label = str(ws.root)

    def render(title: str, active: str, build: Callable[[Request], str | tuple[str, bool]]) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                built = build(request)
            except KeelError as exc:
                status = 404 if isinstance(exc, NotFoundError) else 400
                fix = f"<p>fix: {esc(exc.fix)}</p>" if exc.fix else ""
                body = f'<p class="bad">{esc(exc.problem)}</p>{fix}'
                return HTMLResponse(page("Not found", body, active=active, workspace=label), status)
            body, charts = built if isinstance(built, tuple) else (built, False)
            heading = title.format(**request.path_params)
            return HTMLResponse(page(heading, body, active=active, workspace=label, charts=charts))

        return handler

    def param(request: Request, name: str) -> str:
        value: Any = request.path_params[name]
        return str(value)

    async def asset(_: Request) -> Response:
        return FileResponse(plotly_js(), media_type="application/javascript")

    routes = [
        Route("/", render("Overview", "/", lambda r: pages.overview(ws))),
        Route("/datasets", render("Datasets", "/datasets", lambda r: pages.datasets_table(ws))),
        Route(
            "/datasets/{name}",
            render("Dataset {name}", "/datasets", lambda r: pages.dataset(ws, param(r, "name"))),
        ),
        Route(
            "/lineage", render("Lineage", "/lineage", lambda r: pages.lineage(ws, r.query_params.get("node")))
        ),
        Route("/models", render("Models", "/models", lambda r: pages.models(ws))),
        Route(
            "/models/{name}", render("Model {name}", "/models", lambda r: pages.model(ws, param(r, "name")))
        ),
        Route("/monitors", render("Monitors", "/monitors", lambda r: pages.monitors(ws))),
        Route(
            "/monitors/{name}",
            render("Monitor {name}", "/monitors", lambda r: pages.monitor(ws, param(r, "name"))),
        ),
        Route("/alerts", render("Alerts", "/alerts", lambda r: pages.alerts(ws))),
        Route("/assets/plotly.min.js", asset),
    ]
    return Starlette(routes=routes)
