"""Workspace construction, keel.toml validation and backend URIs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.config import CONFIG_FILE, load_config
from keelml.core.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    ConfigError,
    WorkspaceNotFoundError,
)

# -- construction -------------------------------------------------------------------------------


def test_init_writes_config_and_opens_with_the_same_catalog(tmp_path: Path, catalog_url: str) -> None:
    root = tmp_path / "ws"
    with Workspace.init(root, name="demo", catalog=catalog_url) as ws:
        ref = ws.datasets.add("d", pa.table({"a": [1, 2]}))
    raw = tomllib.loads((root / CONFIG_FILE).read_text())
    assert raw["workspace"]["name"] == "demo"
    assert raw["backends"]["catalog"] == catalog_url
    with Workspace.open(root) as again:
        assert again.config.name == "demo"
        assert again.datasets.ref("d") == ref


def test_init_twice_is_an_error_unless_exist_ok(tmp_path: Path, explains) -> None:
    root = tmp_path / "ws"
    Workspace.init(root).close()
    with pytest.raises(AlreadyExistsError) as info:
        Workspace.init(root)
    explains(info.value, "already a keelml workspace", str(root))
    with Workspace.init(root, exist_ok=True) as ws:
        assert ws.root == root.resolve()


def test_discover_finds_the_workspace_from_a_subdirectory(local_ws: Workspace) -> None:
    sub = local_ws.root / "a" / "b"
    sub.mkdir(parents=True)
    with Workspace.discover(sub) as found:
        assert found.root == local_ws.root


def test_relative_sqlite_catalog_resolves_against_the_root_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        assert ws.config.backends.catalog.startswith("sqlite:///.keel/")  # stored relative
        ws.datasets.add("d", pa.table({"a": [1]}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with Workspace.open(root) as ws:
        assert [d.name for d in ws.datasets.list()] == ["d"]
    assert not (elsewhere / ".keel").exists()


# -- a workspace that does not exist -----------------------------------------------------------


def test_open_missing_workspace(tmp_path: Path, explains) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(WorkspaceNotFoundError) as info:
        Workspace.open(missing)
    assert isinstance(info.value, FileNotFoundError)
    explains(info.value, "no keelml workspace", str(missing), "keel init")
    assert info.value.exit_code == 3


def test_discover_without_any_workspace_above(tmp_path: Path, explains) -> None:
    start = tmp_path / "x" / "y"
    start.mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as info:
        Workspace.discover(start)
    assert isinstance(info.value, WorkspaceNotFoundError)
    explains(info.value, "at or above", "keel init")


# -- a corrupt or invalid keel.toml -------------------------------------------------------------


def _write_config(root: Path, text: str | bytes) -> None:
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG_FILE
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "[workspace\nname = 'x'\n",
        "[workspace]\nname = \n",
        "[backends]\ncatalog = 'sqlite:///a.db'\n[backends]\n",  # duplicate table
        b"\xff\xfe\x00garbage",  # not UTF-8
    ],
    ids=["unclosed-table", "missing-value", "duplicate-table", "binary"],
)
def test_corrupt_toml_is_a_config_error(tmp_path: Path, text: str | bytes, explains) -> None:
    root = tmp_path / "ws"
    _write_config(root, text)
    with pytest.raises(ConfigError) as info:
        Workspace.open(root)
    assert isinstance(info.value, ValueError)
    assert info.value.exit_code == 6
    explains(info.value, "is not valid TOML", str(root / CONFIG_FILE))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[backends]\ncatalog = 'mysql://u@h/db'\n", "catalog"),
        ("[backends]\ncatalog = 'catalog.db'\n", "catalog"),
        ("[backends]\nstorage = 's3://bucket/keel'\n", "storage"),
        ("[backends]\ntracking = 'ftp://host'\n", "tracking"),
        ("[backends]\nonline_store = 'memcached://h'\n", "online_store"),
        ("[backends]\ncatalgo = 'sqlite:///x.db'\n", "catalgo"),  # misspelt key
        ("[gc]\nkeep_last = 0\n", "keep_last"),
        ("[workspace]\nname = ''\n", "name"),
        ("backends = 'sqlite:///x.db'\n", "backends"),  # a value where a table belongs
        ("workspace = 'demo'\n", "name"),  # a value where a table belongs
    ],
    ids=[
        "catalog-scheme",
        "catalog-no-scheme",
        "storage-scheme",
        "tracking-scheme",
        "online-scheme",
        "unknown-key",
        "gc-range",
        "empty-name",
        "backends-not-a-table",
        "workspace-not-a-table",
    ],
)
def test_invalid_settings_are_a_config_error(tmp_path: Path, text: str, names: str, explains) -> None:
    root = tmp_path / "ws"
    _write_config(root, text)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    explains(info.value, "invalid settings")
    assert names in (info.value.received or ""), info.value.received


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"catalog": "mysql://u@h/db"}, "mysql://u@h/db"),
        ({"catalog": "/abs/path/catalog.db"}, "catalog"),
        ({"storage": "s3://bucket/prefix"}, "s3://bucket/prefix"),
        ({"storage": "gs://bucket"}, "gs://bucket"),
    ],
)
def test_init_rejects_invalid_backend_uris(
    tmp_path: Path, kwargs: dict[str, str], names: str, explains
) -> None:
    root = tmp_path / "ws"
    with pytest.raises(ConfigError) as info:
        Workspace.init(root, **kwargs)
    explains(info.value, names)
    assert not (root / CONFIG_FILE).exists()


def test_unreachable_postgres_catalog_is_backend_unavailable(tmp_path: Path, explains) -> None:
    # Port 1 refuses connections at once; the password must not leak into the message.
    url = "postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:1/keel"
    root = tmp_path / "ws"
    with pytest.raises(BackendUnavailableError) as info:
        Workspace.init(root, catalog=url)
    text = explains(info.value, "cannot reach the catalog", "127.0.0.1:1/keel")
    assert "s3cret-pw" not in text
    assert isinstance(info.value, ConnectionError)
    assert info.value.exit_code == 7
    # keel.toml is written only after the catalog works, so init can simply be retried.
    assert not (root / CONFIG_FILE).exists()


def test_open_with_unreachable_catalog_fails_on_first_use(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _write_config(root, "[backends]\ncatalog = 'postgresql://postgres@127.0.0.1:1/keel'\n")
    ws = Workspace.open(root)  # opening is lazy
    with pytest.raises(BackendUnavailableError):
        ws.datasets.list()


def test_unknown_attribute_is_an_attribute_error(local_ws: Workspace) -> None:
    with pytest.raises(AttributeError, match="no_such_capability"):
        local_ws.no_such_capability  # noqa: B018
