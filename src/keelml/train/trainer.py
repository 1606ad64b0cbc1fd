"""A small, seeded training loop with early stopping on validation loss (torch imported lazily)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keelml.core.progress import NoProgress, Progress, ProgressNote
from keelml.core.tracking import NoRunLogger, RunLogger


@dataclass(frozen=True, slots=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float


@dataclass(frozen=True, slots=True)
class FitHistory:
    epochs: tuple[EpochRecord, ...]
    best_epoch: int
    stopped_early: bool


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(
    module: Any,
    batches: Callable[[Any], list[tuple[Any, ...]]],
    loss_of: Callable[[Any, tuple[Any, ...]], Any],
    val_batches: list[tuple[Any, ...]],
    *,
    epochs: int,
    patience: int,
    optimizer: Any,
    seed: int,
    progress: Progress | None = None,
    logger: RunLogger | None = None,
    name: str = "train",
    scheduler: Any = None,
) -> FitHistory:
    """Train ``module`` in place; its weights end as those of the best validation epoch.

    ``batches(generator)`` returns the shuffled training batches of one epoch; ``loss_of(module,
    batch)`` returns a scalar loss tensor. ``scheduler`` (optional) is stepped after every batch.
    """
    import torch

    progress = progress or NoProgress()
    logger = logger or NoRunLogger()
    generator = torch.Generator().manual_seed(seed)
    best = float("inf")
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    best_epoch, since_best = 0, 0
    records: list[EpochRecord] = []
    progress.stage(name, total=epochs)
    for epoch in range(1, epochs + 1):
        module.train()
        total, count = 0.0, 0
        for batch in batches(generator):
            optimizer.zero_grad()
            loss = loss_of(module, batch)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            size = len(batch[0])
            total += float(loss.detach()) * size
            count += size
        module.eval()
        with torch.no_grad():
            val_total = sum(float(loss_of(module, b)) * len(b[0]) for b in val_batches)
            val_count = sum(len(b[0]) for b in val_batches)
        record = EpochRecord(epoch, total / max(count, 1), val_total / max(val_count, 1))
        records.append(record)
        logger.log_metrics({"train_loss": record.train_loss, "val_loss": record.val_loss}, step=epoch)
        progress.advance(1)
        if isinstance(progress, ProgressNote):
            progress.note(f"epoch {epoch}: loss {record.train_loss:.4f}, val {record.val_loss:.4f}")
        if record.val_loss < best - 1e-6:
            best, best_epoch, since_best = record.val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            since_best += 1
            if since_best >= patience:
                break
    module.load_state_dict(best_state)
    module.eval()
    return FitHistory(tuple(records), best_epoch, stopped_early=len(records) < epochs)
