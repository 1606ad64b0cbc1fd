"""The MLflow backend: the workspace's tracking URI, a reachability check, the client.

``sqlite:///.keel/mlflow.db`` (the default) is resolved against the workspace root; an MLflow
server (``http(s)://``) works the same. mlflow is imported only here, inside functions.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from keelml.core.config import resolve_sqlite_url
from keelml.core.errors import BackendUnavailableError, missing_dependency
from keelml.core.workspace import Workspace

PROBE_TIMEOUT_S = 3.0


def tracking_uri(ws: Workspace) -> str:
    return resolve_sqlite_url(ws.config.backends.tracking, ws.root)


def artifact_location(ws: Workspace) -> str | None:
    """Where experiments of an embedded backend keep artifacts (a server decides its own)."""
    uri = tracking_uri(ws)
    if uri.startswith(("http://", "https://")):
        return None
    return (ws.storage_root / "mlartifacts").resolve().as_uri()


def _unreachable(uri: str, why: str) -> BackendUnavailableError:
    safe = uri.split("@")[-1] if "@" in uri else uri
    return BackendUnavailableError(
        "cannot reach the MLflow tracking backend",
        expected=f"a reachable MLflow tracking URI at {safe}",
        received=why,
        fix="start the MLflow server (mlflow server ...) or fix `tracking` in keel.toml; "
        "the embedded default is sqlite:///.keel/mlflow.db",
    )


def check_reachable(uri: str) -> None:
    """Fail fast (seconds, not MLflow's minutes of retries) when the backend cannot be used.

    >>> check_reachable("http://127.0.0.1:9")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keelml.core.errors.BackendUnavailableError: cannot reach the MLflow tracking backend
    ...
    """
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S) as reply:
                if reply.status >= 400:
                    raise _unreachable(uri, f"HTTP {reply.status} from /health")
        except (urllib.error.URLError, OSError) as exc:
            raise _unreachable(uri, str(getattr(exc, "reason", exc))) from exc
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise _unreachable(uri, f"the folder {folder} does not exist")


def client(uri: str) -> Any:
    """An ``MlflowClient`` for tracking and registry at ``uri``, after :func:`check_reachable`."""
    check_reachable(uri)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise missing_dependency("mlflow", "tracking", "experiment tracking") from exc
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        made = MlflowClient(tracking_uri=uri, registry_uri=uri)
        made.search_experiments(max_results=1)
    except Exception as exc:  # any backend failure here means "cannot use it"
        raise _unreachable(uri, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return made
