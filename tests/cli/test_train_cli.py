from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import Result
from tests.train.conftest import loans
from tests.train.test_text import make_tiny_base

Keel = Callable[..., Result]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with slices and gates, and two registered versions trained through the CLI."""
    from keelml.cli.main import run

    base = tmp_path_factory.mktemp("train_cli")
    root = base / "ws"
    assert run(["init", str(root)]) == 0
    pq.write_table(loans(), base / "loans.parquet")
    assert (
        run(
            [
                "-w",
                str(root),
                "data",
                "add",
                "loans",
                str(base / "loans.parquet"),
                "--label",
                "label",
                "--id",
                "id",
            ]
        )
        == 0
    )
    with (root / "keel.toml").open("a") as fh:
        fh.write(
            "\n[slices]\nnorth = 'region == \"north\"'\n\n[gates]\nmin_metric = { test_accuracy = 0.99 }\n"
        )
    config = base / "train.toml"
    config.write_text('data = "loans@1"\nname = "loan-clf"\nmodel = "logreg"\nepochs = 3\n')
    assert run(["-w", str(root), "train", "tabular", "--config", str(config)]) == 0
    assert (
        run(["-w", str(root), "train", "tabular", "--data", "loans", "--name", "loan-clf", "--epochs", "3"])
        == 0
    )
    return root


def test_train_prints_metrics_per_slice_and_registers(trained: Path, keel: Keel) -> None:
    result = keel("-w", trained, "models", "show", "loan-clf@1", "--json")
    info = json.loads(result.out)
    assert info["version"] == 1 and info["dataset"] == "loans@1"
    assert "slice_north_accuracy" in info["metrics"]
    listed = keel("-w", trained, "models", "list")
    assert "loan-clf" in listed.out and "loans@1" in listed.out


def test_train_json_output(trained: Path, keel: Keel) -> None:
    result = keel(
        "-w", trained, "train", "tabular", "--data", "loans", "--epochs", "2", "--no-register", "--json"
    )
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert payload["model"] is None and payload["dataset"] == "loans@1"
    assert set(payload["evaluation"]["slices"]) == {"north"}


def test_promotion_refused_then_forced_then_rolled_back(trained: Path, keel: Keel) -> None:
    refused = keel("-w", trained, "models", "promote", "loan-clf@1", "--alias", "production")
    assert refused.code == 9 and "failed" in refused.out and "min test_accuracy" in refused.err
    assert keel("-w", trained, "models", "promote", "loan-clf@1", "--force").code == 4
    for version in ("1", "2"):
        forced = keel(
            "-w", trained, "models", "promote", f"loan-clf@{version}", "--force", "--reason", "shadow test"
        )
        assert forced.code == 0, forced.err
    assert "version 2, was version 1 (forced: shadow test)" in forced.out
    back = keel("-w", trained, "models", "rollback", "loan-clf", "--alias", "production")
    assert back.code == 0 and "version 1" in back.out
    card = keel("-w", trained, "models", "card", "loan-clf@production", "--html", trained / "card.html")
    assert card.code == 0
    assert "## Limitations" in card.out and "Gate failed: min test_accuracy" in card.out
    assert "dataset:loans@1 → model:loan-clf@1 (trained)" in card.out
    assert "slice north" in card.out and "reason recorded: shadow test" in card.out
    assert "<h2>Limitations</h2>" in (trained / "card.html").read_text()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("models", "promote", "loan-clf@9"), 3, "no registered model version"),
        (("models", "promote", "ghost@1"), 3, "no registered model version"),
        (("models", "promote", "loan-clf@1", "--alias", "prod"), 4, "unknown alias"),
        (("train", "tabular", "--data", "nope"), 3, "no dataset named"),
        (("train", "tabular", "--data", "loans", "--epochs", "0"), 4, "epochs must be at least 1"),
        (("train", "tabular", "--data", "loans", "--label", "missing"), 4, "label column 'missing'"),
        (("train", "tabular"), 4, "no dataset to train on"),
    ],
)
def test_bad_inputs_are_clear_errors(
    trained: Path, keel: Keel, args: tuple[str, ...], code: int, message: str
) -> None:
    result = keel("-w", trained, *args)
    assert result.code == code, result.err
    assert message in result.err


def test_config_file_with_unknown_keys_is_refused(trained: Path, keel: Keel, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('data = "loans"\nlayers = 3\n')
    result = keel("-w", trained, "train", "tabular", "--config", bad)
    assert result.code == 6 and "unknown keys: layers" in result.err
    assert keel("-w", trained, "train", "tabular", "--config", tmp_path / "none.toml").code == 3


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny-bert"))


def test_train_text_with_a_local_base_registers_the_adapter(
    trained: Path, keel: Keel, tmp_path: Path, tiny_base: Path
) -> None:
    from tests.train.test_text import reviews

    pq.write_table(reviews(80), tmp_path / "reviews.parquet")
    assert (
        keel("-w", trained, "data", "add", "reviews", tmp_path / "reviews.parquet", "--label", "score").code
        == 0
    )
    result = keel(
        "-w", trained, "train", "text", "--data", "reviews", "--text", "review", "--base", tiny_base,
        "--peft", "lora", "--epochs", "2", "--name", "review-clf",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "trainable parameters" in result.out and "registered review-clf@1" in result.out
    import mlflow

    folder = mlflow.artifacts.download_artifacts("models:/review-clf/1")
    requirements = (Path(folder) / "requirements.txt").read_text()
    assert "peft==" in requirements and "transformers==" in requirements
    missing = keel(
        "-w", trained, "train", "text", "--data", "reviews", "--text", "review", "--base", "org/not-here"
    )
    assert missing.code == 3 and "not available offline" in missing.err
