#!/usr/bin/env bash
# What a lent GPU machine offers keelml's GPU export targets (TensorRT), without network access.
# Prints the GPU, the onnxruntime build and its execution providers, whether the tensorrt package or
# TensorRT's libraries (libnvinfer) exist, and keelml's own answer (tensorrt_unavailable_reason) run
# from this checkout's src/ with only onnxruntime needed. Writes $OUT/gpu_probe.txt when OUT is set.
set -uo pipefail
exec > >(tee "${OUT:-/tmp}/gpu_probe.txt") 2>&1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: no GPU"
python3 --version
python3 -m pip list 2>/dev/null | grep -i -E "^(onnx|onnxruntime|onnxruntime-gpu|tensorrt|torch-tensorrt|torch) " \
    || echo "pip list: none of onnx / onnxruntime(-gpu) / tensorrt / torch"
python3 - <<'PY'
import importlib.util
import onnxruntime as ort
print("onnxruntime", ort.__version__, "device", ort.get_device(), "providers", ort.get_available_providers())
for name in ("tensorrt", "torch_tensorrt"):
    print(name, "importable" if importlib.util.find_spec(name) else "not installed")
PY
echo "libnvinfer: $(ldconfig -p | grep -c libnvinfer) entries in the linker cache; files: $(find / -xdev -name 'libnvinfer*' 2>/dev/null | head -3 | tr '\n' ' ')"
# keelml's verdict, importing only the export targets module (the image lacks keelml's other dependencies)
python3 - <<'PY'
import sys, types
for name in ("keelml", "keelml.export"):  # bare packages: skip __init__ (it loads every capability)
    package = types.ModuleType(name); package.__path__ = ["src/" + name.replace(".", "/")]
    sys.modules[name] = package
try:
    from keelml.export.targets import tensorrt_unavailable_reason
    print("keelml tensorrt_unavailable_reason():", tensorrt_unavailable_reason())
except Exception as exc:  # a dependency of keelml.core that the image lacks
    print("keelml targets module could not be imported here:", type(exc).__name__, exc)
PY
