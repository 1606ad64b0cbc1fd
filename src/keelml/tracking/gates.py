"""Promotion gates declared in keel.toml, evaluated against a model version's metrics.

::

    [gates]
    min_metric = { test_accuracy = 0.8, test_auroc = 0.75 }
    max_slice_gap = 0.1          # best slice minus worst slice, on slice_metric
    slice_metric = "accuracy"
    max_latency_ms = 50          # needs the metric latency_p95_ms (from `keel bench`)
    max_privacy_epsilon = 3.0    # needs the metric privacy_epsilon (from DP training)
    borderline = 0.02            # a pass this close to its threshold is reported as borderline

A gate whose input metric does not exist is reported "not evaluated", never passed.

>>> gates = GatesConfig.from_mapping({"min_metric": {"test_accuracy": 0.8}, "max_latency_ms": 50})
>>> [(r.name, r.status) for r in evaluate_gates(gates, {"test_accuracy": 0.9})]
[('min test_accuracy', 'passed'), ('max latency', 'not evaluated')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from keelml.core.errors import ConfigError

Status = Literal["passed", "failed", "not evaluated"]
_KEYS = ("min_metric", "max_slice_gap", "slice_metric", "max_latency_ms", "max_privacy_epsilon", "borderline")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"gates.{key} in keel.toml must be a number",
            received=repr(value)[:80],
            fix=f"write e.g. {key} = 0.1",
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class GatesConfig:
    min_metric: Mapping[str, float] = field(default_factory=dict)
    max_slice_gap: float | None = None
    slice_metric: str = "accuracy"
    max_latency_ms: float | None = None
    max_privacy_epsilon: float | None = None
    borderline: float = 0.02

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> GatesConfig:
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise ConfigError("the gates section of keel.toml must be a table", received=repr(raw)[:80])
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown gates in keel.toml: {', '.join(unknown)}",
                expected=", ".join(_KEYS),
                received=", ".join(unknown),
                fix="rename or remove them (see docs/training.md#gates)",
            )
        minimums = raw.get("min_metric", {})
        if not isinstance(minimums, Mapping):
            raise ConfigError(
                "gates.min_metric must be a table of metric = minimum",
                received=repr(minimums)[:80],
                fix="write min_metric = { test_accuracy = 0.8 }",
            )

        def optional(key: str) -> float | None:
            return None if raw.get(key) is None else _number(key, raw[key])

        return cls(
            min_metric={str(k): _number(f"min_metric.{k}", v) for k, v in minimums.items()},
            max_slice_gap=optional("max_slice_gap"),
            slice_metric=str(raw.get("slice_metric", "accuracy")),
            max_latency_ms=optional("max_latency_ms"),
            max_privacy_epsilon=optional("max_privacy_epsilon"),
            borderline=_number("borderline", raw.get("borderline", 0.02)),
        )

    @property
    def empty(self) -> bool:
        return not self.min_metric and all(
            v is None for v in (self.max_slice_gap, self.max_latency_ms, self.max_privacy_epsilon)
        )


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    status: Status
    threshold: float
    observed: float | None
    detail: str
    borderline: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.name,
            "status": self.status,
            "threshold": self.threshold,
            "observed": self.observed,
            "borderline": self.borderline,
            "detail": self.detail,
        }


def _check(
    name: str, observed: float | None, threshold: float, kind: str, margin: float, what: str
) -> GateResult:
    if observed is None:
        return GateResult(name, "not evaluated", threshold, None, f"no {what} recorded for this version")
    ok = observed >= threshold if kind == "min" else observed <= threshold
    sign = ">=" if kind == "min" else "<="
    near = ok and abs(observed - threshold) <= margin
    return GateResult(
        name,
        "passed" if ok else "failed",
        threshold,
        observed,
        f"{observed:.4g} {sign} {threshold:.4g} required",
        near,
    )


def evaluate_gates(gates: GatesConfig, metrics: Mapping[str, float]) -> list[GateResult]:
    results = [
        _check(f"min {m}", metrics.get(m), t, "min", gates.borderline, f"metric {m}")
        for m, t in sorted(gates.min_metric.items())
    ]
    if gates.max_slice_gap is not None:
        suffix = f"_{gates.slice_metric}"
        values = {k: v for k, v in metrics.items() if k.startswith("slice_") and k.endswith(suffix)}
        gap = max(values.values()) - min(values.values()) if len(values) >= 2 else None
        results.append(
            _check(
                f"max slice gap ({gates.slice_metric})", gap, gates.max_slice_gap, "max", gates.borderline,
                f"{gates.slice_metric} for two or more slices",
            )
        )  # fmt: skip
    if gates.max_latency_ms is not None:
        results.append(
            _check(
                "max latency",
                metrics.get("latency_p95_ms"),
                gates.max_latency_ms,
                "max",
                0.0,
                "latency_p95_ms",
            )
        )
    if gates.max_privacy_epsilon is not None:
        results.append(
            _check(
                "max privacy epsilon", metrics.get("privacy_epsilon"), gates.max_privacy_epsilon, "max", 0.0,
                "privacy_epsilon (the model was not trained with differential privacy)",
            )
        )  # fmt: skip
    return results
