from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from keelml.core import request_log
from tests.serve.fakes import GOOD_ROW, FakeSource


def _flush(client: TestClient) -> None:
    state = client.app.state.service  # type: ignore[attr-defined]
    assert state.predictions.flush() and state.feedback.flush()


def test_single_and_batched_rows_get_ids_probabilities_and_the_version(client: TestClient) -> None:
    one = client.post("/v1/predict", json={"row": GOOD_ROW})
    assert one.status_code == 200, one.text
    assert (
        one.headers["server-timing"].startswith("model;dur=") and ", app;dur=" in one.headers["server-timing"]
    )
    body = one.json()
    assert body["model"] == "loans" and body["model_version"] == 1 and body["variant"] == "int8"
    (pred,) = body["predictions"]
    assert set(pred["proba"]) == {"good", "bad"} and abs(sum(pred["proba"].values()) - 1) < 1e-9
    assert pred["label"] == "good" and pred["score"] == pred["proba"]["good"]
    rows = [{**GOOD_ROW, "amount": float(a), "region": r} for a, r in ((5000, "north"), (-5000, "south"))]
    batch = client.post("/v1/predict", json={"rows": rows}).json()["predictions"]
    assert [p["label"] for p in batch] == ["bad", "good"]
    ids = {pred["prediction_id"], *(p["prediction_id"] for p in batch)}
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)


def test_every_prediction_is_logged_in_the_request_log_layout(client: TestClient, tmp_path: Path) -> None:
    ids = []
    for i in range(7):
        reply = client.post("/v1/predict", json={"rows": [{**GOOD_ROW, "amount": float(i)}] * 3})
        ids += [p["prediction_id"] for p in reply.json()["predictions"]]
    _flush(client)
    table = request_log.read(request_log.request_log_path(tmp_path, "loans"))
    assert table is not None and table.num_rows == 21
    assert sorted(table.column("prediction_id").to_pylist()) == sorted(ids)
    names = set(table.column_names)
    assert set(request_log.BASE_COLUMNS) <= names
    assert {"in.amount", "in.region", "in.note", "proba.good", "proba.bad"} <= names
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert table.schema.field("in.amount").type == "double" and table.schema.field("in.note").type == "string"
    assert set(table.column("model_version").to_pylist()) == {1}
    assert min(table.column("latency_ms").to_pylist()) > 0


def test_feedback_attaches_labels_by_prediction_id(client: TestClient, tmp_path: Path) -> None:
    pid = client.post("/v1/predict", json={"row": GOOD_ROW}).json()["predictions"][0]["prediction_id"]
    reply = client.post("/v1/feedback", json={"feedback": [{"prediction_id": pid, "label": "bad"}]})
    assert reply.status_code == 202 and reply.json() == {"accepted": 1}
    assert (
        client.post("/v1/feedback", json={"prediction_id": pid, "label": "good", "source": "crm"}).status_code
        == 202
    )
    _flush(client)
    table = request_log.read(request_log.feedback_log_path(tmp_path, "loans"))
    assert table is not None and table.schema == request_log.FEEDBACK_SCHEMA
    assert table.to_pylist()[0]["prediction_id"] == pid
    assert sorted(table.column("source").to_pylist()) == ["api", "crm"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"prediction_id": "nope", "label": "bad"}, "feedback[0].prediction_id", "pattern"),
        ({"prediction_id": "a" * 32, "label": "maybe"}, "feedback[0].label", "one of the model's classes"),
        ({"feedback": []}, "feedback", "at least 1"),
        ({"feedback": [{"label": "bad"}]}, "feedback[0].prediction_id", "required"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field(
    client: TestClient, body: object, field: str, words: str
) -> None:
    reply = client.post("/v1/feedback", json=body)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["field"] == field and words in error["constraint"].lower()


def test_model_health_readiness_and_metrics(client: TestClient) -> None:
    model = client.get("/v1/model").json()
    assert model["version"] == 1 and model["classes"] == ["good", "bad"]
    assert model["inputs"] == {"amount": "number", "region": "category", "note": "text"}
    assert model["description"]["lineage"] == ["dataset:loans@1"]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"] == "loans@1"
    client.post("/v1/predict", json={"rows": [GOOD_ROW, GOOD_ROW]})
    client.post("/v1/predict", json={"rows": []})
    text = client.get("/metrics").text
    assert 'keel_requests_total{endpoint="/v1/predict",status="200"} 1.0' in text
    assert 'keel_requests_total{endpoint="/v1/predict",status="422"} 1.0' in text
    assert 'keel_predictions_total{label="good",version="1"} 2.0' in text
    assert 'keel_model_info{classes="good,bad",name="loans",variant="int8",version="1"} 1.0' in text
    assert "keel_request_latency_seconds_bucket" in text and "keel_model_latency_seconds_count 1.0" in text


def test_openapi_names_the_served_models_fields(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    row = body["oneOf"][0]["properties"]["rows"]["items"]
    assert row["required"] == ["amount", "region", "note"] and row["additionalProperties"] is False
    # the key is checked inside the handler, but documented like every other endpoint's
    assert doc["paths"]["/v1/predict"]["post"]["security"] == [{"APIKeyHeader": []}]
    assert "APIKeyHeader" in doc["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


def test_extra_prometheus_collectors_are_served(tmp_path: Path) -> None:
    from prometheus_client.core import GaugeMetricFamily

    from tests.serve.fakes import FakeModel, fake_app

    class DriftCollector:
        def collect(self):  # type: ignore[no-untyped-def]
            yield GaugeMetricFamily("keel_drift_score", "from monitoring", value=0.25)

    app = fake_app(tmp_path, FakeSource({1: FakeModel()}), collectors=[DriftCollector()])
    with TestClient(app) as c:
        assert "keel_drift_score 0.25" in c.get("/metrics").text
