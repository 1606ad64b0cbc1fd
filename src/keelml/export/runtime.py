"""Serving runtime for exported bundles: ONNX Runtime, OpenVINO or Core ML, numpy/tokenizers preprocessing.

Importing or using this module never imports torch, transformers or pandas, so a serving process
stays small. ``OnnxModel.from_bytes(bundle)`` -> ``predict_proba(rows)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError, missing_dependency
from keelml.export.bundle import BundleInfo, read_bundle
from keelml.export.denormals import flushed, preserved
from keelml.export.features import Rows, TextEncoder, columns_of, tabular_features

if TYPE_CHECKING:  # imported when a Core ML bundle is loaded: coreml_runtime imports this module
    from keelml.export.coreml_runtime import CoreMlModel


class Preprocess:
    """Rows -> the graph's named input arrays, from a bundle's manifest and files."""

    def __init__(self, info: BundleInfo, files: Mapping[str, bytes]) -> None:
        self.info = info
        self.field_names = tuple(f.name for f in info.fields)
        spec = info.preprocessing
        self.text: TextEncoder | None = None
        if spec.get("kind") == "tokenizer":
            name = str(spec.get("file", "tokenizer.json"))
            if name not in files:
                raise InvalidInputError(
                    "the bundle lacks its tokenizer", expected=name, received=", ".join(sorted(files)),
                    fix="re-export the model (`keel export MODEL`)",
                )  # fmt: skip
            self.text = TextEncoder(files[name], spec)

    def __call__(self, rows: Rows) -> dict[str, npt.NDArray[Any]]:
        if self.text is not None and isinstance(rows, Sequence) and all(isinstance(r, str) for r in rows):
            rows = [{self.field_names[0]: r} for r in rows]  # plain texts are accepted for text models
        columns = columns_of(rows, self.field_names)
        if self.text is not None:
            return self.text.encode(columns[self.field_names[0]])
        return {self.info.input_names[0]: tabular_features(self.info.preprocessing["preprocessor"], columns)}


class RowPredictor(ABC):
    """``classes``, ``predict_proba`` and ``predict`` over a runtime's ``preprocess`` and ``run``."""

    info: BundleInfo
    preprocess: Preprocess

    @abstractmethod
    def run(self, feeds: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        """Probabilities for already-preprocessed inputs (what benchmarks time)."""

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    def predict_proba(self, rows: Rows) -> npt.NDArray[np.float64]:
        """Class probabilities (columns in ``info.classes`` order) for a list of dicts or a table."""
        feeds = self.preprocess(rows)
        if len(next(iter(feeds.values()))) == 0:
            return np.zeros((0, len(self.classes)))
        return self.run(feeds)

    def predict(self, rows: Rows) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(rows).argmax(axis=1)]


class OnnxModel(RowPredictor):
    """An exported model in ONNX Runtime; ``threads`` fixes the intra-op thread count."""

    def __init__(self, info: BundleInfo, session: Any, preprocess: Preprocess, size_bytes: int) -> None:
        self.info = info
        self.session = session
        self.preprocess = preprocess
        self.size_bytes = size_bytes
        self.output_name = str(session.get_outputs()[0].name)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        threads: int = 1,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        spinning: bool = True,
    ) -> OnnxModel:
        info, files = read_bundle(data)
        if info.format != "onnx":
            raise InvalidInputError(
                f"this bundle holds a {info.format} model, not ONNX",
                expected="format onnx", received=info.format,
                fix="load it with keelml.export.runtime.load_model (OpenVINO) or on its platform (Core ML)",
            )  # fmt: skip
        graph = session(files[info.graph], threads=threads, providers=providers, spinning=spinning)
        return cls(info, graph,
                   Preprocess(info, files), len(files[info.graph]))  # fmt: skip

    def run(self, feeds: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        """Probabilities for already-preprocessed inputs (what benchmarks time)."""
        out = self.session.run([self.output_name], dict(feeds))[0]
        return np.asarray(out, dtype=np.float64)


# ONNX Runtime's own graph optimizers that keelml turns off: SkipLayerNormFusion re-fuses residual
# Add + LayerNormalization into SkipLayerNormalization, whose CPU kernel (onnxruntime 1.32) was 10x
# slower per element than LayerNormalization on the benchmark machine; without it fused int8 MiniLM
# took 1.29x less CPU time at batch 1 and 1.24x at batch 32 (benchmarks/results/export.md).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def session(
    graph: bytes,
    *,
    threads: int = 1,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    spinning: bool = True,
    flush_denormals: bool = True,
) -> Any:
    """An ONNX Runtime session with a fixed thread count and sequential execution.

    ``spinning=False`` stops the intra-op threads from spin-waiting between operators. Spinning buys a
    little latency on an idle machine; under steady load on few cores it burns the CPU other work needs
    (a 2-thread int8 MiniLM server used 61 ms of CPU per request with it, 21 ms without, and served
    1.4x more requests: benchmarks/results/serve.md). The optimizers in :data:`DISABLED_OPTIMIZERS` are
    off; every other ONNX Runtime optimization is on.

    ``flush_denormals=True`` runs each call with denormal floats flushed to zero, in the calling thread
    (:class:`keelml.export.denormals.flushed`) and in ONNX Runtime's pool threads: padded attention
    positions otherwise produce denormals that made the fused int8 MiniLM 1.5x slower at batch 1
    (keelml.export.denormals). The result is a :class:`FlushingSession`, which has the session's methods.
    """
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError as exc:
        raise missing_dependency("onnxruntime", "export", "running exported models") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if flush_denormals:
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
    with preserved():  # ONNX Runtime also flushes the thread creating its first session, for good: undo
        created = ort.InferenceSession(
            graph, options, providers=list(providers), disabled_optimizers=list(DISABLED_OPTIMIZERS)
        )
    return FlushingSession(created) if flush_denormals else created


class FlushingSession:
    """An ONNX Runtime session whose ``run`` flushes denormals to zero in the calling thread."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def run(self, *args: Any, **kwargs: Any) -> Any:
        with flushed():
            return self.inner.run(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # get_inputs, get_outputs, end_profiling, ...
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


class OpenVinoModel(RowPredictor):
    """An OpenVINO IR bundle compiled for the CPU; same preprocessing and outputs as :class:`OnnxModel`."""

    def __init__(self, info: BundleInfo, compiled: Any, preprocess: Preprocess, size_bytes: int) -> None:
        self.info = info
        self.compiled = compiled
        self.preprocess = preprocess
        self.size_bytes = size_bytes

    @classmethod
    def from_bytes(cls, data: bytes, *, threads: int = 1) -> OpenVinoModel:
        try:
            import openvino as ov  # type: ignore[import-untyped]
        except ImportError as exc:
            raise missing_dependency("openvino", "openvino", "running OpenVINO exports") from exc
        info, files = read_bundle(data)
        core = ov.Core()
        weights = files["model.bin"]
        model = core.read_model(files["model.xml"], ov.Tensor(np.frombuffer(weights, dtype=np.uint8)))
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        compiled = core.compile_model(model, "CPU", config)
        return cls(info, compiled, Preprocess(info, files), len(files["model.xml"]) + len(weights))

    def run(self, feeds: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        result = self.compiled(dict(feeds))
        return np.asarray(result[self.compiled.output(0)], dtype=np.float64)


def load_model(
    data: bytes, *, threads: int = 1, spinning: bool = True
) -> OnnxModel | OpenVinoModel | CoreMlModel:
    """The runtime for a bundle's format: ONNX, OpenVINO, or Core ML (macOS only; a clear error elsewhere).

    ``spinning`` is ONNX Runtime's (see :func:`session`); OpenVINO's CPU plugin and Core ML manage their
    own threads.
    """
    info, _ = read_bundle(data)
    if info.format == "openvino":
        return OpenVinoModel.from_bytes(data, threads=threads)
    if info.format == "coreml":
        from keelml.export.coreml_runtime import CoreMlModel

        return CoreMlModel.from_bytes(data, threads=threads)
    return OnnxModel.from_bytes(data, threads=threads, spinning=spinning)
