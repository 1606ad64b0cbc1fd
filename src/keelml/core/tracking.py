"""The tracking seam: what a training run reports, without a capability importing another.

A trainer takes a :class:`RunLogger`; the tracking capability provides an MLflow one and a front end
composes the two. :class:`NoRunLogger` is the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class RunLogger(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record configuration values (flattened, stringified by the backend)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record metric values, optionally at a step (epoch)."""


class NoRunLogger:
    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        return None
