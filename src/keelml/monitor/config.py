"""``[monitor.<model>]`` in keel.toml: what to compare, which checks, and the alert rules.

>>> spec = MonitorSpec.model_validate({"reference": "churn@1", "target": "y", "window": "1h",
...     "alerts": [{"name": "drift", "metric": "data_drift.alarm", "condition": "== 1"}]})
>>> spec.window_spec(), spec.alerts[0].cooldown_s
(('time', 3600), 3600)
>>> parse_window("500")
('rows', 500)
>>> parse_window("1 fortnight")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
keelml.core.errors.ConfigError: window '1 fortnight' is not a duration or a row count
...
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keelml.core.errors import ConfigError

CHECKS = (
    "data_drift",
    "text_drift",
    "output_drift",
    "multivariate",
    "concept_drift",
    "performance",
    "slices",
    "fairness",
    "latency",
)
Check = Literal[
    "data_drift",
    "text_drift",
    "output_drift",
    "multivariate",
    "concept_drift",
    "performance",
    "slices",
    "fairness",
    "latency",
]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
WindowSpec = tuple[Literal["time", "rows"], int]


def parse_duration(text: str | int) -> int:
    """Seconds in ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"``, ``"1w"`` (``"0"`` is 0)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", str(text))
    if m is None or (not m.group(2) and m.group(1) != "0"):
        raise ConfigError(
            f"{text!r} is not a duration",
            expected="a number and a unit: 90s, 30m, 1h, 2d, 1w",
            received=repr(text),
            fix="write the duration as e.g. '1h'",
        )
    return int(m.group(1)) * UNITS.get(m.group(2) or "s", 1)


def parse_window(text: str | int) -> WindowSpec:
    """A window is a duration (``"1h"``) or a number of rows (``500``, ``"500"``, ``"500 rows"``)."""
    m = re.fullmatch(r"\s*(\d+)\s*(rows?)?\s*", str(text))
    if m is not None and int(m.group(1)) > 0:
        return ("rows", int(m.group(1)))
    try:
        seconds = parse_duration(text)
    except ConfigError:
        seconds = 0
    if seconds <= 0:
        raise ConfigError(
            f"window {text!r} is not a duration or a row count",
            expected="a duration such as 1h / 30m / 1d, or a positive number of rows such as 1000",
            received=repr(text),
            fix="pass --window 1h or --window 1000",
        )
    return ("time", seconds)


def parse_condition(text: str) -> tuple[str, float]:
    """``"> 0.1"`` -> (">", 0.1)."""
    m = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d*)?(?:e-?\d+)?)\s*", text)
    if m is None:
        raise ConfigError(
            f"alert condition {text!r} cannot be read",
            expected="an operator and a number: '> 0.1', '>= 1', '< 0.8', '== 1'",
            received=repr(text),
            fix="write condition = '> 0.1'",
        )
    return m.group(1), float(m.group(2))


class AlertRule(BaseModel):
    """One rule: fire when ``metric`` meets ``condition`` on every result within ``window``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    metric: str = Field(min_length=1, description="CHECK[.value|.p_value|.alarm][:TARGET]")
    condition: str = "== 1"
    window: str = "0s"
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: str = "1h"
    channels: tuple[str, ...] = ("log",)
    group_by: Literal["rule", "target"] = "rule"

    @field_validator("condition")
    @classmethod
    def _cond(cls, v: str) -> str:
        parse_condition(v)
        return v

    @field_validator("window", "cooldown")
    @classmethod
    def _dur(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        check = v.split(":", 1)[0].split(".", 1)[0]
        known = (
            *CHECKS,
            "performance_estimate",
            "performance_realised",
            "slice_accuracy",
            "fairness_group",
            "concept_drift",
            "mmd",
            "domain_classifier",
            "bbsd",
            "window",
        )
        field = v.split(":", 1)[0].split(".", 1)[1] if "." in v.split(":", 1)[0] else "value"
        if check not in known or field not in ("value", "p_value", "alarm"):
            raise ValueError(
                f"unknown metric {v!r}: use CHECK[.value|.p_value|.alarm][:TARGET], CHECK in {known}"
            )
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            if c != "log" and not re.match(r"^(webhook|slack):https?://", c):
                raise ValueError(f"unknown channel {c!r}: use 'log', 'webhook:URL' or 'slack:URL'")
        return v

    @property
    def cooldown_s(self) -> int:
        return parse_duration(self.cooldown)

    @property
    def window_s(self) -> int:
        return parse_duration(self.window)

    def parts(self) -> tuple[str, str, str | None]:
        """(check, field, target or None)."""
        head, _, target = self.metric.partition(":")
        check, _, field = head.partition(".")
        return check, field or "value", target or None

    def holds(self, value: float | None) -> bool:
        op, threshold = parse_condition(self.condition)
        return value is not None and OPS[op](float(value), threshold)


class MonitorSpec(BaseModel):
    """Validated ``[monitor.<model>]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str | None = None
    current: str | None = None
    features: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = Field(default=(), description="free text, tested on MiniLM embeddings")
    text_test: Literal["mmd", "domain_classifier"] = "mmd"
    text_sample: int = Field(default=500, ge=10, description="texts embedded per side (reference, window)")
    model: str | None = Field(default=None, description="registered model NAME or NAME@VERSION")
    target: str | None = None
    prediction: str = "prediction"
    sensitive: str | None = None
    positive_class: str | None = None
    slices: tuple[str, ...] = ()
    checks: tuple[Check, ...] = CHECKS  # type: ignore[assignment]
    numeric_test: Literal["ks", "psi", "wasserstein", "jensen_shannon", "hellinger"] = "ks"
    categorical_test: Literal["chi2", "psi", "jensen_shannon", "hellinger"] = "chi2"
    correction: Literal["bonferroni", "benjamini_hochberg"] = "benjamini_hochberg"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    windows_per_horizon: int = Field(default=1, ge=1, description="Bonferroni across this many windows")
    multivariate: tuple[Literal["mmd", "domain_classifier", "bbsd"], ...] = ("bbsd",)
    concept: tuple[Literal["adwin", "ddm", "page_hinkley"], ...] = ("adwin", "ddm", "page_hinkley")
    window: str = "1h"
    label_lookback: str = "7d"
    sample_size: int = Field(default=2000, ge=10)
    min_rows: int = Field(default=2, ge=1)
    bootstrap: int = Field(default=1000, ge=100)
    fairness_threshold: float = Field(default=0.1, gt=0, le=1)
    latency_slo_ms: float | None = Field(default=None, gt=0)
    alerts: tuple[AlertRule, ...] = ()

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_window(v)
        return v

    def window_spec(self) -> WindowSpec:
        return parse_window(self.window)

    @property
    def window_alpha(self) -> float:
        return self.alpha / self.windows_per_horizon


def load_spec(raw: Any, model: str) -> MonitorSpec:
    """Validate the ``[monitor.<model>]`` table; a clear ConfigError if it is absent or wrong."""
    section = raw or {}
    if model not in section:
        raise ConfigError(
            f"no [monitor.{model}] section in keel.toml",
            expected=f"a [monitor.{model}] table naming at least the reference",
            received=f"monitors configured: {sorted(section) or 'none'}",
            fix=f'add to keel.toml:\n[monitor.{model}]\nreference = "DATASET@VERSION"\ntarget = "LABEL"',
        )
    try:
        return MonitorSpec.model_validate(section[model])
    except ValidationError as exc:
        raise ConfigError(
            f"[monitor.{model}] in keel.toml has invalid settings",
            expected="the keys documented in docs/monitoring.md",
            received="; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()),
            fix="correct the listed keys",
        ) from exc
