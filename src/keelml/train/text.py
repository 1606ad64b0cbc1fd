"""Text classification: an offline transformer encoder, mean pooling, a linear head; LoRA / IA3 / full.

The saved model is a folder: ``keel_text.json`` (config, classes), ``head.pt`` and either ``adapter/``
(peft adapter weights only) or ``encoder/`` (full fine-tuning). Loading rebuilds the base model
offline and attaches the adapter; :meth:`TextClassifier.merged` folds a LoRA/IA3 adapter into the
base weights before export.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from keelml.core.progress import Progress
from keelml.core.tracking import RunLogger
from keelml.train.config import TextConfig, is_private
from keelml.train.evaluation import Evaluation, evaluate
from keelml.train.exporting import ExportSource, probability_module
from keelml.train.peft_adapters import base_model_path, load_base, target_modules, wrap
from keelml.train.private import PrivacyReport, PrivateBatches, PrivateTraining, run_private
from keelml.train.pruned import load_encoder
from keelml.train.tabular import SliceLike, labels_of, split_indices, synthetic_rows
from keelml.train.trainer import FitHistory, fit, seed_everything


def _module(encoder: Any, hidden: int, n_classes: int) -> Any:
    import torch
    from torch import nn

    class TextModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = nn.Linear(hidden, n_classes)

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return self.head(pooled)  # type: ignore[no-any-return]  # nn.Module call

    return TextModule()


def _warmup_linear(optimizer: Any, total_steps: int, warmup_fraction: float) -> Any:
    """Linear warm-up then linear decay to 0 (per step): adapters tolerate a higher peak rate with it."""
    import torch

    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class TextClassifier:
    def __init__(self, module: Any, tokenizer: Any, classes: tuple[str, ...], config: TextConfig) -> None:
        self.module = module
        self.tokenizer = tokenizer
        self.classes = classes
        self.config = config

    @property
    def is_adapter(self) -> bool:
        return hasattr(self.module.encoder, "peft_config")

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters."""
        params = list(self.module.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def encode(self, texts: Sequence[str]) -> tuple[Any, Any]:
        batch = self.tokenizer(
            [str(t) for t in texts], padding=True, truncation=True, max_length=self.config.max_length,
            return_tensors="pt",
        )  # fmt: skip
        return batch["input_ids"], batch["attention_mask"]

    def predict_proba(self, rows: Sequence[str] | Any, batch_size: int = 64) -> npt.NDArray[np.float64]:
        """Class probabilities for texts (or a DataFrame / Arrow table: its text column)."""
        import torch

        raw: Any = rows
        frame: Any = raw.to_pandas() if hasattr(raw, "column_names") else raw
        texts: list[str] = (
            [str(t) for t in frame[self.config.text].tolist()] if hasattr(frame, "columns") else list(frame)
        )
        self.module.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                ids, mask = self.encode(texts[i : i + batch_size])
                out.append(torch.softmax(self.module(ids, mask), dim=1).double().numpy())
        return np.vstack(out) if out else np.zeros((0, len(self.classes)))

    def merged(self) -> TextClassifier:
        """A copy whose adapter is merged into the base weights (plain transformers encoder)."""
        import copy

        if not self.is_adapter:
            return self
        module = copy.deepcopy(self.module)
        module.encoder = module.encoder.merge_and_unload()
        return TextClassifier(module, self.tokenizer, self.classes, self.config)

    def export_source(self, example_texts: Sequence[str] = ("an example review", "short")) -> ExportSource:
        """The merged module with a softmax, example inputs, and the tokenizer as ``tokenizer.json``."""
        model = self.merged()
        ids, mask = model.encode(list(example_texts))
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
        return ExportSource(
            task="text", module=probability_module(model.module), example_inputs=(ids, mask),
            input_names=("input_ids", "attention_mask"), dynamic_axes=axes, classes=self.classes,
            fields=((self.config.text, "text"),),
            preprocessing={"kind": "tokenizer", "file": "tokenizer.json",
                           "max_length": self.config.max_length,
                           "pad_id": int(self.tokenizer.pad_token_id or 0),
                           "pad_token": str(self.tokenizer.pad_token)},
            config=self.config.to_json(),
            files={"tokenizer.json": self.tokenizer.backend_tokenizer.to_str().encode("utf-8")},
        )  # fmt: skip

    def save(self, folder: Path) -> Path:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": "keelml.text/1", "config": self.config.to_json(), "classes": list(self.classes)}
        (folder / "keel_text.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        torch.save(self.module.head.state_dict(), folder / "head.pt")
        self.module.encoder.save_pretrained(str(folder / ("adapter" if self.is_adapter else "encoder")))
        return folder

    @classmethod
    def load(cls, folder: Path) -> TextClassifier:
        import torch

        meta = json.loads((folder / "keel_text.json").read_text(encoding="utf-8"))
        config = TextConfig.from_mapping(meta["config"])
        base = base_model_path(config.base)
        encoder, tokenizer = load_base(base)
        if (folder / "adapter").is_dir():
            from peft import PeftModel

            encoder = PeftModel.from_pretrained(encoder, str(folder / "adapter"))
        else:
            encoder = load_encoder(folder / "encoder")
        module = _module(encoder, int(encoder.config.hidden_size), len(meta["classes"]))
        module.head.load_state_dict(torch.load(folder / "head.pt", weights_only=True))
        module.eval()
        return cls(module, tokenizer, tuple(meta["classes"]), config)

    def to_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save(Path(tmp) / "model")
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                for path in sorted(folder.rglob("*")):
                    info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
                    info.mtime = 0  # same model, same bytes
                    if path.is_file():
                        with path.open("rb") as fh:
                            tar.addfile(info, fh)
                    else:
                        tar.addfile(info)
            return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextClassifier:
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
            return cls.load(Path(tmp))


def new_text_model(config: TextConfig, classes: Sequence[str]) -> TextClassifier:
    """A fresh (untrained) classifier: the base encoder wrapped with ``config.peft``, a new head; seeded."""
    seed_everything(config.seed)
    encoder, tokenizer = load_base(base_model_path(config.base))
    targets = [] if config.peft == "full" else target_modules(encoder, config.peft, config.target_modules)
    hidden = int(encoder.config.hidden_size)
    encoder = wrap(encoder, config.peft, targets, rank=config.lora_rank, alpha=config.lora_alpha,
                   dropout=config.lora_dropout)  # fmt: skip
    return TextClassifier(_module(encoder, hidden, len(classes)), tokenizer, tuple(classes), config)


@dataclass(frozen=True, slots=True)
class TextResult:
    model: TextClassifier
    evaluation: Evaluation
    history: FitHistory
    sizes: dict[str, int]
    trainable_parameters: int
    total_parameters: int
    steps: int
    privacy: PrivacyReport | None = None  # set by a DP-SGD run


def train_text(
    table: pa.Table,
    config: TextConfig,
    *,
    label: str,
    slices: Sequence[SliceLike] = (),
    progress: Progress | None = None,
    logger: RunLogger | None = None,
    private: PrivateTraining | None = None,
) -> TextResult:
    """Fine-tune; with ``dp_epsilon`` or ``dp_noise_multiplier`` the adapter and head train with DP-SGD."""
    import torch

    if config.text not in table.column_names:
        raise ColumnNotFoundError(
            f"text column {config.text!r} is not in the data",
            expected=f"one of {', '.join(table.column_names)}",
            received=config.text,
            fix="pass --text COLUMN",
        )
    base_model_path(config.base)  # a missing base model fails here, before any work
    table, y, classes = labels_of(table, config.label or label)
    parts = split_indices(y, config, train_only=synthetic_rows(table))
    if min(len(p) for p in parts.values()) == 0:
        raise InvalidInputError(
            "too few labelled rows to split into train, validation and test",
            received=f"{len(y)} rows",
            fix="add rows, or raise test_fraction / validation_fraction",
        )
    model = new_text_model(config, classes)
    texts = [str(t) for t in table[config.text].to_pylist()]
    y_all = torch.from_numpy(y)

    def encoded(index: Any) -> tuple[Any, ...]:
        ids, mask = model.encode([texts[i] for i in index])
        return ids, mask, y_all[torch.as_tensor(index)]

    train_idx = parts["train"]
    steps = 0

    def batches(generator: Any) -> list[tuple[Any, ...]]:
        nonlocal steps
        order = torch.randperm(len(train_idx), generator=generator).numpy()
        chunks = [
            train_idx[order[i : i + config.batch_size]] for i in range(0, len(order), config.batch_size)
        ]
        steps += len(chunks)
        return [encoded(c) for c in chunks]

    def loss_of(module: Any, batch: tuple[Any, ...]) -> Any:
        return torch.nn.functional.cross_entropy(module(batch[0], batch[1]), batch[2])

    val = [encoded(parts["validation"][i : i + 64]) for i in range(0, len(parts["validation"]), 64)]
    head = list(model.module.head.parameters())
    body = [p for p in model.module.encoder.parameters() if p.requires_grad]
    head_lr = config.head_learning_rate or max(config.rate, 1e-3)
    groups: list[dict[str, Any]] = [{"params": body}, {"params": head, "lr": head_lr}]
    optimizer = torch.optim.AdamW(groups, lr=config.rate)
    per_epoch = -(-len(train_idx) // config.batch_size)
    schedule = _warmup_linear(optimizer, per_epoch * config.epochs, config.warmup_fraction)
    privacy = None
    if is_private(config):
        data = PrivateBatches(
            (torch.as_tensor(train_idx),),
            lambda m, b: m(*model.encode([texts[i] for i in b[0].tolist()])),
            lambda b: y_all[b[0]],
        )
        n_val = max(len(parts["validation"]), 1)

        def val_loss(m: Any) -> float:
            return sum(float(loss_of(m, b)) * len(b[0]) for b in val) / n_val

        privacy, history = run_private(
            model.module, data, val_loss, config, private, progress=progress, logger=logger,
            name=f"private fine-tuning ({config.peft})",
        )  # fmt: skip
        steps = privacy.steps
    else:
        history = fit(
            model.module, batches, loss_of, val, epochs=config.epochs, patience=config.patience,
            optimizer=optimizer, seed=config.seed, progress=progress, logger=logger,
            name=f"fine-tuning ({config.peft})", scheduler=schedule,
        )  # fmt: skip
    test = parts["test"]
    proba = model.predict_proba([texts[i] for i in test])
    test_table = table.take(pa.array(test))
    masks = {
        s.name: np.asarray(s.mask(test_table).to_numpy(zero_copy_only=False), dtype=bool) for s in slices
    }
    trainable_n, total_n = model.parameter_counts()
    sizes = {k: len(v) for k, v in parts.items()}
    return TextResult(
        model, evaluate(y[test], proba, classes, masks), history, sizes, trainable_n, total_n, steps, privacy
    )
