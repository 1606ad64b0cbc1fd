"""Compression (``ws.compress``): distillation and structured pruning; the variant search with quantization.

torch is imported only when a compression runs; quantized ONNX variants come from ``ws.exports``.
"""

from keelml.compress import api as _api  # noqa: F401  (registers ws.compress)
from keelml.compress.api import Compressed, Compression
from keelml.compress.distill import DistillConfig
from keelml.compress.fitting import FitSettings
from keelml.compress.prune import PruneConfig

__all__ = ["Compressed", "Compression", "DistillConfig", "FitSettings", "PruneConfig"]
