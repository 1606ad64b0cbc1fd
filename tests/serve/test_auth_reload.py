from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from keelml.core.errors import ConfigError
from keelml.serve import ServeConfig
from keelml.serve.server import api_key_for
from tests.serve.fakes import GOOD_ROW, FakeModel, FakeSource, fake_app

KEY = "s3cret-key-0123456789abcdef"


def test_api_key_is_required_compared_and_never_echoed_or_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with TestClient(fake_app(tmp_path, api_key=KEY)) as client:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"}):
            reply = client.post("/v1/predict", json={"row": GOOD_ROW}, headers=headers)
            assert reply.status_code == 401 and reply.json()["error"]["field"] == "X-API-Key"
            assert KEY not in reply.text
        assert client.get("/metrics").status_code == 401 and client.get("/v1/model").status_code == 401
        ok = client.post("/v1/predict", json={"row": GOOD_ROW}, headers={"X-API-Key": KEY})
        assert ok.status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert 'status="401"' in client.get("/metrics", headers={"X-API-Key": KEY}).text
    assert KEY not in caplog.text and KEY[:10] not in caplog.text


def test_the_key_comparison_is_constant_time() -> None:
    import inspect

    from keelml.serve import app

    assert "hmac.compare_digest(" in inspect.getsource(app.create_app)


def test_refuses_a_non_loopback_address_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(api_key_env="KEEL_TEST_KEY")
    monkeypatch.delenv("KEEL_TEST_KEY", raising=False)
    assert api_key_for("127.0.0.1", config) is None
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(ConfigError, match="without an API key"):
            api_key_for(host, config)
    monkeypatch.setenv("KEEL_TEST_KEY", "short")
    with pytest.raises(ConfigError, match="too short") as info:
        api_key_for("0.0.0.0", config)
    assert "short" not in str(info.value).replace("too short", "")
    monkeypatch.setenv("KEEL_TEST_KEY", KEY)
    assert api_key_for("0.0.0.0", config) == KEY


def test_serve_section_of_keel_toml_is_validated() -> None:
    assert ServeConfig.from_mapping({"max_batch_rows": 32}).max_batch_rows == 32
    for bad in ({"max_batch_rows": 0}, {"max_body_bytes": "big"}, {"log_flush_seconds": -1}, {"workers": 2}):
        with pytest.raises(ConfigError, match=r"\[serve\]"):
            ServeConfig.from_mapping(bad)


def test_alias_move_swaps_the_model_and_rollback_moves_it_back(
    client: TestClient, source: FakeSource
) -> None:
    holder = client.app.state.service.holder  # type: ignore[attr-defined]
    row = {**GOOD_ROW, "amount": 3000.0}
    assert client.post("/v1/predict", json={"row": row}).json()["predictions"][0]["label"] == "bad"
    assert holder.check() is False and source.loads == 1  # alias unchanged: nothing loaded
    source.alias = 2
    assert holder.check() is True
    after = client.post("/v1/predict", json={"row": row}).json()
    assert after["model_version"] == 2 and after["predictions"][0]["label"] == "good"
    assert client.get("/v1/model").json()["version"] == 2
    assert "keel_model_version 2.0" in client.get("/metrics").text
    source.alias = 1  # rollback = the alias moves back
    assert holder.check() is True
    assert client.post("/v1/predict", json={"row": row}).json()["model_version"] == 1


def test_in_flight_requests_finish_on_the_old_model(tmp_path: Path) -> None:
    source = FakeSource({1: FakeModel(weight=1.0, delay=0.5), 2: FakeModel(weight=-1.0)})
    with TestClient(fake_app(tmp_path, source)) as client:
        holder = client.app.state.service.holder  # type: ignore[attr-defined]
        slow: dict[str, object] = {}
        thread = threading.Thread(
            target=lambda: slow.update(
                client.post("/v1/predict", json={"row": {**GOOD_ROW, "amount": 3000.0}}).json()
            )
        )
        thread.start()
        deadline = time.time() + 5
        while source.models[1].calls == 0 and time.time() < deadline:
            time.sleep(0.01)
        source.alias = 2
        assert holder.check() is True  # swapped while the slow request is inside model 1
        thread.join()
        assert slow["model_version"] == 1 and slow["predictions"][0]["label"] == "bad"  # type: ignore[index]
        assert client.post("/v1/predict", json={"row": GOOD_ROW}).json()["model_version"] == 2


def test_the_reload_thread_polls_and_survives_a_registry_outage(tmp_path: Path) -> None:
    source = FakeSource({1: FakeModel(), 2: FakeModel(weight=-1.0)})
    config = ServeConfig(reload_seconds=0.05, log_flush_seconds=0.05)
    with TestClient(fake_app(tmp_path, source, config=config)) as client:
        source.fail = True
        deadline = time.time() + 5
        while not client.get("/readyz").json()["last_reload_error"] and time.time() < deadline:
            time.sleep(0.05)  # a poll (every 0.05 s) meets the outage
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and "registry down" in ready["last_reload_error"]
        assert client.post("/v1/predict", json={"row": GOOD_ROW}).json()["model_version"] == 1
        source.fail = False
        source.alias = 2
        deadline = time.time() + 5
        while client.get("/v1/model").json()["version"] != 2 and time.time() < deadline:
            time.sleep(0.05)
        assert client.get("/v1/model").json()["version"] == 2
        text = client.get("/metrics").text
        assert "keel_model_reloads_total 1.0" in text and "keel_model_reload_errors_total" in text
        assert client.get("/readyz").json()["last_reload_error"] is None
