from __future__ import annotations

import json
from collections.abc import Callable

from keelml import Workspace
from keelml.export import ExportResult
from tests.cli.conftest import Result

Keel = Callable[..., Result]


def test_keel_export_and_bench_from_the_command_line(
    exported: tuple[Workspace, ExportResult], keel: Keel
) -> None:
    ws, _ = exported
    done = keel(
        "-w", ws.root, "export", "loan-clf@1", "--variant", "fp16", "--accuracy-budget", "0.02", "--json"
    )
    assert done.code == 0, done.err
    payload = json.loads(done.out)
    assert payload["exporter"] == "dynamo" and payload["variants"][0]["variant"] == "fp16"
    assert payload["variants"][0]["within_budget"] is True
    table = keel("-w", ws.root, "export", "loan-clf@1", "--variant", "fp16")
    assert table.code == 0 and "winner: fp16" in table.out and "dynamo exporter" in table.out
    bench = keel("-w", ws.root, "bench", "loan-clf@1", "--variant", "int8", "--batch", "1,4", "--rounds", "3",
                 "--no-torch", "--no-memory", "--hardware", "tiny-box", "--json")  # fmt: skip
    assert bench.code == 0, bench.err
    rows = json.loads(bench.out)["rows"]
    assert {(r["variant"], r["batch_size"]) for r in rows} >= {("int8", 1), ("int8", 4)}
    assert all(r["cost_per_million"] > 0 and r["calls"] == 3 for r in rows)
    shown = keel("-w", ws.root, "bench", "loan-clf@3", "--variant", "int8", "--batch", "1", "--rounds", "3",
                 "--no-torch", "--no-memory")  # fmt: skip
    assert shown.code == 0 and "hardware cpu-2core: 2 threads" in shown.out


def test_bad_cli_inputs_get_documented_exit_codes(
    exported: tuple[Workspace, ExportResult], keel: Keel
) -> None:
    ws, _ = exported
    unknown = keel("-w", ws.root, "export", "loan-clf@1", "--variant", "int3")
    assert unknown.code == 4 and "unknown export variant int3" in unknown.err
    missing = keel("-w", ws.root, "export", "nope@1")
    assert missing.code == 3 and "no registered model version" in missing.err
    batch = keel("-w", ws.root, "bench", "loan-clf@1", "--batch", "one")
    assert batch.code == 4 and "--batch takes integers" in batch.err
    calibration = keel(
        "-w", ws.root, "export", "loan-clf@1", "--variant", "int8-static", "--calibration", "x.csv"
    )
    assert calibration.code == 3 and "no file at x.csv (given to --calibration)" in calibration.err
