"""Deployment on Flower's runtime: a SuperLink (server) and SuperNodes (clients) as separate processes.

``keel fl server`` starts a SuperLink, submits keelml's Flower app to it (``flwr run``), waits for the
rounds with a deadline and stops the SuperLink. ``keel fl client`` runs a SuperNode holding one local
data file; it exits by itself once the SuperLink has been unreachable for ``max_wait`` seconds.
Every wait has a timeout; every process started here is stopped (TERM, then KILL) on the way out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from keelml.core.errors import BackendUnavailableError, InvalidInputError, SourceNotFoundError
from keelml.federated.config import FederatedConfig
from keelml.federated.preprocessing import TaskSpec

APP_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "keelml-fl"
version = "1.0.0"
description = "keelml federated training (code: keelml.federated.flower_apps)"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "keelml"

[tool.flwr.app.components]
serverapp = "keelml.federated.flower_apps:server_app"
clientapp = "{clientapp}"

[tool.flwr.app.config]
keel-config = "{{}}"
keel-out = ""
keel-connect-timeout = 60
"""


# the ClientApp each --secure-agg needs (keelml.federated.deploy_apps; not imported here: it imports flwr)
CLIENT_APPS = {
    "off": "keelml.federated.flower_apps:client_app",
    "keelml": "keelml.federated.deploy_apps:keelml_secagg_client_app",
    "flower": "keelml.federated.deploy_apps:flower_secagg_client_app",
}


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        raise BackendUnavailableError(
            f"Flower's {name} command is not installed",
            fix="pip install 'keelml[federated]'",
        )
    return found


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendUnavailableError(
                f"{what} exited with code {proc.returncode} while starting",
                fix="see its log; is the port already in use?",
            )
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise BackendUnavailableError(
        f"{what} did not listen on {host}:{port} within {timeout:g} s",
        fix="check the log; raise the timeout on a busy machine",
    )


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a process started here in its own session, with its children (TERM, then KILL)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def flower_env(**extra: str) -> dict[str, str]:
    """The environment for Flower's processes: they start their helpers (flower-superexec,
    flwr-clientapp) by name, so this interpreter's scripts folder goes first on PATH."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", ""), **extra}


def _spawn(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = env or flower_env()
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


@dataclass(frozen=True, slots=True)
class DeployedResult:
    weights: list[npt.NDArray[np.float32]]
    spec: TaskSpec
    rounds: list[dict[str, object]]
    seconds: float


def run_server(
    config: FederatedConfig,
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 9091,
    connect_timeout: float = 60.0,
    run_timeout: float = 600.0,
) -> DeployedResult:
    """Start a SuperLink, run keelml's app for ``config.rounds`` rounds on the connected clients, stop."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    app, home, out = workdir / "app", workdir / "flwr-home", workdir / "out"
    for d in (app, home):
        d.mkdir(exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    pyproject = APP_PYPROJECT.format(clientapp=CLIENT_APPS[config.secure_agg])
    (app / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (app / "keel_app.py").write_text("# the app's code is keelml.federated.flower_apps\n", encoding="utf-8")
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "keel"\n\n[superlink.keel]\naddress = "{host}:{port}"\ninsecure = true\n',
        encoding="utf-8",
    )
    env = flower_env(FLWR_HOME=str(home))
    link = _spawn(
        [
            _bin("flower-superlink"),
            "--insecure",
            "--host",
            host,
            "--port",
            str(port),
            "--disable-runtime-dependency-installation",
        ],
        workdir / "superlink.log",
        env,
    )
    try:
        _wait_port(host, port, 60.0, link, "the SuperLink")
        run_config = (
            f"keel-config='{json.dumps(config.to_json())}' keel-out='{out}' "
            f"keel-connect-timeout={float(connect_timeout)}"
        )
        submit = subprocess.run(
            [_bin("flwr"), "run", str(app), "keel", "--run-config", run_config],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if submit.returncode != 0:
            raise BackendUnavailableError(
                "the SuperLink refused the run",
                received=submit.stdout[-1500:] + submit.stderr[-1500:],
                fix="see the SuperLink log in " + str(workdir),
            )
        deadline = time.monotonic() + connect_timeout + run_timeout
        while not (out / "done.json").exists():
            error = out / "error.json"
            if error.exists():
                detail = json.loads(error.read_text(encoding="utf-8"))
                raise BackendUnavailableError(
                    f"the federated run failed: {detail['error']}",
                    received=detail["message"],
                    fix="see " + str(workdir),
                )
            if time.monotonic() > deadline or link.poll() is not None:
                raise BackendUnavailableError(
                    "the SuperLink exited"
                    if link.poll() is not None
                    else "the federated run did not finish in time",
                    expected=f"{config.rounds} rounds within {connect_timeout + run_timeout:g} s",
                    received=f"{_count_lines(out / 'rounds.jsonl')} rounds",
                    fix="check that the clients are running (`keel fl client`); raise --run-timeout",
                )
            time.sleep(0.3)
        with np.load(out / "weights.npz") as data:
            weights = [data[f"arr_{i}"] for i in range(len(data.files))]
        spec = TaskSpec.from_json(json.loads((out / "spec.json").read_text(encoding="utf-8")))
        rounds = [
            json.loads(line) for line in (out / "rounds.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        return DeployedResult(weights, spec, rounds, time.monotonic() - started)
    finally:
        stop(link)


def _count_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host or "127.0.0.1", int(port))) == 0


def run_client(
    data: Path,
    *,
    label: str,
    server: str = "127.0.0.1:9091",
    port: int = 9094,
    name: str | None = None,
    features: Sequence[str] | None = None,
    max_wait: float = 30.0,
    connect_timeout: float = 120.0,
    timeout: float = 3600.0,
    log: Path | None = None,
) -> int:
    """Run a SuperNode for ``data``; return once the SuperLink, after being seen, has been unreachable
    for ``max_wait`` s (its run ended), or after ``timeout`` s (code 124). A SuperLink not seen within
    ``connect_timeout`` s is an error. The SuperNode is always stopped."""
    if not data.is_file():
        raise SourceNotFoundError(
            f"no client data at {data}",
            expected="a .csv or .parquet file",
            fix="pass --data PATH to this client's own file",
        )
    if data.suffix not in (".csv", ".parquet"):
        raise InvalidInputError(
            "client data must be .csv or .parquet", received=data.name, fix="convert the file"
        )
    node_config = f"data-path='{data.resolve()}' label='{label}' name='{name or data.stem}'"
    if features:
        node_config += f" features='{','.join(features)}'"
    args = [_bin("flower-supernode"), "--insecure", "--superlink", server, "--port", str(port),
            "--node-config", node_config, "--max-wait-time", str(max_wait)]  # fmt: skip
    # SIGTERM must unwind through `finally` so the SuperNode (its own session) is stopped too
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    proc = (
        _spawn(args, log)
        if log is not None
        else subprocess.Popen(args, env=flower_env(), start_new_session=True)
    )
    try:
        started = time.monotonic()
        last_seen: float | None = None
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                return proc.returncode
            now = time.monotonic()
            if _reachable(server):
                last_seen = now
            elif last_seen is not None and now - last_seen > max_wait:
                return 0  # the server is gone: its run ended
            elif last_seen is None and now - started > connect_timeout:
                raise BackendUnavailableError(
                    f"no SuperLink at {server} within {connect_timeout:g} s",
                    expected="a running `keel fl server`",
                    fix="start the server first, check --server HOST:PORT, or raise --connect-timeout",
                )
            time.sleep(0.5)
        return 124
    finally:
        stop(proc)
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
