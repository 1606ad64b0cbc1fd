"""Export (``ws.exports``): ONNX export, quantization, other targets, a torch-free runtime, benchmarks.

Importing this package is light: onnx, onnxruntime and torch are imported only when used.
"""

from keelml.export import api as _api  # noqa: F401  (registers ws.exports)
from keelml.export.api import ExportResult, Exports, VariantResult
from keelml.export.bundle import BundleInfo, InputField
from keelml.export.protocol import Exportable, ExportSourceLike

__all__ = [
    "BundleInfo",
    "ExportResult",
    "ExportSourceLike",
    "Exportable",
    "Exports",
    "InputField",
    "VariantResult",
]
