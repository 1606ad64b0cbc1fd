from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.federated.client import FederatedClient
from keelml.federated.inprocess import HoldoutSet


def customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A learnable table: two numeric features, a categorical one, a region column, a binary label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    score = 1.5 * x - z + np.where(plan == "pro", 1.0, 0.0) + rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": x,
            "z": z,
            "plan": plan,
            "region": region,
            "label": np.where(score > 0, "churn", "stay"),
        }
    )


def make_clients(frame: pd.DataFrame, parts: Sequence[np.ndarray[Any, Any]]) -> list[FederatedClient]:
    cols = ["x", "z", "plan", "label"]
    return [FederatedClient(f"c{i}", frame.iloc[p][cols], label="label") for i, p in enumerate(parts)]


def split(frame: pd.DataFrame, clients: int) -> tuple[list[FederatedClient], HoldoutSet]:
    test = frame.iloc[: len(frame) // 5]
    train = frame.iloc[len(frame) // 5 :].reset_index(drop=True)
    parts = np.array_split(np.arange(len(train)), clients)
    return make_clients(train, parts), HoldoutSet(test[["x", "z", "plan"]], test["label"].tolist())


@pytest.fixture
def fl_ws(tmp_path: Path) -> Iterable[Workspace]:
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add(
        "customers", pa.Table.from_pandas(customers(), preserve_index=False), label="label", id="id"
    )
    try:
        yield ws
    finally:
        ws.close()


class LoopbackGrid:
    """A Flower Grid that delivers messages straight to a ClientApp in this process (tests only).

    ``silent`` nodes never answer (a timeout); an exception in a handler becomes an error reply, as
    Flower's runtime does.
    """

    def __init__(self, app: Any, nodes: Sequence[int], silent: Sequence[int] = ()) -> None:
        self.app = app
        self.nodes = list(nodes)
        self.silent = set(silent)
        self.sent: list[Any] = []

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)

    def send_and_receive(self, messages: Iterable[Any], timeout: float | None = None) -> list[Any]:
        from flwr.app import Context, Error, Message, RecordDict
        from flwr.supercore.task_identity import TaskIdentity

        replies = []
        for msg in messages:
            self.sent.append(msg)
            node = msg.metadata.dst_node_id
            if node in self.silent:
                continue
            TaskIdentity.node_id = node
            context = Context(
                run_id=1,
                node_id=node,
                node_config={"partition-id": self.nodes.index(node)},
                state=RecordDict(),
                run_config={},
            )
            try:
                replies.append(self.app(msg, context))
            except Exception as exc:  # Flower's runtime turns any failure into an error reply
                replies.append(Message(Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=msg))
            finally:
                TaskIdentity.node_id = 0
        return replies


@pytest.fixture
def loopback() -> Any:
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.run_id = 1
    TaskIdentity.node_id = 0
    TaskIdentity.task_id = 1
    return LoopbackGrid
