"""The values a monitor run returns and stores: one :class:`CheckResult` per check and target.

>>> r = CheckResult("data_drift", "age", 0.31, 0.001, True, {"test": "ks"})
>>> w = WindowResult("m", None, None, 10, (r,), ("x",))
>>> w.drift, w.get("data_drift", "age").p_value, w.get("latency", "p99")
(True, 0.001, None)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One number of one check about one target (a feature, slice, group, detector or percentile)."""

    check: str
    target: str
    value: float | None
    p_value: float | None
    alarm: bool
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def field(self, name: str) -> float | None:
        if name == "alarm":
            return 1.0 if self.alarm else 0.0
        return self.p_value if name == "p_value" else self.value


@dataclass(frozen=True)
class WindowResult:
    """Every check over one window of production rows."""

    monitor: str
    start: dt.datetime | None
    end: dt.datetime | None
    rows: int
    checks: tuple[CheckResult, ...]
    findings: tuple[str, ...] = ()

    @property
    def drift(self) -> bool:
        return any(c.alarm for c in self.checks)

    def get(self, check: str, target: str = "*") -> CheckResult | None:
        return next((c for c in self.checks if c.check == check and c.target == target), None)

    def of(self, check: str) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.check == check)


@dataclass(frozen=True)
class FiredAlert:
    """An alert that was sent (or, with ``suppressed``, held back by cooldown or deduplication)."""

    monitor: str
    rule: str
    severity: str
    dedup_key: str
    value: float | None
    message: str
    targets: tuple[str, ...]
    fired_at: dt.datetime
    deliveries: tuple[tuple[str, str], ...] = ()  # (channel, "ok" | error)
    suppressed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "rule": self.rule,
            "severity": self.severity,
            "dedup_key": self.dedup_key,
            "value": self.value,
            "message": self.message,
            "targets": list(self.targets),
            "fired_at": self.fired_at.isoformat(),
        }


@dataclass(frozen=True)
class MonitorRun:
    """What ``ws.monitor.run`` did: the windows it checked and the alerts it fired."""

    monitor: str
    windows: tuple[WindowResult, ...]
    alerts: tuple[FiredAlert, ...]
    findings: tuple[str, ...] = ()

    @property
    def drift(self) -> bool:
        return any(w.drift for w in self.windows)

    @property
    def fired(self) -> tuple[FiredAlert, ...]:
        return tuple(a for a in self.alerts if not a.suppressed)

    @property
    def latest(self) -> WindowResult | None:
        return self.windows[-1] if self.windows else None
