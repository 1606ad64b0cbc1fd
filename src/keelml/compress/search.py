"""``keel compress``: try quantize, prune + quantize and distill + quantize; measure; pick the best in budget.

Every variant is a registered version (pruned / distilled torch models by compress, ONNX variants by
``ws.exports.export``), scored on the parent's test rows; ``ws.exports.bench`` measures latency, size
and cost per 1M predictions on a hardware profile. Each torch model and its exports are benchmarked
interleaved in one run (the export benchmark's unit), the families one after another, all with the
same threads, batch and sequence length. The winner is the fastest variant whose accuracy drop from the
parent is within the budget (and whose p50 meets the latency target, if given); it gets the alias
``compressed`` and the tag ``keel.compressed``. A variant over budget is reported, never chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from keelml.compress.distill import DistillConfig, check_transfer
from keelml.compress.evaluate import SliceLike, evaluate_model
from keelml.compress.pareto import Candidate, choose, pareto_front
from keelml.compress.prune import PruneConfig
from keelml.compress.register import COMPRESSED_ALIAS, mark_compressed
from keelml.compress.report import markdown, rows, write_html
from keelml.core.errors import InvalidInputError, missing_dependency
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import ModelRef
from keelml.core.workspace import Workspace

METHODS = ("quantize", "prune", "distill")


@dataclass(frozen=True, slots=True)
class SearchResult:
    parent: str
    parent_accuracy: float
    accuracy_budget: float
    latency_target_ms: float | None
    hardware: str
    batch_size: int
    candidates: tuple[Candidate, ...]
    front: tuple[str, ...]  # labels of the Pareto-optimal candidates
    winner: Candidate | None
    table: tuple[tuple[str, ...], ...]
    report: Path | None

    def markdown(self) -> str:
        return markdown(self.table)

    def to_json(self) -> dict[str, Any]:
        return {
            "parent": self.parent, "parent_accuracy": self.parent_accuracy,
            "accuracy_budget": self.accuracy_budget, "latency_target_ms": self.latency_target_ms,
            "hardware": self.hardware, "batch_size": self.batch_size,
            "candidates": [c.to_json() for c in self.candidates], "pareto": list(self.front),
            "winner": None if self.winner is None else self.winner.to_json(),
            "alias": COMPRESSED_ALIAS if self.winner is not None else None,
            "report": None if self.report is None else str(self.report),
        }  # fmt: skip


def _check_report(report: Path | None) -> None:
    """Fail before any training when the HTML report cannot be written (plotly absent)."""
    if report is None:
        return
    try:
        import plotly  # noqa: F401
    except ImportError as exc:
        raise missing_dependency("plotly", "export", "the compression report") from exc


def _check_length(source: Any, seq: int) -> None:
    """A text model cannot be benchmarked past its position embeddings: say so before any training."""
    if source.task != "text":
        return
    config = getattr(getattr(source.model.module, "encoder", None), "config", None)
    limit = int(getattr(config, "max_position_embeddings", 0) or 0)
    if limit and seq > limit:
        served = source.model.config.max_length
        raise InvalidInputError(
            f"--seq {seq} is longer than {source.spec} can read ({limit} positions)",
            expected=f"--seq <= {limit}; the model serves texts truncated to {served} tokens",
            received=str(seq),
            fix=f"pass --seq {min(served, limit)}",
        )


def _check(budget: float, latency_target_ms: float | None, methods: Sequence[str]) -> tuple[str, ...]:
    if not 0 <= budget < 1:
        raise InvalidInputError(
            "the accuracy budget is a fraction of accuracy (0.01 = one point)",
            expected="0 <= budget < 1",
            received=str(budget),
            fix="pass e.g. --accuracy-budget 0.01",
        )
    if latency_target_ms is not None and not latency_target_ms > 0:
        raise InvalidInputError(
            "the latency target must be positive",
            received=str(latency_target_ms),
            fix="e.g. --latency-target 5",
        )
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidInputError(
            f"unknown compression method {', '.join(unknown) or '(none given)'}",
            expected=", ".join(METHODS),
            received=", ".join(methods) or "nothing",
            fix="pass e.g. --methods quantize,prune,distill",
        )
    return tuple(dict.fromkeys(methods))


def _spec(ref: Any) -> str:
    return f"{ref.name}@{ref.version}"


def search(
    ws: Workspace,
    compression: Any,
    spec: str,
    *,
    accuracy_budget: float = 0.01,
    latency_target_ms: float | None = None,
    hardware: str | None = None,
    methods: Sequence[str] = METHODS,
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
    """Make, measure and compare the compressed variants of ``spec``; mark the best one within budget."""
    # Every input is checked before the first export or training step: a typo in --hardware must not
    # cost an hour of distillation.
    chosen = _check(accuracy_budget, latency_target_ms, methods)
    exports: Any = ws.exports
    exports.check_bench((batch_size,), seq, rounds)
    profile = str(exports.hardware(hardware).name)
    _check_report(report)
    progress = progress or NoProgress()
    source = compression.source(spec)
    _check_length(source, seq)
    if transfer is not None and "distill" in chosen:
        check_transfer(source, transfer)
    progress.stage(f"evaluating {source.spec}")
    parent = evaluate_model(source.model, source.parts["test"], source.labels("test"), slices)
    quantized = ("int8",) if "quantize" in chosen else ()
    # (label prefix, torch spec, torch accuracy, parameters, export result or None)
    families: list[tuple[str, str, float, int, Any]] = []
    parent_params = sum(int(p.numel()) for p in source.model.module.parameters())
    kw = {"accuracy_budget": accuracy_budget, "slices": slices, "progress": progress}
    top = exports.export(source.spec, ("fp32", *quantized), **kw)
    families.append(("parent", source.spec, parent.accuracy, parent_params, top))
    for method, make in (("prune", compression.prune), ("distill", compression.distill)):
        if method not in chosen:
            continue
        config = prune_config if method == "prune" else distill_config
        extra = {"transfer": transfer} if method == "distill" else {}
        made = make(source, config, slices=slices, progress=progress, **extra)
        result = exports.export(made.spec, quantized, **kw) if quantized else None
        families.append((method, made.spec, made.accuracy.accuracy, made.parameters, result))
    candidates: list[Candidate] = []
    for prefix, torch_spec, accuracy, params, exported in families:
        bench = exports.bench(torch_spec, hardware=hardware, batches=(batch_size,), seq=seq, rounds=rounds,
                              memory=False, progress=progress)  # fmt: skip
        profile = bench.hardware.name
        by_version = {r.version: r for r in bench.rows}
        torch_row = by_version.get(int(torch_spec.rpartition("@")[2]))
        label = "parent" if prefix == "parent" else {"prune": "pruned", "distill": "distilled"}[prefix]
        candidates.append(_candidate(f"{label} (torch fp32)", torch_spec, accuracy, parent.accuracy,
                                     torch_row, params, eligible=prefix != "parent"))  # fmt: skip
        for variant in () if exported is None else exported.variants:
            if variant.ref is None:
                continue
            name = variant.variant if prefix == "parent" else f"{prefix}+{variant.variant}"
            candidates.append(_candidate(
                f"{name} (onnx)", _spec(variant.ref), float(variant.metrics["test_accuracy"]),
                parent.accuracy, by_version.get(variant.ref.version), params,
            ))  # fmt: skip
    front = pareto_front(candidates)
    winner = choose(candidates, budget=accuracy_budget, latency_target_ms=latency_target_ms)
    table = rows(candidates, front, winner, accuracy_budget)
    if report is not None:  # before the alias moves, so a failed write leaves the registry as it was
        budget = f"budget {accuracy_budget * 100:g} pt"
        title = f"Compression of {source.spec}: {budget}, {profile}, batch {batch_size}"
        write_html(report, title, candidates, table, accuracy_budget)
    if winner is not None and winner.spec and mark_winner:
        name, _, version = winner.spec.rpartition("@")
        mark_compressed(ws, ModelRef(name, int(version)), {
            "parent": source.spec, "variant": winner.label, "accuracy_drop": winner.accuracy_drop,
            "accuracy_budget": accuracy_budget, "latency_target_ms": latency_target_ms,
            "p50_ms": winner.p50_ms, "hardware": profile, "batch_size": batch_size,
        })  # fmt: skip
    return SearchResult(
        source.spec, parent.accuracy, accuracy_budget, latency_target_ms, profile, batch_size,
        tuple(candidates), tuple(c.label for c in front), winner, tuple(table), report,
    )  # fmt: skip


def _candidate(
    label: str, spec: str, accuracy: float, parent_accuracy: float, row: Any, params: int, *,
    eligible: bool = True,
) -> Candidate:  # fmt: skip
    return Candidate(
        label, spec, accuracy, parent_accuracy - accuracy,
        None if row is None else float(row.p50_ms), None if row is None else float(row.p90_ms),
        None if row is None else int(row.size_bytes), None if row is None else float(row.cost_per_million),
        params, "" if row is not None else "not benchmarked", eligible,
    )  # fmt: skip
