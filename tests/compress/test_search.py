from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings, PruneConfig
from keelml.compress.pareto import Candidate, choose
from keelml.core.errors import ColumnNotFoundError, InvalidInputError, MissingDependencyError, NotFoundError
from tests.compress.conftest import SLICES

FIT = FitSettings(epochs=15, patience=5, learning_rate=1e-2)
EVERY_VARIANT = [
    "parent (torch fp32)", "fp32 (onnx)", "int8 (onnx)", "pruned (torch fp32)", "prune+int8 (onnx)",
    "distilled (torch fp32)", "distill+int8 (onnx)",
]  # fmt: skip


def test_search_measures_every_variant_and_marks_the_fastest_within_budget(
    compress_ws: Workspace, tmp_path: Path
) -> None:
    ws = compress_ws
    result = ws.compress.run(
        "loan-clf@1", accuracy_budget=0.05, distill_config=DistillConfig(hidden=(16,), fit=FIT),
        prune_config=PruneConfig(amount=0.5, fit=FIT), slices=SLICES, rounds=3, report=tmp_path / "r.html",
    )  # fmt: skip
    labels = [c.label for c in result.candidates]
    assert labels == EVERY_VARIANT
    assert all(
        c.p50_ms is not None and c.size_bytes and c.cost_per_million is not None for c in result.candidates
    )
    assert result.front and set(result.front) <= set(labels)
    winner = result.winner
    assert winner is not None and winner.eligible and winner.accuracy_drop <= 0.05
    eligible = [c for c in result.candidates if c.eligible and c.accuracy_drop <= 0.05]
    assert winner.p50_ms == min(c.p50_ms for c in eligible if c.p50_ms is not None)
    info = ws.models.show("loan-clf@compressed")
    assert f"{info.name}@{info.version}" == winner.spec
    assert '"accuracy_budget": 0.05' in info.tags["keel.compressed"]
    page = (tmp_path / "r.html").read_text()
    assert "Plotly.newPlot" in page and "<script src=" not in page and "prune+int8 (onnx)" in page
    assert "WINNER" in result.markdown()


def test_nothing_over_budget_is_ever_marked() -> None:
    over = Candidate("distill+int8", "m@5", 0.80, 0.10, 0.1, 0.2, 10, 0.01, 5)
    parent = Candidate("parent", "m@1", 0.90, 0.0, 5.0, 6.0, 100, 1.0, 50, eligible=False)
    assert choose([over, parent], budget=0.01, latency_target_ms=None) is None
    ok = Candidate("int8", "m@3", 0.895, 0.005, 1.0, 1.2, 30, 0.1, 50)
    assert choose([over, parent, ok], budget=0.01, latency_target_ms=None) is ok
    assert choose([over, parent, ok], budget=0.01, latency_target_ms=0.5) is None


def test_a_search_where_every_variant_misses_the_budget_marks_none(compress_ws: Workspace) -> None:
    ws = compress_ws
    before = ws.models.show("loan-clf@compressed").version if _has_alias(ws) else None
    tiny = DistillConfig(hidden=(1,), fit=FitSettings(epochs=1, learning_rate=1e-5))
    result = ws.compress.run("loan-clf@1", accuracy_budget=0.0, latency_target_ms=1e-6, methods=["distill"],
                             distill_config=tiny, rounds=3)  # fmt: skip
    assert result.winner is None
    assert "WINNER" not in result.markdown()
    after = ws.models.show("loan-clf@compressed").version if _has_alias(ws) else None
    assert after == before


def _has_alias(ws: Workspace) -> bool:
    try:
        ws.models.show("loan-clf@compressed")
    except KeyError:
        return False
    return True


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [({"accuracy_budget": 1.5}, InvalidInputError, "accuracy budget"),
     ({"latency_target_ms": 0}, InvalidInputError, "latency target"),
     ({"methods": ["shrink"]}, InvalidInputError, "unknown compression method"),
     ({"hardware": "gpu-9000"}, NotFoundError, "no hardware profile 'gpu-9000'"),
     ({"batch_size": 0}, InvalidInputError, "invalid benchmark settings"),
     ({"seq": -1}, InvalidInputError, "invalid benchmark settings"),
     ({"rounds": 2}, InvalidInputError, "rounds >= 3"),
     ({"transfer": pa.table({"x": [1.0]})}, ColumnNotFoundError, "transfer rows lack input columns"),
     ({"spec": "review-clf@1", "seq": 128}, InvalidInputError, "longer than review-clf@1 can read")],
)  # fmt: skip
def test_bad_search_settings_are_refused_before_any_work(
    compress_ws: Workspace, kw: dict[str, object], error: type[Exception], match: str
) -> None:
    before = len(compress_ws.models.list())
    kw = dict(kw)
    spec = str(kw.pop("spec", "loan-clf@1"))
    with pytest.raises(error, match=match):
        compress_ws.compress.run(spec, **kw)  # type: ignore[arg-type]
    assert len(compress_ws.models.list()) == before  # nothing exported, trained or registered


def test_a_missing_plotly_is_reported_before_any_work(
    compress_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # what `import plotly` sees when it is not installed
    before = len(compress_ws.models.list())
    with pytest.raises(MissingDependencyError, match="keelml\\[export\\]"):
        compress_ws.compress.run("loan-clf@1", methods=["quantize"], report=tmp_path / "r.html")
    assert len(compress_ws.models.list()) == before and not (tmp_path / "r.html").exists()


def test_cli_prints_the_pareto_table_and_json(
    compress_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from keelml.cli.main import run

    ws = compress_ws
    args = ["-w", str(ws.root), "compress", "loan-clf@1", "--methods", "quantize", "--rounds", "3",
            "--accuracy-budget", "0.02", "-o", str(tmp_path / "c.html")]  # fmt: skip
    assert run(args) == 0
    shown = capsys.readouterr().out
    assert "int8 (onnx)" in shown and "winner:" in shown and "alias `compressed`" in shown
    assert (tmp_path / "c.html").is_file()
    assert run([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["winner"]["accuracy_drop"] <= 0.02 and data["alias"] == "compressed"
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--methods", "shrink"]) == 4
    assert "unknown compression method" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "compress", "nope"]) == 3
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--prune-steps", "0"]) == 4
    assert "steps >= 1" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--ema-decay", "1"]) == 4
    assert "ema_decay=1.0" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--hardware", "gpu-9000"]) == 3
    assert "no hardware profile 'gpu-9000'" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--teacher-layers", "0,x"]) == 4
    assert "--teacher-layers takes comma-separated integers" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--transfer", str(tmp_path / "no.csv")]) == 3
    assert "given to --transfer" in capsys.readouterr().err
    assert run(["-w", str(ws.root), "compress", "loan-clf@1", "--alpha", "2"]) == 4
    assert "alpha" in capsys.readouterr().err


def test_cli_distillation_options_reach_the_student(compress_ws: Workspace, tmp_path: Path) -> None:
    """--temperature, --alpha, --learning-rate, --seed and --transfer rows are recorded on the student."""
    from keelml.cli.main import run

    ws = compress_ws
    rows = ws.datasets.read("loans").drop_columns(["label"]).slice(0, 50)
    pq.write_table(rows, tmp_path / "unlabeled.parquet")
    args = ["-w", str(ws.root), "compress", "loan-clf@1", "--methods", "distill", "--rounds", "3",
            "--hidden", "8", "--epochs", "2", "--temperature", "3", "--alpha", "0.7", "--learning-rate",
            "0.005", "--seed", "4", "--transfer", str(tmp_path / "unlabeled.parquet"), "--accuracy-budget",
            "0.5", "-o", str(tmp_path / "d.html")]  # fmt: skip
    assert run(args) == 0
    student = max(ws.models.versions("loan-clf"), key=lambda v: v.version)
    assert student.tags.get("keel.variant") == "distilled"
    p = ws.models.card(f"loan-clf@{student.version}").params  # MLflow keeps params as text
    assert (p["temperature"], p["alpha"], p["learning_rate"], p["seed"], p["transfer_rows"]) == (
        "3.0", "0.7", "0.005", "4", "50")  # fmt: skip


def test_text_search_quantizes_prunes_and_distils_a_transformer(
    compress_ws: Workspace, tmp_path: Path
) -> None:
    """The text path of the search: fused ONNX exports, a pruned and a distilled encoder, benchmarked at --seq."""
    fit = FitSettings(epochs=1, batch_size=16)
    result = compress_ws.compress.run(
        "review-clf@1", accuracy_budget=0.5, methods=["quantize", "prune", "distill"], rounds=3, seq=16,
        distill_config=DistillConfig(layers=1, fit=fit), prune_config=PruneConfig(amount=0.5, fit=fit),
        report=tmp_path / "text.html", mark_winner=False,
    )  # fmt: skip
    labels = [c.label for c in result.candidates]
    assert labels == EVERY_VARIANT
    assert all(c.p50_ms is not None and c.p50_ms > 0 for c in result.candidates)
    by_label = {c.label: c for c in result.candidates}
    parent = by_label["parent (torch fp32)"]
    # Pruning halves heads and feed-forward units; the 1-layer student drops a layer: both really shrink.
    assert by_label["pruned (torch fp32)"].parameters < parent.parameters
    assert by_label["distilled (torch fp32)"].parameters < parent.parameters
    stored = {c.spec: compress_ws.models.show(c.spec) for c in result.candidates}
    assert stored[by_label["distill+int8 (onnx)"].spec].tags["keel.variant"] == "int8"
    assert result.winner is not None and result.winner.eligible  # budget 0.5: something qualifies
    assert "Plotly.newPlot" in (tmp_path / "text.html").read_text()
