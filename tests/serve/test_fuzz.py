"""Property-based fuzzing of the OpenAPI document with schemathesis, in process (ASGI), bounded.

For every operation, valid (positive) and schema-breaking (negative) requests: never a 5xx, errors
are JSON naming a field, responses match the documented schemas, and the service still answers a
valid request afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from tests.serve.fakes import GOOD_ROW, fake_app

KEY = "fuzz-key-0123456789abcdef"
EXAMPLES = 25  # per operation and mode: 8 runs stay around 10 s on 2 shared cores


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, TestClient]]:
    app = fake_app(tmp_path_factory.mktemp("fuzz"), api_key=KEY)
    with TestClient(app) as client:  # runs the lifespan: model loaded, log writer started
        yield schemathesis.openapi.from_asgi("/openapi.json", app), client


def _operations(schema: Any) -> dict[str, Any]:
    return {result.ok().label: result.ok() for result in schema.get_all_operations()}


def test_the_schema_documents_every_endpoint(served: tuple[Any, TestClient]) -> None:
    assert set(_operations(served[0])) == {
        "POST /v1/predict", "POST /v1/feedback", "GET /v1/model", "GET /healthz", "GET /readyz", "GET /metrics",
    }  # fmt: skip


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"]
)
@pytest.mark.parametrize("label", ["POST /v1/predict", "POST /v1/feedback", "GET /v1/model", "GET /metrics"])
def test_no_request_the_schema_allows_or_breaks_gets_a_5xx(
    served: tuple[Any, TestClient], label: str, mode: GenerationMode
) -> None:
    schema, client = served
    operation = _operations(schema)[label]
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: Any) -> None:
        response = case.call(headers={"X-API-Key": KEY})
        seen.append(response.status_code)
        assert response.status_code < 500, (case.body, response.status_code, response.text)
        if response.status_code >= 400:
            assert response.json()["error"]["field"]
        if mode is GenerationMode.POSITIVE:
            case.validate_response(response, excluded_checks=[schemathesis.checks.ignored_auth])

    check()
    assert seen
    if mode is GenerationMode.POSITIVE and label == "POST /v1/predict":
        assert 200 in seen  # the generator reaches the model, not only the validators
    assert client.post("/v1/predict", json={"row": GOOD_ROW}, headers={"X-API-Key": KEY}).status_code == 200


def test_nothing_was_lost_while_fuzzing(served: tuple[Any, TestClient], tmp_path: Path) -> None:
    text = served[1].get("/metrics", headers={"X-API-Key": KEY}).text
    assert 'status="500"' not in text and "keel_request_log_dropped_rows_total 0.0" in text
