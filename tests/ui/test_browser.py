"""The dashboard in a real browser (Debian's Chromium driven by Playwright): pages load without
console errors, the lineage graph and a chart render, navigation works. Screenshots are saved next to
the test's temporary workspace (and into $KEEL_SCREENSHOT_DIR when set, e.g. for the README)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from keelml import Workspace
from keelml.ui import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(dashboard_ws: Workspace) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(dashboard_ws), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard server did not start within 20 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def _shots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    dirs = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("KEEL_SCREENSHOT_DIR"):
        dirs.append(Path(os.environ["KEEL_SCREENSHOT_DIR"]))
        dirs[-1].mkdir(parents=True, exist_ok=True)
    return dirs


@pytest.mark.slow
def test_dashboard_in_chromium(
    base_url: str, browser: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import Browser, ConsoleMessage, Error

    assert isinstance(browser, Browser)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if isinstance(m, ConsoleMessage) and m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)) if isinstance(e, Error) else None)
    shots = _shots(tmp_path_factory)

    def visit(path: str, shot: str) -> None:
        response = page.goto(base_url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        for folder in shots:
            page.screenshot(path=str(folder / f"{shot}.png"), full_page=True)

    visit("/", "overview")
    page.click("header >> text=Lineage")
    page.wait_for_url("**/lineage")  # click() returns once the navigation commits, before the page parses
    page.wait_for_load_state("networkidle")
    page.locator("#lineage g.node").first.wait_for()
    assert page.locator("#lineage g.node").count() >= 3  # dataset versions and the model
    for folder in shots:
        page.screenshot(path=str(folder / "lineage.png"), full_page=True)

    page.locator('#lineage g.node[data-id="model:loan-clf@1"]').click()
    page.wait_for_load_state("networkidle")
    assert "node=model" in page.url and page.locator("text=Attributes").count() == 1

    visit("/datasets/loans", "dataset")
    page.wait_for_selector("#rows-per-version .main-svg", timeout=15_000)  # plotly drew the chart
    visit("/monitors/loan-clf", "monitor")
    page.wait_for_selector("#check-0 .main-svg", timeout=15_000)
    visit("/models", "models")
    page.wait_for_selector("#pareto-all .main-svg", timeout=15_000)
    assert problems == [], f"console errors: {problems}"
    assert all((folder / "lineage.png").stat().st_size > 10_000 for folder in shots)
