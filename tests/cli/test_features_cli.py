"""`keel features ...` end to end on a workspace with definitions in keel.toml."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from keelml import Workspace
from tests.cli.conftest import Result
from tests.features.conftest import T0, orders_table

DEFS = """
import datetime as dt
import pyarrow.compute as pc
from keelml.features import DerivedFeature, Entity, FeatureView

customer = Entity("customer", keys=("customer_id",))
orders = FeatureView("orders_latest", entity=customer, source="orders", timestamp="ts",
                     ttl=dt.timedelta(days=3), features=("amount", "items"))
per_item = DerivedFeature("amount_per_item", lambda b: pc.divide(b["amount"], pc.cast(b["items"], "double")),
                          inputs=("amount", "items"))
"""
NOW = (T0 + dt.timedelta(days=29)).isoformat()


@pytest.fixture
def fdir(wsdir: Path) -> Path:
    with Workspace.open(wsdir) as ws:
        ws.datasets.add("orders", orders_table(), time="ts", id="order_id")
        rows = pa.table(
            {
                "customer_id": [1, 2, 3],
                "event_time": pa.array(
                    [T0 + dt.timedelta(days=d) for d in (5, 10, 40)], pa.timestamp("us", "UTC")
                ),
            }
        )
        ws.datasets.add("requests", rows, time="event_time")
    (wsdir / "feature_repo.py").write_text(DEFS)
    with (wsdir / "keel.toml").open("a") as fh:
        fh.write('\n[features]\ndefinitions = "feature_repo.py"\n')
    return wsdir


def test_apply_list_retrieve_materialize_get_parity(fdir: Path, keel: Callable[..., Result]) -> None:
    first = keel("-w", fdir, "features", "apply", "--json")
    assert first.code == 0, first.err
    assert [n["status"] for n in json.loads(first.out)] == ["new", "new"]
    assert keel("-w", fdir, "features", "apply").code == 0
    listed = keel("-w", fdir, "features", "list")
    assert "amount_per_item" in listed.out and "derived" in listed.out
    got = keel("-w", fdir, "features", "retrieve", "requests", "-f", "amount,amount_per_item", "-o", "train")
    assert got.code == 0, got.err
    assert "train@1" in got.out
    fast = keel("-w", fdir, "features", "retrieve", "requests", "-f", "amount,amount_per_item", "-o", "train",
                "--index")  # fmt: skip
    assert fast.code == 0, fast.err
    assert "train@1" in fast.out  # the same rows, so the same version (identical data is not re-added)
    mat = keel("-w", fdir, "features", "materialize", "--now", NOW, "--json")
    assert mat.code == 0 and json.loads(mat.out)[0]["entities_written"] == 20
    one = keel(
        "-w", fdir, "features", "get", "-e", "customer_id=1", "-f", "amount,amount_per_item", "--now", NOW
    )
    assert one.code == 0 and set(json.loads(one.out)) == {"amount", "amount_per_item"}
    parity = keel("-w", fdir, "features", "check-parity", "--now", NOW)
    assert parity.code == 0 and "parity ok" in parity.out


def test_parity_failure_exits_9(fdir: Path, keel: Callable[..., Result]) -> None:
    assert keel("-w", fdir, "features", "materialize", "--now", NOW).code == 0
    later = (T0 + dt.timedelta(days=31)).isoformat()  # newer rows exist that were not materialized
    result = keel("-w", fdir, "features", "check-parity", "--now", later, "--json")
    assert result.code == 9
    assert json.loads(result.out)["ok"] is False


def test_bad_inputs_are_errors_not_tracebacks(fdir: Path, wsdir: Path, keel: Callable[..., Result]) -> None:
    no_ts = keel(
        "-w", fdir, "features", "retrieve", "orders", "-f", "amount", "-o", "x", "--timestamp", "when"
    )
    assert no_ts.code == 4 and "timestamp" in no_ts.err and "Traceback" not in no_ts.err
    unknown = keel("-w", fdir, "features", "get", "-e", "customer_id=1", "-f", "nope")
    assert unknown.code == 4 and "unknown feature" in unknown.err
    (fdir / "keel.toml").write_text(
        (fdir / "keel.toml").read_text().replace("sqlite:///.keel/online.db", "redis://127.0.0.1:1/0")
    )
    down = keel("-w", fdir, "features", "materialize")
    assert down.code == 7 and "Redis" in down.err


def test_without_definitions_the_config_error_says_how(wsdir: Path, keel: Callable[..., Result]) -> None:
    result = keel("-w", wsdir, "features", "apply")
    assert result.code == 6 and "definitions" in result.err


def test_keel_toml_turns_the_key_index_on_and_the_flag_overrides_it(
    fdir: Path, keel: Callable[..., Result]
) -> None:
    index_dir = fdir / ".keel" / "features" / "index"
    args = ("-w", fdir, "features", "retrieve", "requests", "-f", "amount")
    assert keel(*args, "-o", "plain").code == 0 and not index_dir.exists()  # default: the join
    toml = (fdir / "keel.toml").read_text()
    (fdir / "keel.toml").write_text(toml.replace("[features]\n", "[features]\nindex = true\n"))
    assert keel(*args, "-o", "off", "--no-index").code == 0 and not index_dir.exists()
    on = keel(*args, "-o", "on")
    assert on.code == 0, on.err
    assert len(list(index_dir.iterdir())) == 1  # keel.toml's switch built the view's index
    (fdir / "keel.toml").write_text(toml.replace("[features]\n", '[features]\nindex = "yes"\n'))
    bad = keel(*args, "-o", "bad")
    assert bad.code != 0 and "[features] index in keel.toml must be true or false" in bad.err
