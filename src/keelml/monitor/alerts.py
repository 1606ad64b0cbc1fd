"""Alert rules: evaluate, deduplicate, cool down, deliver; and the same rules as Prometheus alert rules.

A rule fires once per run for all the targets it matches (``group_by = "rule"``: one page for a shift that
moves 50 features), or once per target (``"target"``). An alert whose dedup key fired within ``cooldown``
is suppressed: returned with ``suppressed=True``, neither delivered nor stored.

>>> from keelml.monitor.config import AlertRule
>>> print(prometheus_rules("churn", [AlertRule(name="feature drift", metric="data_drift.alarm:*",
...                                            window="30m", severity="critical")]).strip())
groups:
  - name: keelml-monitor-churn
    rules:
      - alert: KeelChurnFeatureDrift
        expr: 'keel_monitor_alarm{monitor="churn",check="data_drift",target="*"} == 1'
        for: 30m
        labels:
          severity: critical
          monitor: churn
        annotations:
          summary: 'churn: feature drift (data_drift.alarm:* == 1)'
          cooldown: 1h
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.request
from collections.abc import Callable

from keelml.monitor.config import AlertRule, parse_condition
from keelml.monitor.results import CheckResult, FiredAlert, WindowResult

log = logging.getLogger("keelml.monitor.alerts")
FIELD_METRIC = {
    "value": "keel_monitor_value",
    "p_value": "keel_monitor_p_value",
    "alarm": "keel_monitor_alarm",
}
History = Callable[[str, str, dt.datetime], list[CheckResult]]


def _hits(rule: AlertRule, window: WindowResult) -> list[CheckResult]:
    check, field, target = rule.parts()
    matching = [c for c in window.checks if c.check == check and (target is None or c.target == target)]
    hits = [c for c in matching if rule.holds(c.field(field))]
    if target is None and len(hits) > 1:
        hits = [c for c in hits if c.target != "*"] or hits  # the summary row repeats the per-target rows
    return hits


def _held(rule: AlertRule, hit: CheckResult, history: History, now: dt.datetime) -> bool:
    """Prometheus ``for:``: the condition held on every earlier run within the window (and there was one)."""
    if rule.window_s == 0:
        return True
    _, field, _ = rule.parts()
    earlier = history(hit.check, hit.target, now - dt.timedelta(seconds=rule.window_s))
    return bool(earlier) and all(rule.holds(c.field(field)) for c in earlier)


def deliver(channel: str, alert: FiredAlert, timeout: float = 5.0) -> str:
    """Send ``alert`` to one channel; returns ``"ok"`` or the error (a failed webhook never raises)."""
    if channel == "log":
        level = {"info": logging.INFO, "warning": logging.WARNING}.get(alert.severity, logging.ERROR)
        log.log(level, alert.message)
        return "ok"
    kind, _, url = channel.partition(":")
    body = alert.to_json() if kind == "webhook" else {"text": alert.message}
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # configured http(s) URL only
            return "ok" if 200 <= response.status < 300 else f"error: HTTP {response.status}"
    except OSError as exc:
        return f"error: {exc}"


def evaluate(
    monitor: str,
    rules: tuple[AlertRule, ...],
    window: WindowResult,
    *,
    history: History,
    last_fired: Callable[[str], dt.datetime | None],
    now: dt.datetime,
) -> list[FiredAlert]:
    """The alerts the rules raise on ``window`` (delivery happens in :func:`dispatch`)."""
    out: list[FiredAlert] = []
    for rule in rules:
        hits = [h for h in _hits(rule, window) if _held(rule, h, history, now)]
        if not hits:
            continue
        _, field, _ = rule.parts()
        groups = [hits] if rule.group_by == "rule" else [[h] for h in hits]
        for group in groups:
            targets = tuple(h.target for h in group)
            key = f"{monitor}:{rule.name}" + (f":{targets[0]}" if rule.group_by == "target" else "")
            last = last_fired(key)
            suppressed = last is not None and (now - last).total_seconds() < rule.cooldown_s
            shown = ", ".join(targets[:10]) + (f" (+{len(targets) - 10} more)" if len(targets) > 10 else "")
            value = group[0].field(field)
            message = (
                f"[{rule.severity}] {monitor}: {rule.name}: {rule.metric} {rule.condition} on {shown}"
                f" (value {value if value is None else round(value, 4)})"
            )
            out.append(
                FiredAlert(
                    monitor,
                    rule.name,
                    rule.severity,
                    key,
                    value,
                    message,
                    targets,
                    now,
                    suppressed=suppressed,
                )
            )
    return out


def dispatch(alert: FiredAlert, channels: tuple[str, ...]) -> FiredAlert:
    from dataclasses import replace

    return replace(alert, deliveries=tuple((c, deliver(c, alert)) for c in channels))


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def prometheus_rules(monitor: str, rules: list[AlertRule] | tuple[AlertRule, ...]) -> str:
    """A Prometheus rules file (YAML) with one alert per rule, over the gauges of ``MonitorCollector``."""
    lines = ["groups:", f"  - name: keelml-monitor-{monitor}", "    rules:"]
    for rule in rules:
        check, field, target = rule.parts()
        op, threshold = parse_condition(rule.condition)
        labels = f'monitor="{monitor}",check="{check}"' + (f',target="{target}"' if target else "")
        number = int(threshold) if threshold.is_integer() else threshold
        camel = "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", f"{monitor} {rule.name}") if w)
        lines += [
            f"      - alert: Keel{camel}",
            f"        expr: {_q(f'{FIELD_METRIC[field]}{{{labels}}} {op} {number}')}",
            f"        for: {rule.window if rule.window_s else '0s'}",
            "        labels:",
            f"          severity: {rule.severity}",
            f"          monitor: {monitor}",
            "        annotations:",
            f"          summary: {_q(f'{monitor}: {rule.name} ({rule.metric} {rule.condition})')}",
            f"          cooldown: {rule.cooldown}",
        ]
    return "\n".join(lines) + "\n"
