"""`keel fl server` and three `keel fl client` processes on 127.0.0.1: Flower's SuperLink and SuperNodes,
plain and with secure aggregation (keelml's SecAgg+ and Flower's SecAgg+ workflow + client mods)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.federated.conftest import customers

# seconds for the whole run; ~25 s on a quiet machine (plain), far more on a loaded one: each message
# starts a ClientApp process on the SuperNode, and SecAgg+ sends 4 messages per round instead of 1
DEADLINE = {"off": 240.0, "keelml": 480.0, "flower": 480.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("secure_agg", ["off", "keelml", "flower"])
def test_server_and_three_client_processes_train_and_end_by_themselves(
    tmp_path: Path, secure_agg: str
) -> None:
    keel = [sys.executable, "-c", "from keelml.cli.main import run; run()"]
    frame = customers(300).drop(columns=["id", "region"])
    files = []
    for i in range(3):
        path = tmp_path / f"site{i}.csv"
        frame.iloc[i::3].to_csv(path, index=False)
        files.append(path)
    port = _free_port()
    out = tmp_path / "server"
    server = subprocess.Popen(
        [
            *keel,
            "fl",
            "server",
            "--clients",
            "3",
            "--rounds",
            "1",
            "--label",
            "label",
            "--port",
            str(port),
            "--out",
            str(out),
            "--connect-timeout",
            "90",
            "--round-timeout",
            "120",
            "--run-timeout",
            "300",
            "--secure-agg",
            secure_agg,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients = [
        subprocess.Popen(
            [
                *keel,
                "fl",
                "client",
                "--data",
                str(f),
                "--label",
                "label",
                "--server",
                f"127.0.0.1:{port}",
                "--port",
                str(_free_port()),
                "--max-wait",
                "5",
                "--timeout",
                str(DEADLINE[secure_agg]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    start = time.monotonic()
    try:
        stdout, stderr = server.communicate(timeout=DEADLINE[secure_agg])
        assert server.returncode == 0, stderr[-3000:]
        for c in clients:  # the SuperNodes give up once the SuperLink is gone
            c.wait(timeout=max(5.0, DEADLINE[secure_agg] + 30 - (time.monotonic() - start)))
    finally:
        for proc in [server, *clients]:
            if proc.poll() is None:
                proc.terminate()  # `keel fl client` stops its SuperNode on TERM
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    result = json.loads(stdout)
    assert result["secure_agg"] == secure_agg
    # the SuperLink's log counts each node's replies: plain rounds take 3 messages per node (statistics,
    # train, evaluate); SecAgg+ takes 4 stages (setup, share keys, masked input, unmask) for the train
    log = (out / "superlink.log").read_text(encoding="utf-8", errors="replace")
    replies = Counter(re.findall(r"Push replies from node_id=(\d+)", log))
    assert len(replies) == 3, log[-3000:]
    if secure_agg == "off":
        assert set(replies.values()) == {3}, replies
    else:
        assert min(replies.values()) >= 6, replies
    assert [r["round"] for r in result["rounds"]] == [1]
    assert [r["clients_aggregated"] for r in result["rounds"]] == [3.0]
    assert result["rounds"][-1]["test_accuracy"] > 0.6
    from keelml.train.tabular import TabularClassifier

    model = TabularClassifier.from_bytes(Path(result["model"]).read_bytes())
    assert model.classes == ("churn", "stay") and model.predict(frame.head(3))
