"""The baseline of bench_serve.py: a plain FastAPI + PyTorch fp32 server for the same model.

It serves the registered torch model (adapter merged into the encoder, eval mode, inference_mode,
``torch.set_num_threads(--threads)``) with the same request body as ``keel serve``
(``{"row": {"review": "..."}}``) and no logging, metrics, auth or validation beyond pydantic.

    python benchmarks/serve_baseline.py --workspace WS --spec reviews-clf@production --port 8001 --threads 2
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    row: dict[str, str]


def build(workspace: str, spec: str, threads: int) -> FastAPI:
    import torch

    import keelml
    from keelml.core.refs import ArtifactRef
    from keelml.train.text import TextClassifier

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    ws = keelml.Workspace.open(workspace)
    info = ws.models.show(spec)
    model = TextClassifier.from_bytes(ws.artifacts.read_bytes(ArtifactRef(info.artifact))).merged()
    model.module.eval()
    field = model.config.text
    app = FastAPI(title="baseline: FastAPI + PyTorch fp32")

    @app.post("/v1/predict")
    async def predict(body: Body) -> dict[str, Any]:
        with torch.inference_mode():
            ids, mask = model.encode([body.row[field]])
            proba = torch.softmax(model.module(ids, mask), dim=1)[0].tolist()
        best = max(range(len(proba)), key=proba.__getitem__)
        return {
            "label": model.classes[best],
            "score": proba[best],
            "proba": dict(zip(model.classes, proba, strict=True)),
        }

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    app = build(args.workspace, args.spec, args.threads)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
