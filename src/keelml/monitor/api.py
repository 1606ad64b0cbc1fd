"""``ws.monitor``: profiles, runs, results, alerts, reports and metrics for served models.

Production rows come from the request and feedback logs (``core.request_log``) or, for a batch, from a
dataset version (or a DataFrame) that carries the model's outputs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keelml.core import request_log
from keelml.core.catalog import utcnow
from keelml.core.errors import ConfigError
from keelml.core.refs import ModelRef
from keelml.core.workspace import Workspace
from keelml.monitor import alerts as alerting
from keelml.monitor.checks_quality import realised
from keelml.monitor.config import MonitorSpec, load_spec, parse_duration, parse_window
from keelml.monitor.frame import Frame
from keelml.monitor.profile import Profile, build_profile
from keelml.monitor.results import CheckResult, FiredAlert, MonitorRun, WindowResult
from keelml.monitor.runner import MAX_WINDOWS, check_window, join_feedback, time_windows
from keelml.monitor.store import MonitorStore, StoredResult, baseline_node, check_results

Data = str | pd.DataFrame | Frame | Any
Windows = list[tuple[Frame, dt.datetime | None, dt.datetime | None, Frame | None]]


@dataclass(frozen=True)
class ProfileInfo:
    monitor: str
    id: int
    source: str
    rows: int
    features: tuple[str, ...]
    partitions: int
    accuracy: float | None
    baseline: str | None = None  # lineage node of this profile (monitor:NAME@ID), when one was recorded
    model: str | None = None  # the registered model version it is the baseline of (model:NAME@V)


class Monitoring:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.store = MonitorStore(ws.catalog)

    # -- configuration ----------------------------------------------------------------------------

    def spec(self, model: str) -> MonitorSpec:
        """The validated ``[monitor.<model>]`` of keel.toml."""
        return load_spec((self.ws.config.model_extra or {}).get("monitor"), model)

    def _spec(self, model: str, spec: MonitorSpec | dict[str, Any] | None) -> MonitorSpec:
        if spec is None:
            return self.spec(model)
        return spec if isinstance(spec, MonitorSpec) else MonitorSpec.model_validate(spec)

    # -- data ---------------------------------------------------------------------------------------

    def _log_paths(self, model: str) -> tuple[Path, Path]:
        root = self.ws.storage_root
        return request_log.request_log_path(root, model), request_log.feedback_log_path(root, model)

    def read_log(
        self, model: str, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> pd.DataFrame:
        """Request-log rows in ``[since, until)`` with a ``truth`` column joined from the feedback log."""
        log_path, fb_path = self._log_paths(model)
        table = request_log.read(log_path, since=since, until=until)
        if table is None:
            return pd.DataFrame({"prediction_id": [], "ts": pd.to_datetime([], utc=True), "truth": []})
        joined: pd.DataFrame = join_feedback(table, request_log.read(fb_path))
        return joined.sort_values("ts", kind="stable")

    def _frame(self, data: Data, spec: MonitorSpec, model: str) -> tuple[Frame, str]:
        if isinstance(data, Frame):
            return data, "frame"
        if isinstance(data, str):
            if data.startswith("log:"):
                start, _, end = data[4:].partition("/")
                df = self.read_log(
                    model,
                    dt.datetime.fromisoformat(start) if start else None,
                    dt.datetime.fromisoformat(end) if end else None,
                )
                return Frame.from_table(df, features=spec.features), data
            table = self.ws.datasets.read(data)
            ref = str(self.ws.datasets.ref(data))
            return Frame.from_table(
                table, target=spec.target, prediction=spec.prediction, features=spec.features
            ), ref
        return Frame.from_table(
            data, target=spec.target, prediction=spec.prediction, features=spec.features
        ), "data"

    # -- profiles -----------------------------------------------------------------------------------

    def profile(
        self,
        model: str,
        data: Data | None = None,
        *,
        spec: MonitorSpec | dict[str, Any] | None = None,
        partition_rows: int = 250_000,
        model_version: str | ModelRef | None = None,
    ) -> ProfileInfo:
        """Sketch the reference (``data``, else the spec's ``reference``) per partition and store it.

        The stored profile is the monitor baseline in the lineage graph: an edge from the registered
        model version (``model_version``, else the spec's ``model``, else the newest version of the model
        named like the monitor, if one is registered) and one from the reference dataset version.
        """
        spec_ = self._spec(model, spec)
        source = data if data is not None else spec_.reference
        if source is None:
            raise ConfigError(
                f"no reference for monitor {model!r}",
                expected="a dataset version (NAME@V), a log window (log:START/END) or a DataFrame",
                received="none",
                fix=f'set reference = "NAME@V" in [monitor.{model}] or pass data=',
            )
        frame, name = self._frame(source, spec_, model)
        prof = build_profile(
            frame,
            categorical=spec_.categorical,
            sample_size=spec_.sample_size,
            partition_rows=partition_rows,
            text_columns=spec_.text_columns,
            text_sample=spec_.text_sample,
        )
        model_node = self._model_node(model, spec_, model_version)
        upstream: list[tuple[str, str]] = []
        if model_node is not None:
            upstream.append((model_node, "monitored"))
            # model version -> deployment -> baseline: the serving path records "deployed" edges
            upstream.extend((d, "monitored") for d in self.store.deployments_of(model_node))
        if isinstance(source, str) and not source.startswith("log:"):
            upstream.append((f"dataset:{name}", "profiled"))
        pid = self.store.save_profile(model, prof, name, tuple(upstream))
        return ProfileInfo(
            model,
            pid,
            name,
            prof.rows,
            prof.features,
            prof.partitions,
            prof.accuracy,
            baseline_node(model, pid) if upstream else None,
            model_node,
        )

    def _model_node(self, monitor: str, spec: MonitorSpec, given: str | ModelRef | None) -> str | None:
        """The lineage id of the model version a profile is the baseline of (None: no registered model)."""
        if isinstance(given, ModelRef):
            return given.node_id
        wanted = given if given is not None else spec.model
        name, _, selector = (wanted or monitor).partition("@")
        versions = self.store.model_versions(name)
        if selector.isdigit() and int(selector) in versions:
            return ModelRef(name, int(selector)).node_id
        if selector in ("", "latest") and versions:
            return ModelRef(name, versions[-1]).node_id
        if wanted is None:
            return None  # the monitor is not named after a registered model: nothing to link
        raise ConfigError(
            f"model {wanted!r} of monitor {monitor!r} is not a registered model version",
            expected="NAME or NAME@VERSION of a registered model (aliases are resolved by the registry)",
            received=f"registered versions of {name!r}: {versions or 'none'}",
            fix="pass the version number, e.g. model_version=ws.models.show('NAME@production').ref, "
            "or set model = 'NAME@3' in [monitor.<model>]",
        )

    def load_profile(self, model: str) -> Profile:
        return self.store.load_profile(model)[0]

    # -- runs ---------------------------------------------------------------------------------------

    def run(
        self,
        model: str,
        *,
        window: str | int | None = None,
        data: Data | None = None,
        spec: MonitorSpec | dict[str, Any] | None = None,
        now: dt.datetime | None = None,
        deliver: bool = True,
    ) -> MonitorRun:
        """Check every new window (of the request log, or ``data``), store the results, raise alerts."""
        spec_ = self._spec(model, spec)
        kind, size = parse_window(window if window is not None else spec_.window)
        now = now or utcnow()
        findings: list[str] = []
        try:
            profile, _ = self.store.load_profile(model)
        except LookupError:
            if spec_.reference is None:
                raise
            info = self.profile(model, spec=spec_)
            findings.append(f"built the reference profile from {info.source} ({info.rows} rows)")
            profile = self.load_profile(model)
        windows: Windows = []
        current = data if data is not None else spec_.current
        if current is not None:
            frame, _ = self._frame(current, spec_, model)
            chunks = (
                [np.arange(len(frame))]
                if kind == "time"
                else np.array_split(np.arange(len(frame)), max(1, -(-len(frame) // size)))
            )
            windows = [(frame.take(c), None, None, None) for c in chunks]
        else:
            windows, more = self._log_windows(model, spec_, kind, size, now)
            findings.extend(more)
        run_id = uuid.uuid4().hex[:12]
        results: list[WindowResult] = []
        fired: list[FiredAlert] = []
        for i, (frame, start, end, stream) in enumerate(windows):
            res = check_window(model, profile, frame, spec_, start=start, end=end, stream=stream, seed=i)
            if i == len(windows) - 1 and current is None:
                res = self._with_realised(model, res, spec_, now)
            self.store.save_window(res, run_id)
            results.append(res)
            fired.extend(self._alerts(model, spec_, res, now, deliver))
        return MonitorRun(model, tuple(results), tuple(fired), tuple(findings))

    def _log_windows(
        self, model: str, spec: MonitorSpec, kind: str, size: int, now: dt.datetime
    ) -> tuple[Windows, list[str]]:
        last = self.store.last_window_end(model)
        findings: list[str] = []
        lookback = now - dt.timedelta(seconds=parse_duration(spec.label_lookback))
        labelled = self.read_log(model, since=lookback, until=now)
        labelled = labelled[labelled["truth"].notna()] if len(labelled) else labelled
        stream = (
            Frame.from_table(labelled, features=spec.features) if len(labelled) else Frame(pd.DataFrame())
        )
        if kind == "time":
            bounds = time_windows(last or now - dt.timedelta(seconds=size), now, size)
            if len(bounds) > MAX_WINDOWS:
                findings.append(f"{len(bounds) - MAX_WINDOWS} older windows since the last run were skipped")
                bounds = bounds[-MAX_WINDOWS:]
            out: Windows = []
            for start, end in bounds:
                df = self.read_log(model, since=start, until=end)
                out.append(
                    (
                        Frame.from_table(df, features=spec.features) if len(df) else _empty(),
                        start,
                        end,
                        stream,
                    )
                )
            return out, findings
        df = self.read_log(model, since=last, until=now)
        if last is None:
            df = df.tail(size)
        if not len(df):
            return [(_empty(), last, now, stream)], findings
        frame = Frame.from_table(df, features=spec.features)
        ts = pd.to_datetime(df["ts"], utc=True)
        rows_out: Windows = []
        for chunk in np.array_split(np.arange(len(df)), max(1, -(-len(df) // size)))[-MAX_WINDOWS:]:
            end = ts.iloc[chunk[-1]].to_pydatetime() + dt.timedelta(microseconds=1)
            rows_out.append((frame.take(chunk), ts.iloc[chunk[0]].to_pydatetime(), end, stream))
        return rows_out, findings

    def _with_realised(
        self, model: str, res: WindowResult, spec: MonitorSpec, now: dt.datetime
    ) -> WindowResult:
        """Realised accuracy for earlier windows whose labels arrived late, against their CBPE band."""
        since = now - dt.timedelta(seconds=parse_duration(spec.label_lookback))
        done = {r.target for r in self.store.results(model, check="performance_realised", since=since)}
        extra: list[CheckResult] = []
        for est in self.store.results(model, check="performance_estimate", since=since):
            if est.window_start is None or est.window_end is None:
                continue
            key = f"{est.window_start.isoformat()}/{est.window_end.isoformat()}"
            if key in done:
                continue
            df = self.read_log(model, since=est.window_start, until=est.window_end)
            if not len(df):
                continue
            got = realised(
                Frame.from_table(df, features=spec.features), {**est.details, "value": est.value}, key
            )
            if got is not None:
                extra.append(got)
                done.add(key)
        if not extra:
            return res
        return WindowResult(res.monitor, res.start, res.end, res.rows, (*res.checks, *extra), res.findings)

    def _alerts(
        self, model: str, spec: MonitorSpec, res: WindowResult, now: dt.datetime, deliver: bool
    ) -> list[FiredAlert]:
        def history(check: str, target: str, since: dt.datetime) -> list[CheckResult]:
            rows = [r for r in self.store.results(model, check=check, since=since) if r.target == target]
            return check_results(rows[: max(0, len(rows) - 1)])  # the newest is this run's own row

        alerts = alerting.evaluate(
            model,
            spec.alerts,
            res,
            history=history,
            last_fired=lambda key: self.store.last_alert(model, key),
            now=now,
        )
        out = []
        rules = {r.name: r for r in spec.alerts}
        for a in alerts:
            if not a.suppressed:
                a = alerting.dispatch(a, rules[a.rule].channels if deliver else ())
                self.store.save_alert(a)
            out.append(a)
        return out

    # -- reading back -------------------------------------------------------------------------------

    def results(self, model: str, check: str | None = None) -> list[StoredResult]:
        return self.store.results(model, check=check)

    def alerts(self, model: str | None = None) -> list[FiredAlert]:
        return self.store.alerts(model)

    def alert_rules(self, model: str) -> str:
        """Prometheus alert rules (YAML) for the rules of ``[monitor.<model>]``."""
        return alerting.prometheus_rules(model, self.spec(model).alerts)

    def collector(self) -> Any:
        """A prometheus_client Collector over the latest results of every monitor in this workspace."""
        from keelml.monitor.metrics import MonitorCollector

        return MonitorCollector(self.store)

    def metrics_text(self) -> str:
        from keelml.monitor.metrics import exposition

        return exposition(self.collector())

    def report(self, model: str, path: str | Path) -> Path:
        """An HTML report (plotly inlined, no network) of the stored results of ``model``."""
        from keelml.monitor.report import write_report

        return write_report(self.store, model, Path(path))


def _empty() -> Frame:
    return Frame(pd.DataFrame())
