from __future__ import annotations

import logging

import numpy as np
import pytest

from keelml.core.errors import InvalidInputError
from keelml.federated.config import FederatedConfig
from keelml.federated.inprocess import run_inprocess
from keelml.federated.model import evaluate, model_bytes
from keelml.federated.rounds import NotEnoughClientsError
from tests.federated.conftest import customers, split

FAST = {"clients": 4, "rounds": 6, "hidden": (16,), "local_epochs": 2}


@pytest.mark.parametrize("strategy", ["fedavg", "fedprox", "fedadam"])
def test_every_strategy_learns(strategy: str) -> None:
    clients, test = split(customers(), 4)
    extra = {"server_learning_rate": 0.02} if strategy == "fedadam" else {}
    result = run_inprocess(clients, FederatedConfig(strategy=strategy, **FAST, **extra), test=test)  # type: ignore[arg-type]
    accuracy = [m.test["accuracy"] for m in result.history]
    assert len(accuracy) == 6 and accuracy[-1] > 0.8, accuracy
    assert result.history[-1].aggregated == 4


def test_fedprox_differs_from_fedavg_only_through_the_proximal_term() -> None:
    clients, test = split(customers(), 4)
    avg = run_inprocess(clients, FederatedConfig(strategy="fedavg", **FAST), test=test)
    prox0 = run_inprocess(clients, FederatedConfig(strategy="fedprox", proximal_mu=0.0, **FAST), test=test)
    prox = run_inprocess(clients, FederatedConfig(strategy="fedprox", proximal_mu=1.0, **FAST), test=test)
    np.testing.assert_array_equal(avg.weights[0], prox0.weights[0])
    assert not np.array_equal(avg.weights[0], prox.weights[0])


def test_runs_are_deterministic_for_a_seed_unless_the_noise_is_secure() -> None:
    clients, test = split(customers(), 4)
    seeded = FederatedConfig(**FAST, dropout=0.2, client_dp=(1.0, 0.3), secure_noise=False)
    a = run_inprocess(clients, seeded, test=test)
    b = run_inprocess(clients, seeded, test=test)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    # the default draws the server's noise from a CSPRNG keyed afresh: the seed cannot replay it
    secure = FederatedConfig(**FAST, dropout=0.2, client_dp=(1.0, 0.3))
    c = run_inprocess(clients, secure, test=test)
    d = run_inprocess(clients, secure, test=test)
    assert not np.array_equal(c.weights[0], d.weights[0])


def test_dropouts_are_logged_and_the_round_continues(caplog: pytest.LogCaptureFixture) -> None:
    clients, test = split(customers(), 6)
    with caplog.at_level(logging.WARNING, logger="keelml.federated"):
        result = run_inprocess(clients, FederatedConfig(**{**FAST, "clients": 6}, dropout=0.3), test=test)
    dropped = [len(m.dropped) for m in result.history]
    assert sum(dropped) > 0 and all(m.aggregated == 6 - len(m.dropped) for m in result.history)
    assert "dropped out" in caplog.text and "continuing with" in caplog.text
    assert result.history[-1].test["accuracy"] > 0.75


def test_too_many_dropouts_fail_the_round_with_a_clear_error(explains) -> None:  # type: ignore[no-untyped-def]
    clients, test = split(customers(), 3)
    with pytest.raises(NotEnoughClientsError) as info:
        run_inprocess(
            clients, FederatedConfig(**{**FAST, "clients": 3}, dropout=0.9, min_clients=3), test=test
        )
    explains(info.value, "sampled clients answered", "min_clients = 3")


def test_a_round_timeout_counts_late_clients_as_dropped(monkeypatch: pytest.MonkeyPatch, explains) -> None:  # type: ignore[no-untyped-def]
    import keelml.federated.inprocess as engine

    clients, test = split(customers(), 3)
    ticks = iter(range(0, 10_000, 50))
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(ticks)))  # every call: 50 s later
    with pytest.raises(NotEnoughClientsError) as info:
        run_inprocess(clients, FederatedConfig(**{**FAST, "clients": 3}, round_timeout=60), test=test)
    explains(info.value, "timed out")


def test_client_dp_clips_every_update() -> None:
    clients, test = split(customers(), 4)
    result = run_inprocess(clients, FederatedConfig(**FAST, client_dp=(0.05, 0.1)), test=test)
    assert all(m.clipped == 4 for m in result.history)  # updates are larger than 0.05


def test_a_poisoned_client_is_contained_by_robust_aggregation() -> None:
    clients, test = split(customers(), 7)
    frame = clients[0]._frame.copy()
    frame["label"] = np.where(frame["label"] == "churn", "stay", "churn")  # a client with flipped labels
    clients[0]._frame = frame
    config = {**FAST, "clients": 7, "local_epochs": 3}
    median = run_inprocess(clients, FederatedConfig(**config, robust="median"), test=test)
    assert median.history[-1].test["accuracy"] > 0.8


def test_secure_aggregation_in_process_matches_plain_aggregation() -> None:
    clients, test = split(customers(), 4)
    plain = run_inprocess(clients, FederatedConfig(**FAST), test=test)
    secure = run_inprocess(clients, FederatedConfig(**FAST, secure_agg="keelml"), test=test)
    for x, y in zip(plain.weights, secure.weights, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)
    six, test = split(customers(), 6)
    config = FederatedConfig(**{**FAST, "clients": 6}, secure_agg="keelml", dropout=0.2, min_clients=3)
    dropped = run_inprocess(six, config, test=test)
    assert any(m.dropped for m in dropped.history) and dropped.history[-1].test["accuracy"] > 0.75


def test_flower_secagg_needs_the_flower_engine(explains) -> None:  # type: ignore[no-untyped-def]
    clients, _ = split(customers(), 3)
    with pytest.raises(InvalidInputError) as info:
        run_inprocess(clients, FederatedConfig(clients=3, secure_agg="flower"))
    explains(info.value, "--engine flower")


def test_the_saved_model_loads_in_train_and_predicts_like_the_federated_weights() -> None:
    from keelml.train.tabular import TabularClassifier

    clients, test = split(customers(), 4)
    result = run_inprocess(clients, FederatedConfig(**FAST), test=test)
    model = TabularClassifier.from_bytes(
        model_bytes(result.weights, result.spec, hidden=(16,), label="label", seed=0)
    )
    frame = test.frame
    predicted = model.predict(frame)
    x = result.spec.preprocessing.transform(frame)
    ours = evaluate(result.weights, x, np.array([result.spec.classes.index(v) for v in test.labels]))
    assert np.mean(np.array(predicted) == np.array(test.labels)) == pytest.approx(ours["accuracy"])
