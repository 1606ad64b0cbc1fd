"""Every dashboard page renders from a real workspace, escapes what it shows, and fails politely."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from keelml import Workspace
from keelml.ui import create_app


@pytest.fixture(scope="module")
def client(dashboard_ws: Workspace) -> TestClient:
    return TestClient(create_app(dashboard_ws))


@pytest.mark.parametrize(
    ("path", "needles"),
    [
        ("/", ["registered models", "loans", "feature-drift"]),
        ("/datasets", ["loans", "280"]),
        ("/datasets/loans", ["rows per version", "label-distribution", "region", "append"]),
        ("/lineage", ['<svg id="lineage"', "dataset:loans@1", "model:loan-clf@1"]),
        ("/lineage?node=model%3Aloan-clf%401", ["dataset:loans@1", "Attributes", "run_id"]),
        ("/models", ["loan-clf", "test accuracy", "pareto-all", "cpu-2core"]),
        ("/models/loan-clf", ["Model card of version 1", "Gates", "pareto-loan-clf"]),
        ("/monitors", ["loan-clf", "<td>8</td>", ">2<"]),
        ("/monitors/loan-clf", ["drift.ks", "check-0", "ALARM"]),
        ("/alerts", ["feature-drift", "warning"]),
    ],
)
def test_page_renders(client: TestClient, path: str, needles: list[str]) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    for needle in needles:
        assert needle in response.text, f"{needle!r} missing from {path}"


def test_values_are_escaped(client: TestClient) -> None:
    page = client.get("/alerts").text
    assert "KS drift on &lt;x&gt;" in page and "<x>" not in page


def test_charts_use_the_bundled_plotly_not_a_cdn(client: TestClient) -> None:
    page = client.get("/datasets/loans").text
    assert '<script src="/assets/plotly.min.js">' in page and "cdn" not in page.lower()
    asset = client.get("/assets/plotly.min.js")
    assert asset.status_code == 200 and len(asset.content) > 1_000_000 and b"Plotly" in asset.content[:5000]


def test_unknown_dataset_is_a_404_page_with_the_fix(client: TestClient) -> None:
    response = client.get("/datasets/nope")
    assert response.status_code == 404
    assert "nope" in response.text and "fix:" in response.text
