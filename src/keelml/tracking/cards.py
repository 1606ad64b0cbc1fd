"""Model cards (markdown and HTML) built from the catalog and the registry, never typed by hand.

Sections: the model and its data lineage, the training config, metrics overall and per slice, and
limitations drawn from gates that failed, passed narrowly or could not be evaluated.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

from keelml.core.lineage import LineageGraph
from keelml.tracking.gates import GateResult
from keelml.tracking.registry import ModelVersionInfo

_SLICE = re.compile(r"^slice_(?P<slice>.+)_(?P<metric>accuracy|f1_macro|auroc|ece)$")
_TEST = ("accuracy", "f1_macro", "auroc", "ece")


@dataclass(frozen=True, slots=True)
class ModelCard:
    info: ModelVersionInfo
    lineage: LineageGraph
    params: Mapping[str, str]
    gates: tuple[GateResult, ...]

    def limitations(self) -> list[str]:
        notes = []
        for gate in self.gates:
            if gate.status == "failed":
                notes.append(f"Gate failed: {gate.name} ({gate.detail}).")
            elif gate.status == "not evaluated":
                notes.append(f"Not evaluated: {gate.name} ({gate.detail}).")
            elif gate.borderline:
                notes.append(f"Borderline: {gate.name} passed narrowly ({gate.detail}).")
        if "keel.forced_reason" in self.info.tags:
            notes.append(f"Promoted with --force; reason recorded: {self.info.tags['keel.forced_reason']}.")
        if not any(_SLICE.match(k) for k in self.info.metrics):
            notes.append("No slice metrics: declare [slices] in keel.toml to evaluate subgroups.")
        return notes

    def _slices(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for key, value in self.info.metrics.items():
            match = _SLICE.match(key)
            if match:
                out.setdefault(match["slice"], {})[match["metric"]] = value
        return dict(sorted(out.items()))

    def _privacy(self) -> list[str]:
        """The DP guarantee recorded by a private training run (metrics/params ``privacy_*``)."""
        eps = self.info.metrics.get("privacy_epsilon")
        if eps is None:
            return ["Not trained with differential privacy."]
        p = self.params
        return [
            f"DP-SGD: epsilon {eps:.3f}, delta {p.get('privacy_delta', '?')} "
            f"({p.get('privacy_accountant', 'pld').upper()} accountant; neighbouring relation: "
            f"{p.get('privacy_neighbouring', 'add-or-remove-one record')}).",
            f"Noise multiplier {p.get('privacy_noise_multiplier', '?')}, clipping norm "
            f"{p.get('privacy_max_grad_norm', '?')}, sample rate {p.get('privacy_sample_rate', '?')}, "
            f"{p.get('privacy_steps', '?')} steps; the guarantee covers the training rows.",
        ]

    def sections(self) -> list[tuple[str, list[list[str]] | list[str]]]:
        info = self.info
        model = [
            ["name", info.name], ["version", str(info.version)],
            ["aliases", ", ".join(info.aliases) or "none"],
            ["task", info.tags.get("keel.task", "?")], ["trained on", info.dataset or "?"],
            ["dataset digest", info.tags.get("keel.dataset_digest", "?")], ["MLflow run", info.run_id],
        ]  # fmt: skip
        lineage = [f"{e.src} → {e.dst} ({e.relation})" for e in self.lineage.edges] or [
            "(no recorded inputs)"
        ]
        config = [[k, v] for k, v in sorted(self.params.items())]
        overall = [["test", *(_num(info.metrics.get(f"test_{m}")) for m in _TEST)]]
        slices = [
            [f"slice {name}", *(_num(vals.get(m)) for m in _TEST)] for name, vals in self._slices().items()
        ]
        gates = [[g.name, g.status + (" (borderline)" if g.borderline else ""), g.detail] for g in self.gates]
        return [
            ("Model", model),
            ("Data lineage", lineage),
            ("Training config", config),
            ("Metrics (accuracy, F1 macro, AUROC, ECE)", overall + slices),
            ("Privacy", self._privacy()),
            ("Gates", gates or ["no gates declared in keel.toml"]),
            ("Limitations", self.limitations() or ["none recorded"]),
        ]

    def to_markdown(self) -> str:
        lines = [f"# Model card: {self.info.name}@{self.info.version}", ""]
        headers = {
            "Model": ["field", "value"],
            "Training config": ["param", "value"],
            "Gates": ["gate", "status", "detail"],
        }
        for title, body in self.sections():
            lines += [f"## {title}", ""]
            if body and isinstance(body[0], list):
                head = headers.get(title, ["part", *_TEST])
                lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                lines += ["| " + " | ".join(row) + " |" for row in body]
            else:
                lines += [f"- {item}" for item in body]
            lines.append("")
        return "\n".join(lines)

    def to_html(self) -> str:
        parts = [f"<h1>Model card: {html.escape(self.info.name)}@{self.info.version}</h1>"]
        for title, body in self.sections():
            parts.append(f"<h2>{html.escape(title)}</h2>")
            if body and isinstance(body[0], list):
                rows = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
                )
                parts.append(f"<table>{rows}</table>")
            else:
                parts.append("<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in body) + "</ul>")
        style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        style += "td{border:1px solid #ccc;padding:2px 6px}"
        title = html.escape(f"{self.info.name}@{self.info.version}")
        head = f"<head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
        return f"<!doctype html><html>{head}<body>{''.join(parts)}</body></html>"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
