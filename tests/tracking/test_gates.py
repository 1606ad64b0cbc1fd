from __future__ import annotations

import pytest

from keelml.core.errors import ConfigError
from keelml.tracking import GatesConfig, evaluate_gates


def test_gates_pass_fail_borderline_and_not_evaluated() -> None:
    gates = GatesConfig.from_mapping(
        {"min_metric": {"test_accuracy": 0.8, "test_f1_macro": 0.7}, "max_slice_gap": 0.1, "borderline": 0.05}
    )
    results = {
        r.name: r
        for r in evaluate_gates(
            gates,
            {"test_accuracy": 0.82, "test_f1_macro": 0.5, "slice_a_accuracy": 0.9, "slice_b_accuracy": 0.7},
        )
    }
    assert results["min test_accuracy"].status == "passed" and results["min test_accuracy"].borderline
    assert results["min test_f1_macro"].status == "failed"
    gap = results["max slice gap (accuracy)"]
    assert gap.status == "failed" and gap.observed == pytest.approx(0.2)
    one_slice = evaluate_gates(gates, {"slice_a_accuracy": 0.9})
    assert [r.status for r in one_slice] == ["not evaluated", "not evaluated", "not evaluated"]


def test_no_gates_is_empty() -> None:
    assert GatesConfig.from_mapping(None).empty
    assert evaluate_gates(GatesConfig(), {"test_accuracy": 1.0}) == []


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"min_accuracy": 0.8}, "unknown gates"),
        ({"max_latency_ms": "fast"}, "must be a number"),
        ({"min_metric": 0.8}, "table of metric"),
        ({"min_metric": {"test_accuracy": True}}, "must be a number"),
    ],
)
def test_bad_gate_config_is_a_config_error(raw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GatesConfig.from_mapping(raw)
