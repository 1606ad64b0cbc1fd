"""The HTTP contract: response models for the OpenAPI document, and request schemas per model.

Requests are parsed by :mod:`keelml.serve.inputs` (strict bytes-level checks); the request schemas
here describe the same rules to clients, built from the model being served, so ``/openapi.json``
always names that model's input fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from keelml.serve.config import ServeConfig
from keelml.serve.inputs import FLOAT32_MAX, RowSpec


class ErrorDetail(BaseModel):
    field: str = Field(description="The offending field, e.g. rows[3].amount, body, or X-API-Key")
    constraint: str = Field(description="What the field must satisfy")
    received: str | None = Field(default=None, description="A short view of what was sent")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class PredictionOut(BaseModel):
    prediction_id: str = Field(description="Id to send late ground truth to /v1/feedback")
    label: str
    score: float = Field(description="Probability of the predicted label")
    proba: dict[str, float]


class PredictResponse(BaseModel):
    model: str
    model_version: int
    variant: str
    predictions: list[PredictionOut]


class FeedbackItem(BaseModel):
    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="An id returned by /v1/predict")
    label: str = Field(min_length=1, max_length=1000, description="The ground-truth class")
    source: str = Field(default="api", min_length=1, max_length=200)


class FeedbackRequest(BaseModel):
    feedback: list[FeedbackItem] = Field(min_length=1)


class FeedbackResponse(BaseModel):
    accepted: int


class ModelResponse(BaseModel):
    name: str
    version: int = Field(description="The registry version served (an exported ONNX version)")
    alias_version: int = Field(description="The version the alias names (the export's parent)")
    variant: str
    task: str
    classes: list[str]
    inputs: dict[str, str] = Field(description="input field name -> kind (text, number, category)")
    entity_keys: list[str]
    loaded_at: float
    description: dict[str, Any] = Field(description="lineage and model card summary")
    deployment: str | None = Field(
        default=None, description="lineage node of this deployment: deployment:NAME@ALIAS/vVERSION"
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Body is not UTF-8 JSON"),
        (401, "Missing or wrong API key"),
        (413, "Body, batch or text over the [serve] limits"),
        (422, "A field is missing, extra, of the wrong type, not finite, or an unknown entity"),
    )
}


UNKNOWN_PREDICTION: dict[str, Any] = {
    "model": ErrorResponse,
    "description": "A prediction_id this service never issued (nothing in the request was recorded)",
}


def predict_body_schema(spec: RowSpec, config: ServeConfig) -> dict[str, Any]:
    """JSON schema of a /v1/predict body for the model in ``spec``."""
    props: dict[str, Any] = {}
    for f in spec.request_fields:
        if f.kind == "number":
            props[f.name] = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
        elif f.kind == "text":
            props[f.name] = {"type": "string", "maxLength": config.max_text_chars}
        else:
            props[f.name] = {"anyOf": [{"type": "string", "maxLength": config.max_text_chars},
                                       {"type": "integer"}, {"type": "boolean"}]}  # fmt: skip
    for key in spec.entity_keys:
        props[key] = {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "entity key"}
    row = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    return {
        "oneOf": [
            {"type": "object", "properties": {"rows": {"type": "array", "items": row, "minItems": 1,
                                                       "maxItems": config.max_batch_rows}},
             "required": ["rows"], "additionalProperties": False},
            {"type": "object", "properties": {"row": row}, "required": ["row"],
             "additionalProperties": False},
        ]
    }  # fmt: skip
