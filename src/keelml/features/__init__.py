"""Feature store: definitions in Python, point-in-time retrieval, online stores, parity.

``ws.features`` (registered here) applies the definitions named in keel.toml, builds training sets
with point-in-time correct joins (DuckDB ASOF JOIN), materializes the latest values to the online
store (SQLite embedded, Redis for teams) and serves them in-process.
"""

from keelml.features.compute import FeatureFunctionError
from keelml.features.definitions import (
    DerivedFeature,
    Entity,
    FeatureNameConflictError,
    FeatureRepo,
    FeatureView,
    on_demand,
)
from keelml.features.materialize import MaterializeResult, ViewMaterialization
from keelml.features.offline import JoinMemoryError, MissingTimestampError, point_in_time
from keelml.features.online import OnlineStore, RedisOnlineStore, SQLiteOnlineStore, open_online_store
from keelml.features.parity import Mismatch, ParityReport
from keelml.features.registry import Registered
from keelml.features.scan import ParquetFiles
from keelml.features.serving import OnlineFeatures
from keelml.features.store import ApplyResult, FeatureStore

__all__ = [
    "ApplyResult",
    "DerivedFeature",
    "Entity",
    "FeatureFunctionError",
    "FeatureNameConflictError",
    "FeatureRepo",
    "FeatureStore",
    "FeatureView",
    "JoinMemoryError",
    "MaterializeResult",
    "Mismatch",
    "MissingTimestampError",
    "OnlineFeatures",
    "OnlineStore",
    "ParityReport",
    "ParquetFiles",
    "RedisOnlineStore",
    "Registered",
    "SQLiteOnlineStore",
    "ViewMaterialization",
    "on_demand",
    "open_online_store",
    "point_in_time",
]
