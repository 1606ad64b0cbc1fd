"""A tiny LoRA text model (one-layer BERT with MiniLM's tokenizer): export, tokenizer parity, 4-bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keelml import ArtifactRef, Workspace
from keelml.export.bundle import read_bundle
from keelml.export.quantize import count_ops, int4_weights
from keelml.pipeline.training import train_and_register
from keelml.train.config import TextConfig
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


__all__ = ["Path"]
