"""One workspace for all compress tests, with a registered tabular MLP and a registered tiny text model (MLflow is slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.data.slices import Slice
from keelml.pipeline.training import train_and_register
from keelml.train.config import TabularConfig, TextConfig
from tests.train.conftest import loans
from tests.train.test_text import make_tiny_base, reviews

SLICES = [Slice("north", 'region == "north"'), Slice("south", 'region == "south"')]


def tiny_base(folder: Path, layers: int = 2) -> Path:
    """The one-layer tiny BERT of tests/train grown to ``layers`` randomly initialised layers."""
    import torch
    from transformers import BertModel

    base = make_tiny_base(folder)
    config = json.loads((base / "config.json").read_text())
    config["num_hidden_layers"] = layers
    (base / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    from transformers import BertConfig

    BertModel(BertConfig(**{k: v for k, v in config.items() if k != "architectures"})).save_pretrained(
        str(base)
    )
    return base


@pytest.fixture(scope="session")
def compress_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("compress")
    ws = Workspace.init(root / "ws")
    ws.datasets.add("loans", loans(400), label="label", id="id")
    ws.datasets.add("reviews", reviews(160), label="score")
    train_and_register(ws, "loans", name="loan-clf", config=TabularConfig(epochs=20, hidden=(64, 32)),
                       slices=SLICES)  # fmt: skip
    base = tiny_base(root / "tiny-bert")
    config = TextConfig(text="review", base=str(base), peft="lora", epochs=3, batch_size=16, learning_rate=5e-2,
                        max_length=16)  # fmt: skip
    train_and_register(ws, "reviews", name="review-clf", config=config)
    return ws
