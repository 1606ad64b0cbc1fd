from __future__ import annotations

from tests.cli.conftest import keel, wsdir  # noqa: F401  (the CLI fixtures, shared)
