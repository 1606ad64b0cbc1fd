"""Shared fixtures: catalog backends, workspaces and deterministic tables.

``catalog_url`` runs a test once on an embedded SQLite catalog and once on a fresh database of the
real PostgreSQL server at 127.0.0.1:5432 (trust auth, user ``postgres``). Without that server the
PostgreSQL half is skipped locally and fails in CI (``CI=true``), so CI can never pass by silently
testing only SQLite.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_ADMIN_DSN = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres"
PG_ENABLE_HINT = "start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres"

# Why the server could not be used, remembered so that an absent server costs one attempt per session.
_pg_unavailable: list[str] = []


def _pg_admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)


def _postgres_unavailable(reason: str) -> None:
    message = f"PostgreSQL catalog tests cannot run: {reason}. To enable them, {PG_ENABLE_HINT}."
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the PostgreSQL server is required in CI)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test; yields its URL."""
    if _pg_unavailable:
        _postgres_unavailable(_pg_unavailable[0])
    try:
        admin = _pg_admin_connection()
    except ImportError as exc:
        _pg_unavailable.append(f"psycopg is not installed ({exc}); pip install 'keelml[postgres]'")
        _postgres_unavailable(_pg_unavailable[0])
    except Exception as exc:  # psycopg.OperationalError and friends
        _pg_unavailable.append(f"cannot connect to {PG_HOST}:{PG_PORT} ({str(exc).strip().splitlines()[0]})")
        _postgres_unavailable(_pg_unavailable[0])
    name = f"keel_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _pg_admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A catalog URL: an SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def ws(tmp_path: Path, catalog_url: str) -> Iterator[Workspace]:
    """A new workspace in tmp_path/ws whose catalog is ``catalog_url``."""
    workspace = Workspace.init(tmp_path / "ws", catalog=catalog_url)
    try:
        yield workspace
    finally:
        workspace.close()


@pytest.fixture
def local_ws(tmp_path: Path) -> Iterator[Workspace]:
    """A new workspace with the default embedded catalog, for tests the catalog backend cannot affect."""
    workspace = Workspace.init(tmp_path / "local")
    try:
        yield workspace
    finally:
        workspace.close()


MakeTable = Callable[..., pa.Table]


def _make_table(
    rows: int = 10,
    *,
    start: int = 0,
    seed: int = 0,
    labels: tuple[str, ...] = ("cat", "dog", "fish"),
    with_nulls: bool = False,
) -> pa.Table:
    """Rows with ids ``start .. start+rows-1``: id (int64), x (float64), n (int64), label (string).

    The same arguments always give the same table. With ``with_nulls`` every 4th x and every 5th
    label is null.
    """
    rng = np.random.default_rng(seed + 7919 * start)
    ids = np.arange(start, start + rows, dtype=np.int64)
    x = np.round(rng.normal(10.0, 3.0, rows), 6)
    n = rng.integers(-50, 50, rows, dtype=np.int64)
    label = [labels[i % len(labels)] for i in range(start, start + rows)]
    x_mask = (ids % 4 == 0) if with_nulls else None
    label_arr = pa.array(label, pa.string())
    if with_nulls:
        label_arr = pa.array(
            [None if i % 5 == 0 else v for i, v in zip(ids, label, strict=True)], pa.string()
        )
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "x": pa.array(x, pa.float64(), mask=x_mask),
            "n": pa.array(n, pa.int64()),
            "label": label_arr,
        }
    )


@pytest.fixture
def make_table() -> MakeTable:
    """``make_table(rows=10, start=0, seed=0, labels=(...), with_nulls=False)``: a deterministic table."""
    return _make_table


def _explains(exc: BaseException, *needles: str) -> str:
    """Assert ``exc`` is a KeelError whose message names the problem (each needle) and a fix."""
    from keelml.core.errors import KeelError

    assert isinstance(exc, KeelError), f"{type(exc).__name__} is not a KeelError: {exc}"
    text = str(exc)
    assert exc.problem.strip(), text
    assert exc.fix and exc.fix.strip(), f"no fix in: {text}"
    assert f"fix: {exc.fix}" in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in message:\n{text}"
    return text


@pytest.fixture
def explains() -> Callable[..., str]:
    """``explains(exc, *needles)``: the error names the problem (each needle in its text) and a fix."""
    return _explains
