"""Secure aggregation on Flower's workflows (Flower's SecAgg+ and keelml's), run on an in-process grid."""

from __future__ import annotations

import numpy as np
import pytest

from keelml.federated.config import FederatedConfig
from keelml.federated.flower_secagg import make_secagg_client_app, serve_secagg_rounds
from keelml.federated.inprocess import run_inprocess
from keelml.federated.secagg.flower_local import local_grid
from tests.federated.conftest import customers, split


@pytest.mark.parametrize("protocol", ["flower", "keelml"])
def test_secure_rounds_on_flower_workflows_match_plain_fedavg(protocol: str) -> None:
    from flwr.app import Context, RecordDict

    clients, test = split(customers(), 5)
    app = make_secagg_client_app(lambda ctx: clients[int(ctx.node_id) - 1], protocol)
    grid = local_grid(app, [1, 2, 3, 4, 5])
    config = FederatedConfig(clients=5, rounds=2, hidden=(8,), secure_agg=protocol)  # type: ignore[arg-type]
    result = serve_secagg_rounds(grid, Context(1, 0, {}, RecordDict(), {}), config, test=test)
    assert [m.aggregated for m in result.history] == [5, 5]
    plain = run_inprocess(
        clients, FederatedConfig(clients=5, rounds=2, hidden=(8,), max_update_norm=8.0), test=test
    )
    # Flower weighs by capped example counts and quantizes to 2**22 levels over [-8, 8]; keelml's weights
    # are the same counts, encoded with 24 fractional bits
    tolerance = 1e-3 if protocol == "flower" else 1e-5
    for ours, theirs in zip(result.weights, plain.weights, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=tolerance)


def test_flower_secagg_never_sees_an_update_outside_its_range() -> None:
    from keelml.federated.flower_secagg import FLOWER_CLIPPING_RANGE, _secagg_config

    assert _secagg_config(FederatedConfig(clients=3, secure_agg="flower")).clip == FLOWER_CLIPPING_RANGE
    assert _secagg_config(FederatedConfig(clients=3, secure_agg="flower", client_dp=(20.0, 1.0))).clip == 8.0
    assert _secagg_config(FederatedConfig(clients=3, secure_agg="keelml")).clip is None
