"""Prediction ids are signed: feedback for an id this service never issued is a 404 and is not kept;
predictions and their late feedback join by id in the Delta logs, across hot reloads and restarts."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from keelml.core import request_log
from keelml.core.errors import ConfigError
from keelml.serve.ids import KEY_FILE, PredictionIds, load_key
from tests.serve.fakes import GOOD_ROW, FakeModel, FakeSource, fake_app


def _predict(client: TestClient, n: int) -> list[str]:
    rows = [{**GOOD_ROW, "amount": float(5000 * (i % 2) - 2500)} for i in range(n)]
    reply = client.post("/v1/predict", json={"rows": rows})
    assert reply.status_code == 200, reply.text
    return [p["prediction_id"] for p in reply.json()["predictions"]]


def _flush(client: TestClient) -> None:
    state = client.app.state.service  # type: ignore[attr-defined]
    assert state.predictions.flush() and state.feedback.flush()


def test_feedback_for_an_id_never_issued_is_a_404_naming_it_and_nothing_is_kept(
    client: TestClient, tmp_path: Path
) -> None:
    (real,) = _predict(client, 1)
    other = PredictionIds(load_key(tmp_path)).issue("another-model", 1_700_000_000.0)
    typo = real[:-1] + ("0" if real[-1] != "0" else "1")
    for i, bad in enumerate(("0" * 32, "f" * 32, typo, other)):
        body = {
            "feedback": [{"prediction_id": real, "label": "bad"}] * i
            + [{"prediction_id": bad, "label": "bad"}]
        }
        reply = client.post("/v1/feedback", json=body)
        assert reply.status_code == 404, reply.text
        error = reply.json()["error"]
        assert error["field"] == f"feedback[{i}].prediction_id" and error["received"] == bad
        assert "issued by /v1/predict of loans" in error["constraint"]
    assert client.post("/v1/feedback", json={"prediction_id": real, "label": "bad"}).status_code == 202
    _flush(client)
    table = request_log.read(request_log.feedback_log_path(tmp_path, "loans"))
    assert table is not None and table.column("prediction_id").to_pylist() == [real]  # all-or-nothing
    assert 'endpoint="/v1/feedback",status="404"} 4.0' in client.get("/metrics").text


def test_ids_are_unique_time_ordered_and_carry_their_time(client: TestClient) -> None:
    import time

    before = time.time()
    ids = _predict(client, 200) + _predict(client, 50)
    assert len(set(ids)) == 250 and all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)
    stamps = [PredictionIds.issued_at(i) for i in ids]
    assert stamps == sorted(stamps) and before - 0.01 <= stamps[0] <= stamps[-1] <= time.time() + 0.01


def test_predictions_and_late_feedback_join_by_id_across_a_hot_reload_and_a_restart(tmp_path: Path) -> None:
    source = FakeSource({1: FakeModel(weight=1.0), 2: FakeModel(weight=-1.0)})
    with TestClient(fake_app(tmp_path, source)) as client:
        first = _predict(client, 4)  # version 1
        source.alias = 2
        assert client.app.state.service.holder.check() is True  # type: ignore[attr-defined]
        second = _predict(client, 3)  # version 2
        # late truth for both versions, all of it after the reload
        late = [
            {"prediction_id": pid, "label": "good" if i % 2 else "bad"}
            for i, pid in enumerate(first + second)
        ]
        assert client.post("/v1/feedback", json={"feedback": late[:5]}).json() == {"accepted": 5}
        _flush(client)
    with TestClient(
        fake_app(tmp_path, source)
    ) as client:  # a restart (or another replica) on the same storage
        reply = client.post("/v1/feedback", json={"feedback": late[5:]})
        assert reply.status_code == 202, reply.text
    log = request_log.read(request_log.request_log_path(tmp_path, "loans"))
    feedback = request_log.read(request_log.feedback_log_path(tmp_path, "loans"))
    assert log is not None and feedback is not None and feedback.num_rows == 7
    joined = feedback.rename_columns(["prediction_id", "feedback_ts", "truth", "source"]).join(
        log.select(["prediction_id", "model_version", "label", "ts"]), "prediction_id", join_type="inner"
    )
    assert joined.num_rows == 7  # every feedback row finds its prediction
    by_id = {r["prediction_id"]: r for r in joined.to_pylist()}
    assert [by_id[p]["model_version"] for p in first + second] == [1] * 4 + [2] * 3
    assert [by_id[p]["truth"] for p in first + second] == [x["label"] for x in late]
    assert all(r["feedback_ts"] >= r["ts"] for r in by_id.values())


def test_the_key_is_per_workspace_private_and_created_once_under_concurrency(tmp_path: Path) -> None:
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_key(tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 32
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left
    mine = PredictionIds(keys[0]).issue("loans", 1.0)
    assert not PredictionIds(load_key(tmp_path / "elsewhere")).issued("loans", mine)
    path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="damaged") as info:
        load_key(tmp_path)
    assert "delete it" in str(info.value)


def test_ids_stay_unique_across_threads_and_forks() -> None:
    """No id may repeat across threads issuing in the same millisecond, nor in a forked child."""
    import os
    import threading

    from keelml.serve.ids import PredictionIds

    ids = PredictionIds(bytes(range(32)))
    seen: list[str] = []

    def many() -> None:
        # one millisecond for all, so 40 random bits keep them apart: 2,000 ids collide with p ~ 2e-6
        seen.extend(ids.issue("m", 1_700_000_000.0) for _ in range(500))

    threads = [threading.Thread(target=many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 2_000 and all(ids.issued("m", p) for p in seen[:50])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id, then leave without running the test runner's exit code
        os.write(write, ids.issue("m", 2.0).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child != ids.issue("m", 2.0)
