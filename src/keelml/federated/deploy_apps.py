"""The ClientApps a SuperNode loads when ``keel fl server --secure-agg keelml|flower`` runs.

The server names the ClientApp in the app it submits (``flwr run``), so a ``keel fl client`` needs no
secure-aggregation option: it runs whatever protocol the server's app asks for. Both apps read the
node's own data file, as the plain app does; only masked updates leave the node (train handler only).
"""

from __future__ import annotations

from keelml.federated.flower_apps import load_node_data
from keelml.federated.flower_secagg import make_secagg_client_app

keelml_secagg_client_app = make_secagg_client_app(load_node_data, "keelml")
flower_secagg_client_app = make_secagg_client_app(load_node_data, "flower")
