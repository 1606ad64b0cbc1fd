"""``ws.compress``: distil, prune, and search compressed variants of a registered model.

Each compressed model is registered as a new version of the parent's model (see
:mod:`keelml.compress.register`); :meth:`Compression.run` also makes quantized ONNX variants through
``ws.exports`` and marks the best one within the accuracy budget (see :mod:`keelml.compress.search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from keelml.compress.distill import DistillConfig, distill
from keelml.compress.evaluate import Accuracy, SliceLike, evaluate_model
from keelml.compress.prune import PruneConfig, prune
from keelml.compress.register import register_variant
from keelml.compress.source import Source, load_source
from keelml.core.progress import Progress
from keelml.core.workspace import Workspace

if TYPE_CHECKING:
    from keelml.compress.search import SearchResult


@dataclass(frozen=True, slots=True)
class Compressed:
    """A compressed model, how it was made, its test accuracy, and its registered version (if any)."""

    parent: str
    variant: str
    description: str
    model: Any
    parameters: int
    parent_parameters: int
    accuracy: Accuracy
    parent_accuracy: Accuracy
    registered: Any  # ModelVersionInfo or None
    validation_accuracy: float | None = None  # of the kept (best) epoch: compare settings on this, not test
    best_epoch: int | None = None

    @property
    def spec(self) -> str | None:
        return None if self.registered is None else f"{self.registered.name}@{self.registered.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "parent": self.parent, "variant": self.variant, "description": self.description,
            "parameters": self.parameters, "parent_parameters": self.parent_parameters,
            "metrics": self.accuracy.metrics(), "parent_metrics": self.parent_accuracy.metrics(),
            "registered": self.spec, "validation_accuracy": self.validation_accuracy,
            "best_epoch": self.best_epoch,
        }  # fmt: skip


class Compression:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def source(self, spec: str) -> Source:
        return load_source(self._ws, spec)

    def _finish(
        self, source: Source, model: Any, variant: str, description: str, counts: tuple[int, int],
        params: dict[str, Any], slices: Sequence[SliceLike], register: bool, fitted: tuple[float, int | None],
    ) -> Compressed:  # fmt: skip
        y = source.labels("test")
        accuracy = evaluate_model(model, source.parts["test"], y, slices)
        parent = evaluate_model(source.model, source.parts["test"], y, slices)
        registered = None
        if register:
            metrics = {**accuracy.metrics(), "parameters": float(counts[0]),
                       "parent_test_accuracy": parent.accuracy, "validation_accuracy": fitted[0]}  # fmt: skip
            registered = register_variant(
                self._ws, source, model, variant=variant, description=description, metrics=metrics,
                params=params,
            )  # fmt: skip
        return Compressed(source.spec, variant, description, model, counts[0], counts[1], accuracy, parent,
                          registered, fitted[0], fitted[1])  # fmt: skip

    def distill(
        self,
        spec: str | Source,
        config: DistillConfig | None = None,
        *,
        transfer: pa.Table | None = None,
        slices: Sequence[SliceLike] = (),
        register: bool = True,
        progress: Progress | None = None,
    ) -> Compressed:
        """Distil a registered teacher into a smaller student (text: first k layers; tabular: MLP)."""
        source = spec if isinstance(spec, Source) else self.source(spec)
        config = config or DistillConfig()
        student = distill(source, config, transfer=transfer, progress=progress)
        params = {**_flat(config), "transfer_rows": 0 if transfer is None else transfer.num_rows}
        counts = (student.parameters, student.teacher_parameters)
        fitted = (student.validation_accuracy, student.best_epoch)
        return self._finish(
            source, student.model, "distilled", student.description, counts, params, slices, register, fitted
        )

    def prune(
        self,
        spec: str | Source,
        config: PruneConfig | None = None,
        *,
        slices: Sequence[SliceLike] = (),
        register: bool = True,
        progress: Progress | None = None,
    ) -> Compressed:
        """Structured pruning (heads + feed-forward units / MLP neurons) with recovery fine-tuning."""
        source = spec if isinstance(spec, Source) else self.source(spec)
        config = config or PruneConfig()
        pruned = prune(source, config, progress=progress)
        counts = (pruned.parameters, pruned.original_parameters)
        fitted = (pruned.validation_accuracy, None)  # prune() does not report its best epoch
        params = _flat(config)
        return self._finish(
            source, pruned.model, "pruned", pruned.description, counts, params, slices, register, fitted
        )

    def run(
        self,
        spec: str,
        *,
        accuracy_budget: float = 0.01,
        latency_target_ms: float | None = None,
        hardware: str | None = None,
        methods: Sequence[str] = ("quantize", "prune", "distill"),
        distill_config: DistillConfig | None = None,
        prune_config: PruneConfig | None = None,
        transfer: pa.Table | None = None,
        slices: Sequence[SliceLike] = (),
        batch_size: int = 1,
        seq: int = 128,
        rounds: int = 20,
        report: Path | None = None,
        mark_winner: bool = True,
        progress: Progress | None = None,
    ) -> SearchResult:
        """Make quantize / prune+quantize / distill+quantize variants, measure them, mark the best in budget.

        See :mod:`keelml.compress.search`; the winner gets the alias ``compressed``. ``transfer``: extra
        unlabeled rows for distillation (soft targets only), as in :meth:`distill`.
        """
        from keelml.compress.search import search

        return search(
            self._ws, self, spec, accuracy_budget=accuracy_budget, latency_target_ms=latency_target_ms,
            hardware=hardware, methods=methods, distill_config=distill_config, prune_config=prune_config,
            transfer=transfer, slices=slices, batch_size=batch_size, seq=seq, rounds=rounds, report=report,
            mark_winner=mark_winner, progress=progress,
        )  # fmt: skip


def _flat(config: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in asdict(config).items():
        if isinstance(value, dict):
            out.update(value)
        else:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out
