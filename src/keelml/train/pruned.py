"""Loading encoders whose attention heads / feed-forward width were pruned per layer.

transformers 5 has no per-layer head counts in a config, so a pruned encoder records its shapes as
``keel_structure = {"heads": [...], "intermediate": [...]}`` (one entry per layer) in its config.json;
loading builds the model from the config, shrinks each layer to those shapes and loads the weights.
An encoder without ``keel_structure`` loads exactly as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def shrink_layer(layer: Any, heads: int, intermediate: int) -> None:
    """Resize a BERT-style layer in place to ``heads`` attention heads and ``intermediate`` FFN units."""
    from torch import nn

    attention = layer.attention.self
    inner = heads * attention.attention_head_size
    hidden = attention.query.in_features
    for name in ("query", "key", "value"):
        setattr(attention, name, nn.Linear(hidden, inner))
    attention.num_attention_heads = heads
    attention.all_head_size = inner
    layer.attention.output.dense = nn.Linear(inner, hidden)
    layer.intermediate.dense = nn.Linear(hidden, intermediate)
    layer.output.dense = nn.Linear(intermediate, hidden)


def load_encoder(path: Path) -> Any:
    """A fully fine-tuned (or pruned) encoder saved with ``save_pretrained`` in ``path``, offline."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    structure = getattr(config, "keel_structure", None)
    if not structure:
        return AutoModel.from_pretrained(str(path), local_files_only=True)
    from safetensors.torch import load_file

    encoder = AutoModel.from_config(config)  # type: ignore[no-untyped-call]  # untyped in transformers
    for layer, heads, width in zip(
        encoder.encoder.layer, structure["heads"], structure["intermediate"], strict=True
    ):
        shrink_layer(layer, int(heads), int(width))
    encoder.load_state_dict(load_file(str(path / "model.safetensors")))
    encoder.eval()
    return encoder
