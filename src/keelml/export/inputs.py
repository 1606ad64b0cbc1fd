"""Benchmark inputs of a fixed shape (batch x sequence), and a runner for the torch parent."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

CLS, SEP, LOW, HIGH = 101, 102, 1000, 5000  # BERT-family special ids; ordinary word pieces in between


def make_inputs(info: Mapping[str, Any], batch: int, seq: int, seed: int = 0) -> dict[str, npt.NDArray[Any]]:
    """Inputs for a bundle manifest (``BundleInfo.to_json()``): ``seq`` tokens per text, or feature rows."""
    rng = np.random.default_rng(seed)
    names = list(info["input_names"])
    if info["task"] == "text":
        ids = rng.integers(LOW, HIGH, size=(batch, seq), dtype=np.int64)
        ids[:, 0], ids[:, -1] = CLS, SEP
        return {names[0]: ids, names[1]: np.ones((batch, seq), dtype=np.int64)}
    pre = info["preprocessing"]["preprocessor"]
    width = len(pre["numeric"]) + sum(len(cats) + 1 for _, cats in pre["categorical"])
    return {names[0]: rng.normal(size=(batch, width)).astype(np.float32)}


def torch_runner(
    loader: str, data: bytes, *, threads: int
) -> Callable[[Mapping[str, npt.NDArray[Any]]], Any]:
    """Eager fp32 torch inference of a trained model (the baseline), with ``threads`` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    module_name, _, attr = loader.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    source = target(data).export_source()
    module = source.module.eval()
    names = list(source.input_names)

    def run(feeds: Mapping[str, npt.NDArray[Any]]) -> Any:
        with torch.inference_mode():
            return module(*(torch.from_numpy(feeds[n]) for n in names))

    return run


def torch_manifest(source: Any) -> dict[str, Any]:
    """The bundle-manifest fields :func:`make_inputs` needs, from an export source."""
    return {
        "task": source.task,
        "input_names": list(source.input_names),
        "preprocessing": dict(source.preprocessing),
    }
