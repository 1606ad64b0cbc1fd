"""``ws.exports``: export registered models to serving bundles, pick the one to serve, benchmark them.

Each exported or quantized variant becomes a new version of the same registered model (tags
``keel.format``, ``keel.variant``, ``keel.parent``) with a lineage edge from its parent and its accuracy
on the parent's test split (and slices) as metrics. Other capabilities are reached through workspace
accessors at run time: ``ws.models`` (registry), ``ws.training`` (test split), ``ws.artifacts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from keelml.core.errors import InvalidInputError, NotFoundError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import ArtifactRef, DatasetRef, ModelRef
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.export.bundle import VARIANTS
from keelml.export.evaluation import SliceLike
from keelml.export.fusion import FusionReport

# Models registered before the registry stored ``keel.loader``: the loader by task, as a string.
DEFAULT_LOADERS = {
    "tabular": "keelml.train.tabular:TabularClassifier.from_bytes",
    "text": "keelml.train.text:TextClassifier.from_bytes",
}
RUNTIME_LOADER = "keelml.export.runtime:load_model"
DEFAULT_VARIANTS = ("fp32", "int8")


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One exported variant: its registered version (None if not registered) and how it scored."""

    variant: str
    ref: ModelRef | None
    artifact: ArtifactRef
    size_bytes: int
    metrics: Mapping[str, float] = field(hash=False)
    accuracy_drop: float
    within_budget: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class ExportResult:
    parent: ModelRef
    exporter: str  # dynamo or legacy
    fallback_reason: str | None
    opset: int
    parity_max_abs_diff: float
    parent_metrics: Mapping[str, float] = field(hash=False)
    variants: tuple[VariantResult, ...]
    accuracy_budget: float
    winner: str | None  # smallest variant within the accuracy budget; never one that misses it
    fusion: FusionReport = field(default_factory=lambda: FusionReport(False, "not requested"))

    def variant(self, name: str) -> VariantResult:
        for v in self.variants:
            if v.variant == name:
                return v
        raise NotFoundError(
            f"no {name} variant in this export", received=", ".join(v.variant for v in self.variants)
        )


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise InvalidInputError(
            f"unknown export variant {', '.join(unknown) or '(none given)'}",
            expected=", ".join(VARIANTS),
            received=", ".join(variants) or "nothing",
            fix="pass e.g. --variant fp32 --variant int8",
        )
    return tuple(dict.fromkeys(variants))


def requirements(task: str, variant: str) -> list[str]:
    """Pinned pip requirements of a serving bundle (never inferred)."""
    dists = ["keelml", "numpy", "pyarrow"]
    dists += (
        ["openvino"] if variant == "openvino" else ["coremltools"] if variant == "coreml" else ["onnxruntime"]
    )
    dists += ["tokenizers"] if task == "text" else []
    return [f"{d}=={metadata.version(d).split('+')[0]}" for d in dists]


class Exports:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    # -- export --------------------------------------------------------------------------------

    def export(
        self,
        spec: str,
        variants: Sequence[str] = DEFAULT_VARIANTS,
        *,
        calibration: Any = None,
        accuracy_budget: float = 0.005,
        slices: Sequence[SliceLike] = (),
        exporter: str = "auto",
        register: bool = True,
        fusion: bool = True,
        progress: Progress | None = None,
    ) -> ExportResult:
        """Export ``spec`` (a torch model version) to ONNX and the ``variants``; register each.

        ``fusion``: for BERT-like text models, fp32, int8 and fp16 are made from the graph fused by ONNX
        Runtime's transformer optimizer (see :mod:`keelml.export.fusion`); ``result.fusion`` says
        whether it applied, the fused operators, or why the unfused graph was used.
        """
        from keelml.export.flow import run_export

        return run_export(
            self._ws, spec, check_variants(variants), calibration=calibration,
            accuracy_budget=accuracy_budget,
            slices=slices, exporter=exporter, register=register, progress=progress or NoProgress(),
            fusion=fusion,
        )  # fmt: skip

    # -- serving --------------------------------------------------------------------------------

    def children(self, spec: str) -> list[Any]:
        """Registered exported versions whose parent is ``spec`` (oldest first)."""
        models: Any = self._ws.models
        info = models.show(spec)
        parent = f"{info.name}@{info.version}"
        return [
            v
            for v in models.versions(info.name)
            if v.tags.get("keel.parent") == parent and "keel.format" in v.tags
        ]

    def serving_model(self, spec: str, *, threads: int = 1, spinning: bool = True) -> tuple[Any, Any]:
        """(ModelVersionInfo, runtime model) to serve for ``spec``; ``threads`` and ``spinning`` as in
        :func:`keelml.export.runtime.session`.

        An exported version is served as is; for a torch version, its newest int8 child within the
        accuracy budget, else its newest fp32 child; without either, a clear error.
        """
        from keelml.export.runtime import load_model

        models: Any = self._ws.models
        info = models.show(spec)
        # an exported version is served as is; load_model says plainly that Core ML runs only on macOS
        chosen = info if info.tags.get("keel.format") in ("onnx", "openvino", "coreml") else None
        if chosen is None:
            kids = self.children(spec)
            for variant in ("int8", "fp32"):
                found = [
                    k for k in kids
                    if k.tags.get("keel.variant") == variant
                    and k.tags.get("keel.within_budget", "true") == "true"
                ]  # fmt: skip
                if found:
                    chosen = found[-1]
                    break
        if chosen is None:
            raise NotFoundError(
                f"{info.name}@{info.version} has no exported version to serve",
                expected="an ONNX export (fp32 or int8) of this version",
                received=f"a {info.tags.get('keel.task', 'torch')} model without exports",
                fix=f"run `keel export {info.name}@{info.version}` first",
            )
        data = self._ws.artifacts.read_bytes(ArtifactRef(chosen.artifact))
        return chosen, load_model(data, threads=threads, spinning=spinning)

    def bundle(self, spec: str) -> bytes:
        """The bundle bytes of an exported version."""
        models: Any = self._ws.models
        info = models.show(spec)
        if "keel.format" not in info.tags:
            raise InvalidInputError(
                f"{info.name}@{info.version} is a torch model, not an export",
                expected="an exported version (tag keel.format)",
                received=str(info.tags.get("keel.task")),
                fix=f"run `keel export {info.name}@{info.version}`",
            )
        return self._ws.artifacts.read_bytes(ArtifactRef(info.artifact))

    # -- benchmarks -----------------------------------------------------------------------------

    def hardware(self, name: str | None = None) -> Any:
        """The hardware profile ``name`` of keel.toml (default ``cpu-2core``); NotFoundError if unknown."""
        from keelml.export.hardware import profile

        return profile(self._ws.config.model_extra, name)

    def check_bench(self, batches: Sequence[int], seq: int, rounds: int) -> None:
        """Raise InvalidInputError for settings :meth:`bench` would refuse; cheap, for early checks."""
        from keelml.export.bench import check_settings

        check_settings(batches, seq, rounds)

    def bench(self, spec: str, **kw: Any) -> Any:
        """Benchmark ``spec`` and its variants, interleaved (:func:`keelml.export.bench.run_bench`)."""
        from keelml.export.bench import run_bench

        return run_bench(self._ws, spec, **kw)

    def latest_latency_ms(
        self, spec: str, *, quantile: str = "p99", hardware: str | None = None
    ) -> float | None:
        """The latest benchmarked latency (``p50``, ``p90``, ``p95`` or ``p99``, ms) of a version, or None."""
        from keelml.export.results import latest_latency

        models: Any = self._ws.models
        info = models.show(spec)
        return latest_latency(self._ws.catalog, ModelRef(info.name, info.version), quantile, hardware)


def dataset_ref(tags: Mapping[str, str]) -> DatasetRef:
    name, _, version = str(tags["keel.dataset"]).partition("@")
    return DatasetRef(name, int(version), str(tags.get("keel.dataset_digest", "")))


@workspace_accessor("exports")
def _exports(ws: Workspace) -> Exports:
    return Exports(ws)
