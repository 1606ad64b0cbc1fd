"""Federated learning on Flower: apps, strategies, secure aggregation, client-side preprocessing.

``ws.federated.simulate(...)`` runs here; torch and flwr are imported only when a run starts.
"""

from keelml.federated import api as _api  # noqa: F401  (registers ws.federated)
from keelml.federated.api import ClientPartition, Federated, FederatedRun
from keelml.federated.config import FederatedConfig, Partition

__all__ = ["ClientPartition", "Federated", "FederatedConfig", "FederatedRun", "Partition"]
