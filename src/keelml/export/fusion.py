"""Transformer fusion before quantization: ONNX Runtime's transformer optimizer on BERT-like encoders.

The optimizer replaces the attention subgraph of each layer by one ``Attention`` op, residual add +
LayerNorm by ``SkipLayerNormalization``, bias + GELU by ``BiasGelu`` and the embeddings by
``EmbedLayerNormalization``. Dynamic int8 then quantizes each ``Attention`` as one ``QAttention``
(the Q, K and V projections share one quantized input), which is where most of the int8 speed-up of a
small encoder comes from.

``SkipLayerNormalization`` is off by default (``skip_layer_norm=False``): ONNX Runtime 1.32's CPU kernel
took 4.2 ns per element against 0.41 ns for ``LayerNormalization`` on the benchmark machine (one
thread, [32, 128, 384]: 6.6 ms vs 0.64 ms), a quarter of the fused int8 MiniLM's time; the residual
``Add`` + ``LayerNormalization`` it replaces cost about a fifth of that
(benchmarks/results/export.md, "int8 GOP/s").

The optimizer's patterns match the graph of the legacy (TorchScript) exporter with eager attention;
the dynamo exporter's graph (and SDPA attention) is left with unfused attention, so the fused graph is
exported from a copy of the model with ``attn_implementation="eager"`` and the legacy exporter. It must
match the torch model within the export tolerance; otherwise, or when the model is not a BERT-like
encoder, the unfused graph is used and :class:`FusionReport` says why.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keelml.export.onnx_export import ParityError, _legacy, check_parity, strip_metadata
from keelml.export.protocol import ExportSourceLike
from keelml.export.quantize import _quiet

BERT_LIKE = ("bert",)  # transformers model types whose layers the optimizer's "bert" fusions match
FUSED_VARIANTS = ("fp32", "int8", "fp16")  # variants made from the fused graph when fusion applies


@dataclass(frozen=True, slots=True)
class FusionReport:
    """Whether the fused graph is used, the fused operators, its parity with torch, or why not."""

    applied: bool
    reason: str  # "fused" or why the unfused graph is used
    fused_ops: Mapping[str, int] = field(default_factory=dict, hash=False)
    max_abs_diff: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "reason": self.reason, "fused_ops": dict(self.fused_ops),
                "max_abs_diff": self.max_abs_diff}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fusion:
    report: FusionReport
    graph: bytes | None = field(default=None, repr=False)  # the fused fp32 graph, when applied


def _skip(reason: str) -> Fusion:
    return Fusion(FusionReport(False, reason))


def _encoder(module: Any) -> Any:
    """The first transformers model inside ``module`` (it has a config and an attention switch)."""
    for sub in module.modules():
        if hasattr(sub, "config") and hasattr(sub, "set_attn_implementation"):
            return sub
    return None


def _attention_shape(config: Any) -> tuple[int, int] | None:
    """(heads, attention width) shared by every layer, or None when pruning left them unequal.

    A pruned encoder keeps ``hidden_size`` for its residual stream while each layer's attention is
    ``heads x head size`` wide; the fused ``Attention`` op takes that width, not ``hidden_size``.
    """
    head_size = int(config.hidden_size) // int(config.num_attention_heads)
    structure = getattr(config, "keel_structure", None)
    if not structure:
        return int(config.num_attention_heads), int(config.hidden_size)
    heads = set(structure["heads"])
    if len(heads) != 1:
        return None
    kept = heads.pop()
    return kept, kept * head_size


def _optimize(
    graph: bytes, heads: int, hidden: int, skip_layer_norm: bool = False
) -> tuple[bytes, dict[str, int]]:
    from onnxruntime.transformers.fusion_options import FusionOptions  # type: ignore[import-untyped]
    from onnxruntime.transformers.optimizer import optimize_model  # type: ignore[import-untyped]

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = skip_layer_norm
    options.enable_bias_skip_layer_norm = skip_layer_norm
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = Path(tmp) / "model.onnx"
        path.write_bytes(graph)
        optimized = optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden,
                                   optimization_options=options, opt_level=0, use_gpu=False)  # fmt: skip
        stats = optimized.get_fused_operator_statistics()
        target = Path(tmp) / "fused.onnx"
        optimized.save_model_to_file(str(target))  # sorts nodes and declares the com.microsoft opset
        out = target.read_bytes()
    return out, {str(k): int(v) for k, v in stats.items() if v}


def fuse(source: ExportSourceLike, *, atol: float = 1e-4, skip_layer_norm: bool = False) -> Fusion:
    """The fused graph of a BERT-like text model, checked against torch; else why it is not used.

    ``skip_layer_norm=True`` also fuses residual add + LayerNorm into ``SkipLayerNormalization``
    (slower on ONNX Runtime 1.32's CPU kernel, see the module docstring).
    """
    if source.task != "text":
        return _skip(f"not a transformer encoder ({source.task} model)")
    try:
        import onnxruntime.transformers.optimizer  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:  # builds of onnxruntime without its transformers tools
        return _skip(f"onnxruntime.transformers is not available ({exc})")
    module = copy.deepcopy(source.module).eval()
    encoder = _encoder(module)
    if encoder is None:
        return _skip("no transformers encoder found in the model")
    config = encoder.config
    model_type = str(getattr(config, "model_type", ""))
    if model_type not in BERT_LIKE:
        return _skip(f"model type {model_type!r} has no tested fusion (tested: {', '.join(BERT_LIKE)})")
    shape = _attention_shape(config)
    if shape is None:
        return _skip("pruned encoder with a different number of heads per layer: one fusion cannot match all")
    heads, hidden = shape
    try:
        encoder.set_attn_implementation("eager")
        plain = strip_metadata(_legacy(module, source))
        fused, counts = _optimize(plain, heads, hidden, skip_layer_norm)
    except Exception as exc:  # any exporter / optimizer failure: keep the unfused graph, say why
        return _skip(f"fusion failed: {type(exc).__name__}: {str(exc)[:200]}")
    if not counts.get("Attention"):
        found = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
        return _skip(f"the optimizer fused no attention (fused: {found})")
    try:
        diff = check_parity(fused, source, atol=atol)
    except ParityError as exc:
        return Fusion(FusionReport(False, f"the fused graph missed parity: {exc.received}", counts))
    return Fusion(FusionReport(True, "fused", counts, diff), fused)
