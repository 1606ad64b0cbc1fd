"""Each bad input of the issue: a 4xx naming the field and the constraint, and the service keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from keelml.core import request_log
from keelml.serve import RequestError, ServeConfig
from tests.serve.fakes import GOOD_ROW, FakeModel, FakeSource, fake_app

ROW = json.dumps(GOOD_ROW)
CASES: list[tuple[str, bytes, int, str, str]] = [
    ("missing field", b'{"rows": [{"amount": 1.0, "region": "north"}]}', 422, "rows[0].note", "required"),
    ("extra field", b'{"rows": [{"amount": 1, "region": "n", "note": "", "age": 3}]}', 422, "rows[0].age",
     "not an input"),
    ("string for number", b'{"row": {"amount": "12", "region": "n", "note": ""}}', 422, "rows[0].amount",
     "a number"),
    ("bool for number", b'{"row": {"amount": true, "region": "n", "note": ""}}', 422, "rows[0].amount", "a number"),
    ("number for text", b'{"row": {"amount": 1, "region": "n", "note": 5}}', 422, "rows[0].note", "a string"),
    ("null value", b'{"row": {"amount": null, "region": "n", "note": ""}}', 422, "rows[0].amount", "a number"),
    ("row not an object", b'{"rows": [[1, 2, 3]]}', 422, "rows[0]", "an object"),
    ("empty batch", b'{"rows": []}', 422, "rows", "at least 1 row"),
    ("rows not a list", b'{"rows": {"amount": 1}}', 422, "rows", "a list"),
    ("no rows key", b"{}", 422, "rows", "required"),
    ("unknown top-level key", b'{"rows": [], "model": "x"}', 422, "model", "not a known key"),
    ("both row and rows", f'{{"row": {ROW}, "rows": [{ROW}]}}'.encode(), 422, "row", "either"),
    ("body not an object", b"[1, 2]", 422, "body", "a json object"),
    ("oversize batch", ("{\"rows\": [" + ",".join([ROW] * 9) + "]}").encode(), 413, "rows", "at most 8 rows"),
    ("oversize body", b'{"rows": [' + b'"' + b"x" * 3000 + b'"]}', 413, "body", "at most 2100 bytes"),
    ("oversize text", b'{"row": {"amount": 1, "region": "n", "note": "' + b"y" * 300 + b'"}}', 413,
     "rows[0].note", "at most 200 characters"),
    ("invalid utf-8", b'{"row": {"amount": 1, "region": "\xff\xfe", "note": ""}}', 400, "body", "valid utf-8"),
    ("not json", b'{"rows": [', 400, "body", "valid json"),
    ("NaN", b'{"row": {"amount": NaN, "region": "n", "note": ""}}', 400, "body", "nan and infinity"),
    ("Infinity", b'{"row": {"amount": -Infinity, "region": "n", "note": ""}}', 400, "body", "nan and infinity"),
    ("overflow to inf", b'{"row": {"amount": 1e999, "region": "n", "note": ""}}', 422, "rows[0].amount", "finite"),
    ("huge integer", b'{"row": {"amount": ' + b"9" * 400 + b', "region": "n", "note": ""}}', 422,
     "rows[0].amount", "finite"),
    ("beyond float32", b'{"row": {"amount": -1e300, "region": "n", "note": ""}}', 422, "rows[0].amount",
     "float32 range"),
    ("model cannot score", b'{"rows": [{"amount": 1, "region": "n", "note": ""}, {"amount": 1, "region": "n", '
     b'"note": "unscorable"}]}', 422, "rows[1]", "values the model can score"),
    ("deep nesting", b"[" * 1020 + b"]" * 1020, 400, "body", "valid json"),
]  # fmt: skip


@pytest.fixture
def strict(tmp_path: Path) -> Any:
    config = ServeConfig(max_batch_rows=8, max_body_bytes=2100, max_text_chars=200, log_flush_seconds=0.05)
    with TestClient(fake_app(tmp_path, config=config)) as client:
        yield client


@pytest.mark.parametrize(("name", "body", "status", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_4xx_naming_field_and_constraint(
    strict: TestClient, name: str, body: bytes, status: int, field: str, words: str
) -> None:
    reply = strict.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["field"] == field and words in error["constraint"].lower(), error
    assert strict.post("/v1/predict", json={"row": GOOD_ROW}).status_code == 200  # still serving


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(strict: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    reply = strict.post("/v1/predict", content=chunks())
    assert reply.status_code == 413 and reply.json()["error"]["field"] == "body"


def test_rejected_requests_are_not_logged_and_nothing_is_lost(strict: TestClient, tmp_path: Path) -> None:
    for _, body, *_ in CASES:
        strict.post("/v1/predict", content=body)
        strict.post("/v1/predict", json={"row": GOOD_ROW})
    strict.app.state.service.predictions.flush()  # type: ignore[attr-defined]
    table = request_log.read(request_log.request_log_path(tmp_path, "loans"))
    assert table is not None and table.num_rows == len(CASES)


def test_a_lone_text_field_accepts_plain_strings(tmp_path: Path) -> None:
    info = {"task": "text", "classes": ("great", "other"), "inputs": [{"name": "review", "kind": "text"}],
            "variant": "fp32"}  # fmt: skip

    class Text(FakeModel):
        def predict_proba(self, rows):  # type: ignore[no-untyped-def]
            import numpy as np

            return np.array([[0.9, 0.1] if "tasty" in r["review"] else [0.2, 0.8] for r in rows])

    with TestClient(fake_app(tmp_path, FakeSource({1: Text(info=info)}))) as client:
        reply = client.post("/v1/predict", json={"rows": ["tasty soup", {"review": "bland"}]})
        assert [p["label"] for p in reply.json()["predictions"]] == ["great", "other"]
        assert client.post("/v1/predict", json={"rows": [3]}).status_code == 422


class Lookup:
    """Two known customers; anything else is unknown."""

    keys = ("customer_id",)
    request_fields = ("budget",)
    stored: ClassVar[dict[int, dict[str, float]]] = {1: {"amount": 250.0}, 2: {"amount": -7000.0}}

    def lookup(self, rows: Any) -> list[dict[str, Any]]:
        return [dict(self.stored.get(r["customer_id"], {"amount": None})) for r in rows]


def test_entity_keys_are_resolved_through_the_feature_store(tmp_path: Path) -> None:
    config = ServeConfig(features=("loans_view:amount",), log_flush_seconds=0.05)
    with TestClient(fake_app(tmp_path, config=config, features=Lookup())) as client:
        rows = [
            {"customer_id": 1, "region": "north", "note": ""},
            {"customer_id": 2, "region": "s", "note": ""},
        ]
        reply = client.post("/v1/predict", json={"rows": rows})
        assert reply.status_code == 200, reply.text
        assert [p["label"] for p in reply.json()["predictions"]] == ["bad", "good"]
        unknown = client.post("/v1/predict", json={"rows": [rows[0], {**rows[1], "customer_id": 99}]})
        assert unknown.status_code == 422
        error = unknown.json()["error"]
        assert error["field"] == "rows[1].customer_id" and "customer_id=99" in error["constraint"]
        missing = client.post("/v1/predict", json={"row": {"region": "n", "note": ""}})
        assert missing.json()["error"]["field"] == "rows[0].customer_id"
        wrong = client.post("/v1/predict", json={"row": {"customer_id": 1.5, "region": "n", "note": ""}})
        assert wrong.status_code == 422 and "entity key" in wrong.json()["error"]["constraint"]
        assert client.get("/v1/model").json()["entity_keys"] == ["customer_id"]
        budget = client.post("/v1/predict", json={"row": {**rows[0], "budget": 100.0}})
        assert budget.status_code == 200  # a request-time field of an on-demand feature is accepted
        raw = json.dumps({"row": {**rows[0], "budget": 1.0}}).replace("1.0}", "1e999}")
        bad = client.post("/v1/predict", content=raw.encode())
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "rows[0].budget"
        client.app.state.service.predictions.flush()  # type: ignore[attr-defined]
    table = request_log.read(request_log.request_log_path(tmp_path, "loans"))
    assert table is not None
    logged = sorted(table.select(["in.customer_id", "in.amount", "in.budget"]).to_pylist(), key=str)
    logged = [tuple(r.values()) for r in logged]
    assert sorted(logged, key=str) == sorted(
        [(1.0, 250.0, None), (2.0, -7000.0, None), (1.0, 250.0, 100.0)], key=str
    )


def test_request_error_json_shape() -> None:
    err = RequestError(422, "rows[0].x", "a number", "'a'")
    assert err.to_json() == {"error": {"field": "rows[0].x", "constraint": "a number", "received": "'a'"}}
