from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml.core.errors import ConfigError, InvalidInputError
from keelml.data.slices import Slice
from keelml.train.config import DEFAULT_LEARNING_RATE, TextConfig
from keelml.train.peft_adapters import BaseModelUnavailableError, base_model_path
from keelml.train.text import TextClassifier, train_text


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny-bert"))


def make_tiny_base(folder: Path) -> Path:
    """A randomly initialised one-layer BERT with MiniLM's tokenizer, saved as a local base model."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config).save_pretrained(str(folder))
    minilm = base_model_path("minilm")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm / name, folder / name)
    return folder


def reviews(n: int = 120) -> pa.Table:
    good = ["great tasty coffee", "lovely fresh snack", "great value, tasty", "fresh and lovely"]
    bad = ["stale awful chips", "awful bitter taste", "stale, broken box", "bitter and awful"]
    rows = [(good[i % 4], "great") if i % 2 else (bad[i % 4], "other") for i in range(n)]
    return pa.table({"review": [r for r, _ in rows], "score": [s for _, s in rows]})


def config(base: Path, method: str, **kw: object) -> TextConfig:
    return TextConfig(text="review", base=str(base), peft=method, epochs=3, batch_size=16, learning_rate=5e-2,
                      max_length=16, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("method", ["lora", "ia3", "full"])
def test_fine_tuning_learns_and_reloads_with_the_head(tiny_base: Path, method: str) -> None:
    result = train_text(
        reviews(),
        config(tiny_base, method),
        label="score",
        slices=[Slice("short", "text_length(review) < 18")],
    )
    assert result.evaluation.overall.accuracy >= 0.9
    assert "short" in result.evaluation.slices
    share = result.trainable_parameters / result.total_parameters
    assert (share == 1.0) if method == "full" else (share < 0.05)
    texts = ["great tasty coffee", "stale awful chips"]
    before = result.model.predict_proba(texts)
    loaded = TextClassifier.from_bytes(result.model.to_bytes())
    np.testing.assert_allclose(loaded.predict_proba(texts), before, atol=1e-5)
    assert loaded.is_adapter == (method != "full")
    merged = loaded.merged()
    assert not merged.is_adapter
    np.testing.assert_allclose(merged.predict_proba(texts), before, atol=1e-4)


def test_base_model_not_available_offline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BaseModelUnavailableError, match="not available offline") as caught:
        base_model_path("sentence-transformers/all-mpnet-base-v2")
    assert "never downloads" in (caught.value.fix or "")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BaseModelUnavailableError, match="cannot load the base model"):
        train_text(reviews(), config(tmp_path, "lora"), label="score")


def test_unknown_target_modules_are_refused_with_the_known_names(tiny_base: Path) -> None:
    with pytest.raises(ConfigError, match="attention_proj") as caught:
        train_text(reviews(), config(tiny_base, "lora", target_modules=("attention_proj",)), label="score")
    assert "query" in (caught.value.expected or "")


def test_one_class_and_bad_configs(tiny_base: Path) -> None:
    one = pa.table({"review": ["a", "b", "c"], "score": ["great"] * 3})
    with pytest.raises(InvalidInputError, match="1 class"):
        train_text(one, config(tiny_base, "lora"), label="score")
    with pytest.raises(InvalidInputError, match="unknown fine-tuning method"):
        TextConfig(peft="prefix")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown keys: rank"):
        TextConfig.from_mapping({"rank": 4})


@pytest.mark.slow
def test_minilm_lora_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real bundled MiniLM, fully offline, two short epochs on a tiny set."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = TextConfig(text="review", epochs=2, batch_size=16, learning_rate=2e-3, max_length=16)
    result = train_text(reviews(60), cfg, label="score")
    assert result.trainable_parameters / result.total_parameters < 0.01
    assert result.evaluation.overall.accuracy >= 0.75


def test_each_method_gets_its_own_default_learning_rate() -> None:
    """Full fine-tuning at an adapter's rate (or the reverse) diverges or does not learn: the default
    follows the method, an explicit rate wins, and the resolved rate is what the config records."""
    rates = {m: TextConfig(peft=m).rate for m in ("lora", "ia3", "full")}
    assert rates == DEFAULT_LEARNING_RATE
    assert rates["full"] < 1e-3 < rates["lora"] <= rates["ia3"]
    assert TextConfig(peft="full", learning_rate=1e-4).learning_rate == 1e-4
    stored = TextConfig(peft="ia3").to_json()
    assert stored["learning_rate"] == DEFAULT_LEARNING_RATE["ia3"]
    assert TextConfig.from_mapping(stored) == TextConfig(peft="ia3")
    with pytest.raises(InvalidInputError, match="learning_rate must be > 0"):
        TextConfig(peft="full", learning_rate=0.0)
