"""Federated learning on Flower: apps, strategies, secure aggregation, client-side preprocessing.

``ws.federated.simulate(...)`` runs here. Nothing heavy is imported by ``import keelml``: pandas,
torch and flwr load when a run starts, and the public names below on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keelml.core.lazy import lazy_names
from keelml.core.workspace import Workspace, workspace_accessor

if TYPE_CHECKING:
    from keelml.federated.api import ClientPartition, Federated, FederatedRun
    from keelml.federated.config import FederatedConfig, Partition

_HOME = {"ClientPartition": "api", "Federated": "api", "FederatedRun": "api", "FederatedConfig": "config",
         "Partition": "config"}  # fmt: skip


__getattr__ = lazy_names(__name__, _HOME)


@workspace_accessor("federated")
def _federated(ws: Workspace) -> Federated:
    from keelml.federated.api import Federated

    return Federated(ws)


__all__ = ["ClientPartition", "Federated", "FederatedConfig", "FederatedRun", "Partition"]
