"""Take the README's screenshots from a demo workspace: the dashboard pages and the demo report.

    .venv/bin/python scripts/readme_screenshots.py keel-demo docs/img

Serves `keel ui` for the workspace on a free loopback port, opens each page in Debian's Chromium
(Playwright), waits for the charts to draw, and writes PNGs into the output folder.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn

from keelml import Workspace
from keelml.ui import create_app

PAGES = {
    "dashboard-overview": ("/", None),
    "dashboard-lineage": ("/lineage", "#lineage g.node"),
    "dashboard-models": ("/models", "#pareto-all .main-svg"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--monitor", default="credit-default", help="monitor page to capture")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    ws = Workspace.open(args.workspace)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ws), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    pages = {**PAGES, "dashboard-monitor": (f"/monitors/{args.monitor}", "#check-0 .main-svg")}
    args.output.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, (path, selector) in pages.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if selector:
                page.wait_for_selector(selector, timeout=20_000)
            page.screenshot(path=str(args.output / f"{name}.png"), full_page=False)
            print("wrote", args.output / f"{name}.png")
        report = (args.workspace / "demo-report.html").resolve()
        page.goto(report.as_uri())
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(args.output / "demo-report.png"), full_page=False)
        print("wrote", args.output / "demo-report.png")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
