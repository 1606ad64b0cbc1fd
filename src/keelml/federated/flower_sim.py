"""Flower's simulation engine (``run_simulation``, Ray) running the same rounds as the in-process engine.

For large runs (many clients, Ray's process pool). Client ``i`` is virtual SuperNode partition ``i``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from keelml.core.errors import BackendUnavailableError
from keelml.federated.client import FederatedClient
from keelml.federated.config import FederatedConfig
from keelml.federated.inprocess import EngineResult, HoldoutSet, RoundCallback


def run_flower_simulation(
    clients: Sequence[FederatedClient],
    config: FederatedConfig,
    *,
    test: HoldoutSet | None = None,
    on_round: RoundCallback | None = None,
    cpus_per_client: float = 1.0,
) -> EngineResult:
    import warnings

    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from keelml.federated import flower_apps

    pool = list(clients)

    def load(context: Any) -> FederatedClient:
        return pool[int(context.node_config["partition-id"])]

    box: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Any, context: Any) -> None:
        try:
            if config.secure_agg != "off":
                from keelml.federated.flower_secagg import serve_secagg_rounds

                box["result"] = serve_secagg_rounds(grid, context, config, test=test, on_round=on_round)
            else:
                box["result"] = flower_apps.serve_rounds(grid, config, test=test, on_round=on_round)
        except BaseException as exc:  # re-raised below: run_simulation only logs ServerApp errors
            box["error"] = exc

    if config.secure_agg != "off":
        from keelml.federated.flower_secagg import make_secagg_client_app

        client_app = make_secagg_client_app(load, config.secure_agg)
    else:
        client_app = flower_apps.make_client_app(load)
    backend: Any = {
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
        "init_args": {"num_cpus": max(1, os.cpu_count() or 1), "include_dashboard": False},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        logging.getLogger("flwr").setLevel(logging.WARNING)
        run_simulation(server, client_app, num_supernodes=len(pool), backend_config=backend)
    if "error" in box:
        raise box["error"]
    if "result" not in box:
        raise BackendUnavailableError(
            "Flower's simulation ended without a result",
            received="no rounds completed (see Flower's log above)",
            fix="run with --engine inprocess, or check that Ray can start on this machine",
        )
    result: EngineResult = box["result"]
    return result
