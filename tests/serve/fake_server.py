"""``uvicorn tests.serve.fake_server:app --factory``: the service over the fake model, for process tests."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from keelml.serve import ServeConfig
from tests.serve.fakes import fake_app


def app() -> FastAPI:
    config = ServeConfig(log_flush_seconds=0.2, log_flush_rows=500, reload_seconds=3600)
    return fake_app(Path(os.environ["KEEL_FAKE_STORAGE"]), config=config)
