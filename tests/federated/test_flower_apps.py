"""keelml's ServerApp rounds and ClientApp handlers over Flower messages, delivered in-process."""

from __future__ import annotations

from typing import Any

import pytest

from keelml.federated.config import FederatedConfig
from keelml.federated.flower_apps import make_client_app, serve_rounds
from keelml.federated.preprocessing import SchemaMismatchError
from keelml.federated.rounds import NotEnoughClientsError
from tests.federated.conftest import customers, split

NODES = [101, 2**63 + 7, 303, 404]  # Flower node ids are unsigned 64-bit


def _app(clients: list[Any]) -> Any:
    return make_client_app(lambda ctx: clients[int(ctx.node_config["partition-id"])])


def test_rounds_over_flower_messages_learn_and_send_only_updates(loopback: Any) -> None:
    clients, test = split(customers(), 4)
    grid = loopback(_app(clients), NODES)
    config = FederatedConfig(clients=4, rounds=3, hidden=(16,), local_epochs=2)
    result = serve_rounds(grid, config, test=test, connect_timeout=1)
    assert [m.aggregated for m in result.history] == [4, 4, 4]
    assert result.history[-1].test["accuracy"] > 0.75
    kinds = [m.metadata.message_type for m in grid.sent]
    assert kinds == ["query"] * 4 + ["train"] * 12  # central test set: no evaluate messages


def test_without_a_test_set_the_final_model_is_evaluated_on_the_clients(loopback: Any) -> None:
    clients, _ = split(customers(), 4)
    grid = loopback(_app(clients), NODES)
    result = serve_rounds(grid, FederatedConfig(clients=4, rounds=2, hidden=(8,)), connect_timeout=1)
    assert result.history[0].test == {} and 0 < result.history[-1].test["accuracy"] <= 1
    assert [m.metadata.message_type for m in grid.sent].count("evaluate") == 4


def test_a_silent_client_is_a_dropout_and_the_round_continues(loopback: Any) -> None:
    clients, test = split(customers(), 4)
    config = FederatedConfig(clients=4, rounds=2, hidden=(8,), round_timeout=1)
    grid = loopback(_app(clients), NODES)
    original = grid.send_and_receive

    def lose_node_303(messages: Any, timeout: float | None = None) -> list[Any]:
        return [
            r
            for r in original(messages, timeout)
            if not (r.metadata.src_node_id == 303 and r.metadata.message_type == "train")
        ]

    grid.send_and_receive = lose_node_303  # type: ignore[method-assign]
    result = serve_rounds(grid, config, test=test, connect_timeout=1)
    assert [m.dropped for m in result.history] == [("node 303 (timed out)",)] * 2
    assert all(m.aggregated == 3 for m in result.history)


def test_a_client_with_a_mismatched_schema_stops_the_run_with_its_reason(
    loopback: Any, explains: Any
) -> None:
    clients, test = split(customers(), 4)
    clients[2]._frame = clients[2]._frame.drop(columns="z")
    clients[2].features = ["x", "z", "plan"]
    grid = loopback(_app(clients), NODES)
    with pytest.raises(SchemaMismatchError) as info:
        serve_rounds(grid, FederatedConfig(clients=4, rounds=1), test=test, connect_timeout=1)
    explains(info.value, f"client node {NODES[2]}", "missing z")


def test_too_few_connected_clients_time_out(loopback: Any, explains: Any) -> None:
    clients, test = split(customers(), 4)
    grid = loopback(_app(clients), NODES[:2])
    with pytest.raises(NotEnoughClientsError) as info:
        serve_rounds(grid, FederatedConfig(clients=4, rounds=1), test=test, connect_timeout=0.3)
    explains(info.value, "only 2 of 4 clients connected")
