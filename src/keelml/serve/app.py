"""The FastAPI app: predict, feedback, model, health, readiness, metrics and the OpenAPI document.

Build it with :func:`create_app` from a model spec and a :class:`~keelml.serve.model.ModelSource`
(the registry in production). The app owns a background request-log writer and a reloader
thread; both start and stop with the app's lifespan.
"""

from __future__ import annotations

import gc
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from keelml.core import request_log
from keelml.serve import schemas
from keelml.serve.config import ServeConfig
from keelml.serve.ids import PredictionIds, load_key
from keelml.serve.inputs import FeatureLookup, RequestError, RowSpec, check_rows, loads, merge_features
from keelml.serve.logbook import BatchWriter, Feedback, Prediction, feedback_table, prediction_table
from keelml.serve.metrics import ServeMetrics
from keelml.serve.model import LoadedModel, ModelSource
from keelml.serve.reload import ModelHolder, Reloader
from keelml.serve.timing import TimingMiddleware

log = logging.getLogger("keelml.serve")
API_KEY_HEADER = "X-API-Key"
_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Required off loopback")


@dataclass
class ServiceState:
    """Everything the handlers share; one per app."""

    holder: ModelHolder
    config: ServeConfig
    metrics: ServeMetrics
    storage: Path
    features: FeatureLookup | None
    api_key: str | None
    predictions: BatchWriter | None = None
    feedback: BatchWriter | None = None
    reloader: Reloader | None = None
    ids: PredictionIds | None = None
    specs: dict[int, RowSpec] = field(default_factory=dict)
    deployment: str | None = None  # the lineage node of the version being served, once recorded

    def model(self) -> LoadedModel:
        current = self.holder.current
        if current is None:
            raise RequestError(503, "model", "a loaded model (the service is starting)")
        return current

    def row_spec(self, loaded: LoadedModel) -> RowSpec:
        spec = self.specs.get(id(loaded))
        if spec is None:
            keys = self.features.keys if self.features is not None else ()
            extra = self.features.request_fields if self.features is not None else ()
            # without a lookup every input must come with the request, whatever [serve] features says
            names = self.config.features if self.features is not None else ()
            stored = frozenset(f.split(":", 1)[-1] for f in names)
            spec = RowSpec(loaded.schema, keys, stored & set(loaded.schema.names), extra)
            self.specs = {id(loaded): spec}  # only the current model's spec is kept
        return spec


def _reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) before reading more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            413, "body", f"at most {limit} bytes ([serve] max_body_bytes)", f"{declared} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413, "body", f"at most {limit} bytes ([serve] max_body_bytes)", f"> {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    spec: str,
    source: ModelSource,
    *,
    storage: Path,
    config: ServeConfig | None = None,
    api_key: str | None = None,
    features: FeatureLookup | None = None,
    collectors: Iterable[Collector] = (),
    reload: bool = True,
    on_serve: Callable[[LoadedModel], str | None] | None = None,
) -> FastAPI:
    """A service for ``spec`` (NAME@ALIAS); logs go under ``storage`` (the workspace storage root).

    ``api_key`` (when given) is required in the ``X-API-Key`` header of every endpoint except
    /healthz and /readyz; ``collectors`` are extra Prometheus collectors shown on /metrics.
    ``on_serve`` is called with each version the service starts serving (at start and after every
    hot reload) and returns its deployment's lineage node, if it recorded one.
    """
    cfg = config or ServeConfig()
    metrics = ServeMetrics(collectors)
    model_name = spec.partition("@")[0]

    def serving(loaded: LoadedModel) -> None:
        metrics.set_model(loaded.name, loaded.version, loaded.schema.variant, loaded.schema.classes)
        if on_serve is not None:
            state.deployment = on_serve(loaded)

    def on_swap(loaded: LoadedModel) -> None:
        metrics.reloads.inc()
        serving(loaded)
        if cfg.freeze_gc:  # the old model's cycles can go now; the new model's objects stay out of the scans
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    holder = ModelHolder(spec, source, on_swap)
    state = ServiceState(holder, cfg, metrics, storage, features, api_key or None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = state.holder.load()
        state.ids = PredictionIds(load_key(storage))
        serving(loaded)
        state.predictions = BatchWriter(
            request_log.request_log_path(storage, loaded.name), prediction_table,
            flush_rows=cfg.log_flush_rows, flush_seconds=cfg.log_flush_seconds, max_queue=cfg.log_queue_rows,
            on_written=metrics.log_rows.inc, on_dropped=metrics.log_dropped.inc,
        )  # fmt: skip
        state.feedback = BatchWriter(
            request_log.feedback_log_path(storage, loaded.name), feedback_table,
            flush_rows=cfg.log_flush_rows, flush_seconds=cfg.log_flush_seconds, max_queue=cfg.log_queue_rows,
        )  # fmt: skip
        if reload:
            state.reloader = Reloader(state.holder, cfg.reload_seconds, metrics.reload_errors.inc)
            state.reloader.start()
        if cfg.freeze_gc:
            # Everything loaded so far (keelml, MLflow, the tokenizer, ONNX Runtime: ~300,000 objects)
            # lives as long as the process; a full collection walks all of it (0.2-0.7 s on 2 busy
            # cores), a stall every few thousand requests. Frozen, full collections scan only what
            # requests allocate. (No collection first: start-up cycles are few, kept once.)
            gc.freeze()
        try:
            yield
        finally:
            if cfg.freeze_gc:
                gc.unfreeze()
            if state.reloader is not None:
                state.reloader.stop()
            state.predictions.close()
            state.feedback.close()
            metrics.close()

    app = FastAPI(
        title=f"keelml: {model_name}",
        version="1",
        description=f"Predictions of {spec} (ONNX Runtime), request logging, feedback and metrics.",
        lifespan=lifespan,
    )
    app.state.service = state
    app.add_middleware(TimingMiddleware, metrics=metrics)

    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a hop to a worker
    # thread and back on every request (0.4 ms of the 0.5 ms an in-process request took, and far more
    # on a loaded machine, where each hop waits for the scheduler)
    async def authorized(key: str | None = Depends(_key_header)) -> None:
        check_key(key)

    def check_key(key: str | None) -> None:
        if state.api_key is None:
            return
        # constant-time: the time to reject must not reveal how much of the key was right
        if key is None or not hmac.compare_digest(key.encode("utf-8"), state.api_key.encode("utf-8")):
            raise RequestError(401, API_KEY_HEADER, "a valid API key in the X-API-Key header")

    @app.exception_handler(RequestError)
    async def _bad_request(request: Request, exc: RequestError) -> Response:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return _reply(500, {"error": {"field": "service", "constraint": "no internal error",
                                      "received": type(exc).__name__}})  # fmt: skip

    @app.post("/v1/predict", responses={200: {"model": schemas.PredictResponse}, **schemas.ERRORS},
              summary="Predict one row or a batch of rows")  # fmt: skip
    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        # checked here, not as a dependency: FastAPI's dependency resolution was a fifth of the
        # service's own time per call; the OpenAPI document still declares the key (see below)
        check_key(request.headers.get(API_KEY_HEADER))
        body = await _read_body(request, cfg.max_body_bytes)
        loaded = state.model()  # this request keeps this version to the end, even across a reload
        row_spec = state.row_spec(loaded)
        rows, keys = check_rows(
            loads(body), row_spec, max_rows=cfg.max_batch_rows, max_text=cfg.max_text_chars
        )
        if row_spec.stored and state.features is not None:
            rows = merge_features(rows, keys, row_spec, state.features)
        model_start = time.perf_counter()
        proba = loaded.predict(rows)
        model_s = time.perf_counter() - model_start
        finite = np.isfinite(proba).all(axis=1)
        if not finite.all():  # e.g. 1e300 overflows the float32 graph: the caller's value, not a crash
            bad = int(np.argmin(finite))
            raise RequestError(422, f"rows[{bad}]", "values the model can score (its probabilities were not "
                               "finite; numbers beyond float32 range?)")  # fmt: skip
        classes = loaded.schema.classes
        best = proba.argmax(axis=1).tolist()
        table = proba.tolist()
        now = time.time()
        latency_ms = (time.perf_counter() - start) * 1000.0
        assert state.ids is not None
        issue = state.ids.issue
        out = []
        records = []
        for row, key, probs, b in zip(rows, keys, table, best, strict=True):
            pid = issue(loaded.name, now)
            as_dict = dict(zip(classes, probs, strict=True))
            label, score = classes[b], probs[b]
            out.append({"prediction_id": pid, "label": label, "score": score, "proba": as_dict})
            records.append(Prediction(pid, now, loaded.name, loaded.version, latency_ms, label, score,
                                      {**key, **row}, as_dict))  # fmt: skip
            metrics.predictions.labels(str(loaded.version), label).inc()
            metrics.scores.observe(score)
        assert state.predictions is not None
        state.predictions.add(records)
        metrics.model_latency.observe(model_s)
        metrics.batch_rows.observe(len(rows))
        # Server-Timing lets a client split its latency into model time and service overhead
        timing = f"model;dur={model_s * 1000:.3f}, app;dur={(time.perf_counter() - start) * 1000:.3f}"
        return _reply(200, {"model": loaded.name, "model_version": loaded.version,
                            "variant": loaded.schema.variant, "predictions": out},
                      {"Server-Timing": timing})  # fmt: skip

    @app.post("/v1/feedback", responses={202: {"model": schemas.FeedbackResponse}, **schemas.ERRORS,
                                          404: schemas.UNKNOWN_PREDICTION},
              dependencies=[Depends(authorized)], status_code=202,
              summary="Attach late ground-truth labels to earlier predictions")  # fmt: skip
    async def feedback(request: Request) -> Response:
        body = await _read_body(request, cfg.max_body_bytes)
        loaded = state.model()
        items = _feedback_items(loads(body), cfg.max_batch_rows, loaded.schema.classes)
        assert state.ids is not None and state.feedback is not None
        for i, item in enumerate(items):  # all or nothing: one unknown id and no row is kept
            if not state.ids.issued(loaded.name, item.prediction_id):
                raise RequestError(404, f"feedback[{i}].prediction_id",
                                   f"an id issued by /v1/predict of {loaded.name} (ids are signed; this one "
                                   "was not issued by this service)", item.prediction_id)  # fmt: skip
        now = time.time()
        state.feedback.add([Feedback(i.prediction_id, now, i.label, i.source) for i in items])
        return _reply(202, {"accepted": len(items)})

    @app.get("/v1/model", response_model=schemas.ModelResponse, responses=schemas.ERRORS,
             dependencies=[Depends(authorized)], summary="The model version being served")  # fmt: skip
    async def model() -> Response:
        loaded = state.model()
        row_spec = state.row_spec(loaded)
        return _reply(200, {
            "name": loaded.name, "version": loaded.version, "alias_version": loaded.alias_version,
            "variant": loaded.schema.variant,
            "task": loaded.schema.task, "classes": list(loaded.schema.classes),
            "inputs": {f.name: f.kind for f in loaded.schema.fields},
            "entity_keys": list(row_spec.entity_keys),
            "loaded_at": loaded.loaded_at, "description": dict(loaded.description),
            "deployment": state.deployment,
        })  # fmt: skip

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: a model is loaded and the request log is running",
             responses={503: {"description": "not ready"}})  # fmt: skip
    async def readyz() -> Response:
        current = state.holder.current
        ready = current is not None and state.predictions is not None
        body = {"ready": ready, "model": None if current is None else f"{current.name}@{current.version}",
                "last_reload_error": state.holder.last_error}  # fmt: skip
        return _reply(200 if ready else 503, body)

    @app.get("/metrics", dependencies=[Depends(authorized)], summary="Prometheus metrics",
             response_class=Response)  # fmt: skip
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _document_predict_body(app, state)
    return app


def _feedback_items(payload: Any, max_rows: int, classes: tuple[str, ...]) -> list[schemas.FeedbackItem]:
    from pydantic import ValidationError

    if isinstance(payload, dict) and "feedback" not in payload and "prediction_id" in payload:
        payload = {"feedback": [payload]}  # a single item is accepted as is
    try:
        request = schemas.FeedbackRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        raise RequestError(422, where or "body", first["msg"]) from None
    if len(request.feedback) > max_rows:
        raise RequestError(413, "feedback", f"at most {max_rows} items ([serve] max_batch_rows)")
    for i, item in enumerate(request.feedback):
        if classes and item.label not in classes:
            allowed = ", ".join(classes)
            raise RequestError(
                422, f"feedback[{i}].label", f"one of the model's classes: {allowed}", item.label[:80]
            )
    return request.feedback


def _document_predict_body(app: FastAPI, state: ServiceState) -> None:
    """OpenAPI with the served model's request schema (rebuilt when the version changes)."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        current = state.holder.current
        key = "none" if current is None else f"{current.name}@{current.version}"
        if cache.get("key") != key:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            # /v1/predict checks the key in its handler; declare it as the other endpoints do
            doc["paths"]["/v1/predict"]["post"]["security"] = doc["paths"]["/v1/model"]["get"]["security"]
            if current is not None:
                body = schemas.predict_body_schema(state.row_spec(current), state.config)
                doc["paths"]["/v1/predict"]["post"]["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
                feedback = schemas.FeedbackRequest.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
                defs = feedback.pop("$defs", {})
                defs["FeedbackItem"]["properties"]["label"]["enum"] = list(current.schema.classes)
                doc["components"]["schemas"].update(defs)
                doc["components"]["schemas"]["FeedbackRequest"] = feedback
                doc["paths"]["/v1/feedback"]["post"]["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/FeedbackRequest"}}
                    },
                }
            cache.update(key=key, doc=doc)
        return dict(cache["doc"])

    app.openapi = openapi  # type: ignore[method-assign]
