"""A tiny LoRA text model (one-layer BERT with MiniLM's tokenizer): export, tokenizer parity, 4-bit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

from keelml import ArtifactRef, Workspace
from keelml.core.errors import InvalidInputError
from keelml.export.bundle import read_bundle
from keelml.export.onnx_export import ParityError, check_parity, to_onnx
from keelml.export.quantize import count_ops, int4_weights, static_int8
from keelml.pipeline.training import train_and_register
from keelml.train.config import TextConfig
from keelml.train.exporting import ExportSource
from keelml.train.text import TextClassifier
from tests.train.test_text import make_tiny_base, reviews


@pytest.fixture(scope="module")
def text_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    base = make_tiny_base(tmp_path_factory.mktemp("tiny-bert"))
    ws = Workspace.init(tmp_path_factory.mktemp("text-export") / "ws")
    ws.datasets.add("reviews", reviews(), label="score")
    config = TextConfig(text="review", base=str(base), peft="lora", epochs=3, batch_size=16, learning_rate=5e-2,
                        max_length=16)  # fmt: skip
    train_and_register(ws, "reviews", name="reviews-clf", config=config)
    return ws


TEXTS = [
    "great tasty coffee",
    "stale awful chips and a very long tail that is cut at sixteen tokens",
    "",
    "ok",
]


def test_text_export_matches_the_merged_lora_model_through_tokenizers(text_ws: Workspace) -> None:
    result = text_ws.exports.export("reviews-clf@1", variants=("fp32", "int8"), accuracy_budget=0.05)
    assert result.parity_max_abs_diff < 1e-4
    info, model = text_ws.exports.serving_model("reviews-clf@1")
    assert info.tags["keel.variant"] == "int8" and model.info.task == "text"
    fp32 = text_ws.exports.serving_model("reviews-clf@2")[1]
    parent = text_ws.models.show("reviews-clf@1")
    torch_model = TextClassifier.from_bytes(text_ws.artifacts.read_bytes(ArtifactRef(parent.artifact)))
    # same tokens (truncation to max_length, padding) and same probabilities, without transformers
    np.testing.assert_allclose(fp32.predict_proba(TEXTS), torch_model.predict_proba(TEXTS), atol=1e-5)
    np.testing.assert_allclose(fp32.predict_proba([{"review": t} for t in TEXTS]), fp32.predict_proba(TEXTS))
    manifest, files = read_bundle(text_ws.exports.bundle("reviews-clf@3"))
    assert "tokenizer.json" in files and manifest.preprocessing["max_length"] == 16
    assert [(f.name, f.kind) for f in manifest.fields] == [("review", "text")]
    feeds = fp32.preprocess(TEXTS)
    assert set(feeds) == {"input_ids", "attention_mask"} and feeds["input_ids"].shape == (4, 16)


def test_four_bit_weights_replace_the_encoder_matmuls(text_ws: Workspace) -> None:
    # the registered fp32 graph is fused (Q, K, V inside Attention); int4 starts from the unfused graph
    plain = text_ws.exports.export("reviews-clf@1", variants=("fp32",), register=False, fusion=False)
    graph = read_bundle(text_ws.artifacts.read_bytes(plain.variants[0].artifact))[1]["model.onnx"]
    quantized = int4_weights(graph, block_size=16, min_elements=0)
    assert count_ops(quantized).get("MatMulNBits", 0) >= 4
    result = text_ws.exports.export("reviews-clf@1", variants=("int4",), register=False)
    assert "fp32 one" in result.variants[0].note  # the tiny encoder has no matrix over 4096 weights


def test_bench_text_models_at_a_fixed_sequence_length(text_ws: Workspace) -> None:
    result = text_ws.exports.bench("reviews-clf@1", batches=(2,), seq=12, rounds=3, memory=False)
    assert {r.variant for r in result.rows} >= {"torch-fp32", "fp32", "int8"}
    assert all(r.seq_len == 12 for r in result.rows)
    with pytest.raises(InvalidInputError, match="cannot run a batch of 2 x 100 tokens") as refused:
        text_ws.exports.bench("reviews-clf@1", batches=(2,), seq=100, rounds=3, memory=False)
    assert refused.value.fix.startswith("pass --seq ")  # the tiny BERT has 64 positions


def _source(ws: Workspace) -> ExportSource:
    parent = ws.models.show("reviews-clf@1")
    return TextClassifier.from_bytes(ws.artifacts.read_bytes(ArtifactRef(parent.artifact))).export_source()


def test_parity_refuses_a_graph_fixed_to_the_example_sequence_length(text_ws: Workspace) -> None:
    source = _source(text_ws)
    example = int(source.example_inputs[0].shape[1])
    # exported with a dynamic batch axis only: the graph's sequence axis is the example's length
    batch_only = dataclasses.replace(source, dynamic_axes={n: {0: "batch"} for n in source.input_names})
    fixed = to_onnx(batch_only, exporter="legacy").graph
    with pytest.raises(ParityError, match=rf"sequence length {example // 2} \(the example's is {example}\)"):
        check_parity(fixed, source)
    assert check_parity(to_onnx(source, exporter="legacy").graph, source) < 1e-4


def rounded_readers(graph: bytes) -> list[str]:
    """Nodes other than MatMul/Gemm that read an activation through QuantizeLinear -> DequantizeLinear."""
    nodes = onnx.load_model_from_string(graph).graph.node
    quantized = {n.output[0] for n in nodes if n.op_type == "QuantizeLinear"}
    rounded = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in quantized}
    return [
        f"{n.op_type} {n.name}"
        for n in nodes
        if n.op_type not in ("MatMul", "Gemm", "QuantizeLinear") and rounded & set(n.input)
    ]


def assert_only_matmul_inputs_are_int8(graph: bytes) -> None:
    nodes = onnx.load_model_from_string(graph).graph.node
    dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    matmuls = [n for n in nodes if n.op_type == "MatMul"]
    assert len(matmuls) >= 6 and all(dequantized & set(n.input) for n in matmuls)
    ops = count_ops(graph)
    assert ops.get("QuantizeLinear", 0) >= len(matmuls) // 2  # activations, not only weights, are int8
    assert {"LayerNormalization", "Softmax", "Add"} <= set(ops) and ({"Gelu", "Erf"} & set(ops))
    assert rounded_readers(graph) == []  # LayerNorm, GELU, Softmax and residual Adds read float


def test_static_int8_quantizes_matmul_inputs_and_keeps_norms_gelu_softmax_and_residuals_float(
    text_ws: Workspace,
) -> None:
    result = text_ws.exports.export("reviews-clf@1", variants=("fp32", "int8-static"), register=False,
                                    fusion=False)  # fmt: skip
    fp32, static = result.variants
    assert static.metrics["test_accuracy"] >= fp32.metrics["test_accuracy"] - 0.05
    assert_only_matmul_inputs_are_int8(
        read_bundle(text_ws.artifacts.read_bytes(static.artifact))[1]["model.onnx"]
    )
    # the legacy exporter writes GELU as an Erf subgraph: its Div, Erf, Add and Mul stay float too
    source = _source(text_ws)
    feeds = [{n: x.numpy() for n, x in zip(source.input_names, source.example_inputs, strict=True)}]
    legacy = static_int8(to_onnx(source, exporter="legacy").graph, feeds)
    assert count_ops(legacy).get("Erf") == 1
    assert_only_matmul_inputs_are_int8(legacy)


__all__ = ["Path"]
