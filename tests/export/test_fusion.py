"""Transformer fusion before quantization on a tiny BERT classifier: parity, fused ops, fallbacks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keelml import Workspace
from keelml.export import fusion as fusion_module
from keelml.export.bundle import read_bundle
from keelml.export.fusion import fuse
from keelml.export.onnx_export import OUTPUT, parity_inputs
from keelml.export.quantize import count_ops, dynamic_int8
from keelml.export.runtime import session
from keelml.train.config import TextConfig
from keelml.train.text import TextClassifier
from tests.train.test_text import make_tiny_base


def tiny_classifier(folder: Path) -> TextClassifier:
    """An untrained tiny BERT (2 layers, 2 heads, hidden 16) with a head: parity needs no training."""
    import torch
    from transformers import BertConfig, BertModel

    from keelml.train.peft_adapters import load_base
    from keelml.train.text import _module

    base = make_tiny_base(folder)
    config = BertConfig.from_pretrained(str(base))
    config.num_hidden_layers = 2
    torch.manual_seed(1)
    BertModel(config).save_pretrained(str(base))
    encoder, tokenizer = load_base(base)
    config_ = TextConfig(text="review", base=str(base), peft="full", max_length=16)
    return TextClassifier(_module(encoder, 16, 2), tokenizer, ("great", "other"), config_)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TextClassifier:
    return tiny_classifier(tmp_path_factory.mktemp("tiny-fuse"))


def _probabilities(graph: bytes, source: Any) -> np.ndarray[Any, Any]:
    inputs = parity_inputs(source)
    feeds = {n: x.numpy() for n, x in zip(source.input_names, inputs, strict=True)}
    return np.asarray(session(graph).run([OUTPUT], feeds)[0])


def test_fused_graph_has_one_attention_per_layer_and_matches_torch(tiny: TextClassifier) -> None:
    import torch

    source = tiny.export_source(("great tasty coffee", "stale awful chips and a long tail"))
    fused = fuse(source)
    assert fused.report.applied and fused.graph is not None, fused.report.reason
    ops = count_ops(fused.graph)
    # residual add + LayerNorm stay two ops (SkipLayerNormalization is slower on ONNX Runtime 1.32's CPU)
    assert ops.get("Attention") == 2 and "SkipLayerNormalization" not in ops
    assert ops.get("LayerNormalization") == 4
    assert ops.get("BiasGelu") == 2 and "Softmax" not in {k for k, v in ops.items() if v > 1}
    assert fused.report.fused_ops["Attention"] == 2
    with torch.no_grad():
        expected = source.module(*parity_inputs(source)).numpy()
    got = _probabilities(fused.graph, source)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert fused.report.max_abs_diff is not None and fused.report.max_abs_diff < 1e-5
    # dynamic int8 of the fused graph quantizes each Attention as one QAttention
    quantized = dynamic_int8(fused.graph)
    assert count_ops(quantized).get("QAttention") == 2
    np.testing.assert_allclose(_probabilities(quantized, source), expected, atol=0.05)


def test_skip_layer_norm_fusion_is_an_option(tiny: TextClassifier) -> None:
    source = tiny.export_source(("great tasty coffee", "stale awful chips and a long tail"))
    fused = fuse(source, skip_layer_norm=True)
    assert fused.report.applied and fused.graph is not None, fused.report.reason
    ops = count_ops(fused.graph)
    assert ops.get("SkipLayerNormalization") == 4 and "LayerNormalization" not in ops
    assert fused.report.fused_ops["SkipLayerNormalization"] == 4


def test_fusion_failure_falls_back_to_the_unfused_graph(
    tiny: TextClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(graph: bytes, heads: int, hidden: int, skip: bool) -> tuple[bytes, dict[str, int]]:
        raise RuntimeError("optimizer exploded")

    monkeypatch.setattr(fusion_module, "_optimize", broken)
    result = fuse(tiny.export_source())
    assert not result.report.applied and result.graph is None
    assert "optimizer exploded" in result.report.reason


def test_missing_optimizer_falls_back_with_the_reason(
    tiny: TextClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an onnxruntime build without its transformers package: None in sys.modules makes the import fail
    monkeypatch.setitem(sys.modules, "onnxruntime.transformers.optimizer", None)
    result = fuse(tiny.export_source())
    assert not result.report.applied and result.graph is None
    assert "onnxruntime.transformers is not available" in result.report.reason


def test_fusion_that_fuses_no_attention_is_not_used(
    tiny: TextClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fusion_module, "_optimize", lambda g, h, d, s: (g, {"SkipLayerNormalization": 4}))
    result = fuse(tiny.export_source())
    assert not result.report.applied and "no attention" in result.report.reason


@pytest.mark.slow  # two ONNX exports, fusion and registration of a (tiny) trained model
def test_export_uses_the_fused_graph_for_int8_and_records_it(text_ws_fused: Workspace) -> None:
    result = text_ws_fused.exports.export("reviews-clf@1", variants=("fp32", "int8"), register=True)
    assert result.fusion.applied and result.fusion.fused_ops["Attention"] == 1
    int8 = result.variant("int8")
    info = text_ws_fused.models.show(str(int8.ref))
    assert info.tags["keel.fused"] == "true"
    graph = read_bundle(text_ws_fused.artifacts.read_bytes(int8.artifact))[1]["model.onnx"]
    assert count_ops(graph).get("QAttention") == 1
    plain = text_ws_fused.exports.export("reviews-clf@1", variants=("int8",), register=False, fusion=False)
    assert not plain.fusion.applied and "fusion=False" in plain.fusion.reason
    graph = read_bundle(text_ws_fused.artifacts.read_bytes(plain.variants[0].artifact))[1]["model.onnx"]
    assert "QAttention" not in count_ops(graph)


@pytest.fixture(scope="module")
def text_ws_fused(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    from keelml.pipeline.training import train_and_register
    from tests.train.test_text import reviews

    base = make_tiny_base(tmp_path_factory.mktemp("tiny-bert-fuse"))
    ws = Workspace.init(tmp_path_factory.mktemp("fuse-export") / "ws")
    ws.datasets.add("reviews", reviews(), label="score")
    config = TextConfig(text="review", base=str(base), peft="full", epochs=1, batch_size=16,
                        learning_rate=5e-3, max_length=16)  # fmt: skip
    train_and_register(ws, "reviews", name="reviews-clf", config=config)
    return ws


def test_tabular_models_are_not_fused(exported: Any) -> None:
    _, result = exported
    assert not result.fusion.applied and "tabular" in result.fusion.reason


def _pruned(tiny: TextClassifier, heads_per_layer: list[int]) -> TextClassifier:
    """A copy of ``tiny`` with heads and feed-forward units removed (stand-in importance)."""
    import copy

    import torch

    from keelml.compress.prune import prune_encoder

    model = copy.deepcopy(tiny)
    for p in model.module.parameters():
        p.grad = torch.rand_like(p)
    prune_encoder(model.module.encoder, 0.5)
    if heads_per_layer != model.module.encoder.config.keel_structure["heads"]:
        model.module.encoder.config.keel_structure["heads"] = heads_per_layer
    return model


def test_a_uniformly_pruned_encoder_is_fused_at_its_own_attention_width(tiny: TextClassifier) -> None:
    import torch

    pruned = _pruned(tiny, [1, 1])  # 1 of 2 heads: attention 8 wide over a 16-wide residual stream
    source = pruned.export_source(("great tasty coffee", "stale awful chips and a long tail"))
    fused = fuse(source)
    assert fused.report.applied and fused.graph is not None, fused.report.reason
    assert count_ops(fused.graph).get("Attention") == 2
    with torch.no_grad():
        expected = source.module(*parity_inputs(source)).numpy()
    np.testing.assert_allclose(_probabilities(fused.graph, source), expected, atol=1e-5)
    quantized = dynamic_int8(fused.graph)
    assert count_ops(quantized).get("QAttention") == 2
    np.testing.assert_allclose(_probabilities(quantized, source), expected, atol=0.05)


def test_unequal_heads_per_layer_keep_the_unfused_graph_and_say_why(tiny: TextClassifier) -> None:
    pruned = _pruned(tiny, [1, 2])
    fused = fuse(pruned.export_source(("great tasty coffee",)))
    assert not fused.report.applied and fused.graph is None
    assert "different number of heads per layer" in fused.report.reason
