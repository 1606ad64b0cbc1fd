"""Prometheus gauges of the latest monitor results (a ``prometheus_client`` Collector).

Three gauge families, labelled ``monitor``, ``check`` and ``target``: ``keel_monitor_value``,
``keel_monitor_p_value`` and ``keel_monitor_alarm`` (1 when the check alarmed). Each scrape reads the newest
run of every monitor from the catalog, so serving replicas and ``keel monitor metrics`` agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keelml.monitor.store import MonitorStore


class MonitorCollector:
    """Register with ``prometheus_client.CollectorRegistry().register(...)`` or pass to a serving app."""

    def __init__(self, store: MonitorStore, monitors: list[str] | None = None) -> None:
        self.store = store
        self.monitors = monitors

    def describe(self) -> list[Any]:
        return []  # no fixed series: the registry must not call collect() at registration time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["monitor", "check", "target"]
        value = GaugeMetricFamily("keel_monitor_value", "Latest value of a monitor check", labels=labels)
        p_value = GaugeMetricFamily(
            "keel_monitor_p_value", "Latest p-value of a monitor check", labels=labels
        )
        alarm = GaugeMetricFamily(
            "keel_monitor_alarm", "1 if the latest monitor check alarmed", labels=labels
        )
        for monitor in self.monitors if self.monitors is not None else self.store.monitors():
            for r in self.store.latest(monitor):
                key = [monitor, r.check, r.target]
                if r.value is not None:
                    value.add_metric(key, r.value)
                if r.p_value is not None:
                    p_value.add_metric(key, r.p_value)
                alarm.add_metric(key, 1.0 if r.alarm else 0.0)
        yield from (value, p_value, alarm)


def exposition(collector: MonitorCollector) -> str:
    """The Prometheus text exposition of ``collector`` alone."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode("utf-8")
