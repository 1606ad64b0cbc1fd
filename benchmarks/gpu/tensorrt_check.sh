#!/usr/bin/env bash
# TensorRT check for keelml's export path, on a machine with an NVIDIA GPU.
#
# Self-contained: makes a fresh venv, installs torch 2.13.0 (CPU wheel: only the export needs torch),
# onnx, onnxscript, onnxruntime-gpu (TensorRT + CUDA execution providers) and tensorrt, installs this repo,
# then exports a tiny MiniLM-shaped classifier and benchmarks it on CPU, CUDA and TensorRT (fp16),
# writing results to $OUT (default ./tensorrt-out): tensorrt.json and the log.
#
# Usage (from the repository root): OUT=/tmp/trt bash benchmarks/gpu/tensorrt_check.sh
set -euo pipefail
OUT="${OUT:-$PWD/tensorrt-out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/tensorrt_check.log") 2>&1
nvidia-smi || { echo "no NVIDIA GPU visible (nvidia-smi failed): TensorRT cannot run here"; exit 2; }
VENV="${VENV:-/tmp/keel-trt-venv}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
"$VENV/bin/pip" install -q onnx onnxscript onnxruntime-gpu tensorrt transformers tokenizers numpy pyarrow
"$VENV/bin/pip" install -q -e .  # keelml with its base dependencies (import keelml loads every capability)
OUT="$OUT" "$VENV/bin/python" - <<'PY'
import json, os, time
import numpy as np
import onnxruntime as ort
import torch
from transformers import BertConfig, BertModel

from keelml.export.inputs import make_inputs
from keelml.export.onnx_export import to_onnx
from keelml.export.runtime import session
from keelml.export.targets import tensorrt_session, tensorrt_unavailable_reason
from keelml.train.exporting import ExportSource, probability_module

print("providers:", ort.get_available_providers(), "| tensorrt unavailable reason:", tensorrt_unavailable_reason())
torch.manual_seed(0)
config = BertConfig(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536)
encoder = BertModel(config).eval()

class Clf(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.head = encoder, torch.nn.Linear(384, 2)
    def forward(self, ids, mask):
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        w = mask.unsqueeze(-1).to(states.dtype)
        return self.head((states * w).sum(1) / w.sum(1).clamp(min=1.0))

ids = torch.randint(1000, 5000, (2, 16)); mask = torch.ones_like(ids)
axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
source = ExportSource("text", probability_module(Clf()), (ids, mask), ("input_ids", "attention_mask"), axes,
                      ("a", "b"), (("review", "text"),), {}, {})
graph = to_onnx(source)
info = {"task": "text", "input_names": ["input_ids", "attention_mask"]}
results = {"exporter": graph.exporter, "opset": graph.opset, "providers": ort.get_available_providers(), "rows": []}
runners = {"cpu": session(graph.graph, threads=os.cpu_count() or 1)}
if "CUDAExecutionProvider" in ort.get_available_providers():
    runners["cuda"] = ort.InferenceSession(graph.graph, providers=["CUDAExecutionProvider"])
runners["tensorrt-fp16"] = tensorrt_session(graph.graph, fp16=True, cache_dir=os.environ["OUT"])
for batch in (1, 32):
    feeds = make_inputs(info, batch, 128)
    reference = runners["cpu"].run(None, feeds)[0]
    for name, sess in runners.items():
        for _ in range(5):
            out = sess.run(None, feeds)[0]
        times = []
        for _ in range(50):
            start = time.perf_counter(); sess.run(None, feeds); times.append((time.perf_counter() - start) * 1000)
        row = {"runtime": name, "batch": batch, "seq": 128, "p50_ms": float(np.median(times)),
               "p99_ms": float(np.percentile(times, 99)), "max_abs_diff_vs_cpu": float(np.abs(out - reference).max())}
        print(row); results["rows"].append(row)
with open(os.path.join(os.environ["OUT"], "tensorrt.json"), "w") as fh:
    json.dump(results, fh, indent=2)
PY
echo "results in $OUT"
