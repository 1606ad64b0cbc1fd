from __future__ import annotations

from pathlib import Path

import pytest

from keelml import Workspace
from keelml.core.errors import ConfigError, InvalidInputError, NotFoundError
from keelml.export import ExportResult
from keelml.export.hardware import HardwareProfile, profile


def test_bench_interleaves_variants_stores_rows_and_feeds_the_latency_gate(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    result = ws.exports.bench("loan-clf@1", hardware="tiny-box", batches=(1, 8), rounds=5, memory=False)
    assert result.threads == 1 and result.hardware.price_per_hour == 0.36
    variants = {r.variant for r in result.rows}
    assert {"torch-fp32", "fp32", "int8"} <= variants
    for r in result.rows:
        assert r.calls == 5 and 0 < r.p50_ms <= r.p90_ms <= r.p95_ms <= r.p99_ms
        # cost per 1M predictions = price per second x seconds per 1M predictions
        assert r.cost_per_million == pytest.approx(0.36 / 3600 * 1e6 / r.throughput)
        assert r.seq_len is None and r.size_bytes > 0
        # CPU time per call (one thread): positive, ordered, and not more than the wall time allows
        assert r.cpu_p50_ms is not None and r.cpu_p90_ms is not None
        assert 0 < r.cpu_p50_ms <= r.cpu_p90_ms and r.cpu_p50_ms <= 2 * r.p50_ms + 1.0
        assert r.to_json()["cpu_p50_ms"] == r.cpu_p50_ms
    int8 = result.row("int8", 1)
    assert ws.exports.latest_latency_ms(f"loan-clf@{int8.version}") == pytest.approx(int8.p99_ms)
    assert ws.exports.latest_latency_ms(f"loan-clf@{int8.version}", quantile="p95") == pytest.approx(
        int8.p95_ms
    )
    card = ws.models.card(f"loan-clf@{int8.version}")
    latency = next(g for g in card.gates if g.name == "max latency")
    assert latency.status == "passed" and latency.observed == pytest.approx(int8.p95_ms)


def test_peak_memory_is_measured_in_a_fresh_process(exported: tuple[Workspace, ExportResult]) -> None:
    ws, _ = exported
    result = ws.exports.bench("loan-clf@3", batches=(4,), rounds=3, variants=("int8",), include_torch=False)
    (row,) = result.rows
    assert row.variant == "int8" and row.peak_memory_mb is not None and 20 < row.peak_memory_mb < 2000


def test_hardware_profiles_and_bad_settings_get_clear_errors(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    assert profile(None, None) == HardwareProfile("cpu-2core", 0.085, 2, "none")
    with pytest.raises(NotFoundError, match="no hardware profile 'gpu-box'"):
        ws.exports.bench("loan-clf@1", hardware="gpu-box")
    with pytest.raises(ConfigError, match="not a valid profile"):
        profile({"hardware": {"x": {"price_per_hour": 1.0}}}, "x")
    with pytest.raises(ConfigError, match="invalid"):
        profile({"hardware": {"x": {"price_per_hour": 1.0, "cores": 0}}}, "x")
    with pytest.raises(InvalidInputError, match="invalid benchmark settings"):
        ws.exports.bench("loan-clf@1", batches=(0,))
    with pytest.raises(InvalidInputError, match="quantile"):
        ws.exports.latest_latency_ms("loan-clf@1", quantile="p42")


def test_bench_results_name_the_int8_instruction_sets(tmp_path: Path) -> None:
    """Latencies from a VNNI CPU and an AVX2-only one are not comparable: the result says which."""
    from keelml.export.bench import machine

    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Test CPU\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert "(avx2, avx512f, avx512_vnni)" in machine(info)
    info.write_text("model name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert "no AVX2/AVX-512/VNNI/AMX reported" in machine(info)
