"""Versioned datasets: Delta tables, digests, profiles, diffs (``ws.datasets``)."""

from keelml.data.store import DatasetInfo, DatasetStore, VersionInfo

__all__ = ["DatasetInfo", "DatasetStore", "VersionInfo"]
