"""Run the service on uvicorn: refuse to listen off loopback without an API key, then serve.

With ``workers > 1`` uvicorn starts worker processes that each build the app from environment
variables (:func:`app_from_env`), so each worker opens the workspace, loads the model, logs and
reloads on its own. Their Prometheus metrics meet in a fresh temporary folder
(``PROMETHEUS_MULTIPROC_DIR``, set before the workers start and removed when the server stops), so
``/metrics`` reports the sum over workers whichever one answers.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from keelml.core.errors import ConfigError, InvalidInputError
from keelml.core.workspace import Workspace
from keelml.serve.app import create_app
from keelml.serve.config import ServeConfig
from keelml.serve.metrics import MULTIPROC_ENV
from keelml.serve.source import DeploymentRecorder, OnlineFeatures, RegistrySource

# uvicorn kills (and restarts) a worker that does not answer its supervisor's ping within this many
# seconds; its default, 5 s, is shorter than a worker's start (Python, keelml, the model) on a busy
# 2-core machine, where the workers were killed and restarted forever.
WORKER_HEALTHCHECK_SECONDS = 60
_ENV_ROOT, _ENV_SPEC, _ENV_CONFIG = "KEEL_SERVE_WORKSPACE", "KEEL_SERVE_SPEC", "KEEL_SERVE_CONFIG"
_ENV_ENDPOINT, _ENV_WORKERS = "KEEL_SERVE_ENDPOINT", "KEEL_SERVE_WORKERS"
# deltalake (the request log's writer) brings its own jemalloc, read from this variable when the
# library loads. Its defaults keep per-thread caches and dirty pages: a serving process grew 30-45 MB
# over 120,000 logged requests (benchmarks/serve_memory.py), 14 MB and flat with these settings. Only
# the writer thread allocates there, off the request path, so its speed does not matter.
NATIVE_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
NATIVE_ALLOCATOR_CONF = "narenas:1,tcache:false,dirty_decay_ms:0,muzzy_decay_ms:0"


def bound_log_writer_memory() -> bool:
    """Set deltalake's allocator settings for this process (and its workers) unless the user set them
    or deltalake is already loaded (too late to apply); True when they were set here."""
    if NATIVE_ALLOCATOR_ENV in os.environ or "deltalake" in sys.modules:
        return False
    os.environ[NATIVE_ALLOCATOR_ENV] = NATIVE_ALLOCATOR_CONF
    return True


def is_loopback(host: str) -> bool:
    """True only for addresses no other machine can reach.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3")]
    [True, True, True, False, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve anywhere: treat it as exposed


def config_of(ws: Workspace) -> ServeConfig:
    return ServeConfig.from_mapping((ws.config.model_extra or {}).get("serve"))


def api_key_for(host: str, config: ServeConfig) -> str | None:
    """The API key from ``config.api_key_env``; required off loopback. Never printed."""
    key = os.environ.get(config.api_key_env) or None
    if key is not None and len(key) < 16:
        raise ConfigError(
            f"the API key in ${config.api_key_env} is too short",
            expected="at least 16 characters, e.g. secrets.token_urlsafe() (43 characters)",
            received=f"{len(key)} characters",
            fix=f"export {config.api_key_env}=<a long random key>",
        )
    if key is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without an API key",
            expected=f"an API key in ${config.api_key_env} whenever the host is not loopback",
            received=f"{config.api_key_env} is unset",
            fix=f"export {config.api_key_env}=<a long random key>, or bind to --host 127.0.0.1",
        )
    return key


def check_spec(spec: str) -> str:
    if "@" not in spec or not spec.partition("@")[2]:
        raise InvalidInputError(
            f"serve needs a model alias, got {spec!r}",
            expected="MODEL@ALIAS (e.g. reviews-clf@production) or MODEL@VERSION",
            received=spec,
            fix="promote a version with `keel models promote` and serve MODEL@ALIAS",
        )
    return spec


def build_app(
    ws: Workspace, spec: str, config: ServeConfig, api_key: str | None, *, endpoint: str | None = None,
    workers: int = 1,
) -> FastAPI:  # fmt: skip
    """The service of ``spec``; each version it serves is recorded as a deployment in the lineage graph
    (with ``endpoint``, e.g. http://127.0.0.1:8000, and ``workers`` in the node's attributes)."""
    check_spec(spec)
    features = OnlineFeatures(ws, config.features) if config.features else None
    source = RegistrySource(ws, threads=config.model_threads, spinning=config.model_spinning)
    recorder = DeploymentRecorder(ws, spec, endpoint=endpoint, workers=workers)
    return create_app(spec, source, storage=ws.storage_root, config=config, api_key=api_key,
                      features=features, on_serve=recorder)  # fmt: skip


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker process (``--workers N``)."""
    bound_log_writer_memory()
    ws = Workspace.open(Path(os.environ[_ENV_ROOT]))
    config = ServeConfig.model_validate_json(os.environ[_ENV_CONFIG])
    key = os.environ.get(config.api_key_env) or None
    workers = int(os.environ.get(_ENV_WORKERS, "1"))
    return build_app(
        ws, os.environ[_ENV_SPEC], config, key, endpoint=os.environ.get(_ENV_ENDPOINT), workers=workers
    )


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535 or self.workers < 1:
            raise InvalidInputError(
                "invalid --port or --workers",
                expected="a port in 0..65535 and at least 1 worker",
                received=f"port={self.port}, workers={self.workers}",
                fix="e.g. --port 8000 --workers 2",
            )


def serve(ws: Workspace, spec: str, options: ServeOptions, config: ServeConfig | None = None) -> None:
    """Check the settings, resolve the model once (a clear error before binding), then run uvicorn."""
    import uvicorn

    bound_log_writer_memory()
    check_spec(spec)
    cfg = config or config_of(ws)
    key = api_key_for(options.host, cfg)
    ws.models.show(spec)  # fail fast on an unknown model or alias, before any worker starts
    endpoint = f"http://{options.host}:{options.port}"
    if options.workers == 1:
        uvicorn.run(build_app(ws, spec, cfg, key, endpoint=endpoint), host=options.host, port=options.port,
                    log_level=options.log_level, access_log=False)  # fmt: skip
        return
    os.environ.update({_ENV_ROOT: str(ws.root), _ENV_SPEC: spec, _ENV_CONFIG: cfg.model_dump_json(),
                       _ENV_ENDPOINT: endpoint, _ENV_WORKERS: str(options.workers)})  # fmt: skip
    with shared_metrics_dir():
        uvicorn.run("keelml.serve.server:app_from_env", factory=True, host=options.host, port=options.port,
                    workers=options.workers, log_level=options.log_level, access_log=False,
                    timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)  # fmt: skip


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers about to start; removed afterwards.

    Always a new folder (one left by an earlier run would add its counts to this one's); the
    variable is set in this process's environment, which the workers inherit, and restored after.
    """
    folder = tempfile.mkdtemp(prefix="keel-metrics-")
    before = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before
        shutil.rmtree(folder, ignore_errors=True)
