"""Compression (``ws.compress``): distillation and structured pruning; the variant search with quantization.

torch is imported only when a compression runs, and the public names below on first use, so
``import keelml`` stays light; quantized ONNX variants come from ``ws.exports``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keelml.core.lazy import lazy_names
from keelml.core.workspace import Workspace, workspace_accessor

if TYPE_CHECKING:
    from keelml.compress.api import Compressed, Compression
    from keelml.compress.distill import DistillConfig
    from keelml.compress.fitting import FitSettings
    from keelml.compress.prune import PruneConfig

_HOME = {"Compressed": "api", "Compression": "api", "DistillConfig": "distill", "FitSettings": "fitting",
         "PruneConfig": "prune"}  # fmt: skip


__getattr__ = lazy_names(__name__, _HOME)


@workspace_accessor("compress")
def _compress(ws: Workspace) -> Compression:
    from keelml.compress.api import Compression

    return Compression(ws)


__all__ = ["Compressed", "Compression", "DistillConfig", "FitSettings", "PruneConfig"]
