"""keelml: data-centric production ML, from a raw dataset to a monitored model.

>>> import keelml
>>> keelml.Workspace.__name__
'Workspace'
"""

from keelml import augment as _augment  # noqa: F401  (registers ws.augment)
from keelml import compress as _compress  # noqa: F401  (registers ws.compress)
from keelml import data as _data  # noqa: F401  (registers ws.datasets)
from keelml import export as _export  # noqa: F401  (registers ws.exports)
from keelml import features as _features  # noqa: F401  (registers ws.features)
from keelml import federated as _federated  # noqa: F401  (registers ws.federated)
from keelml import labeling as _labeling  # noqa: F401  (registers ws.labels)
from keelml import monitor as _monitor  # noqa: F401  (registers ws.monitor)
from keelml import privacy as _privacy  # noqa: F401  (registers ws.privacy)
from keelml import tracking as _tracking  # noqa: F401  (registers ws.models)
from keelml import train as _train  # noqa: F401  (registers ws.training)
from keelml.core.errors import KeelError
from keelml.core.refs import ArtifactRef, DatasetRef, ModelRef
from keelml.core.workspace import Workspace

__all__ = ["ArtifactRef", "DatasetRef", "KeelError", "ModelRef", "Workspace"]
__version__ = "0.1.0"
