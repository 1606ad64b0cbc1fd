"""keel.toml: the workspace configuration, validated on load.

Every backend is a URI chosen by scheme. Relative paths (and relative SQLite files) are resolved
against the workspace root, never the current directory, so a workspace behaves the same from
wherever a command runs.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keelml.core.errors import ConfigError, WorkspaceNotFoundError

CONFIG_FILE = "keel.toml"
STATE_DIR = ".keel"

_CATALOG_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgres")
_TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "postgresql+psycopg")
_ONLINE_SCHEMES = ("sqlite", "redis", "rediss")


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


class Backends(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog: str = f"sqlite:///{STATE_DIR}/catalog.db"
    storage: str = STATE_DIR
    tracking: str = f"sqlite:///{STATE_DIR}/mlflow.db"
    online_store: str = f"sqlite:///{STATE_DIR}/online.db"

    @field_validator("catalog")
    @classmethod
    def _catalog_scheme(cls, value: str) -> str:
        if _scheme(value) not in _CATALOG_SCHEMES:
            raise ValueError(f"catalog must be a sqlite:/// or postgresql:// URL, got {value!r}")
        return value

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        scheme = _scheme(value)
        if scheme not in ("", "file"):
            raise ValueError(
                f"storage {value!r}: only local paths and file:// URIs are supported in this release"
            )
        return value

    @field_validator("tracking")
    @classmethod
    def _tracking_scheme(cls, value: str) -> str:
        if _scheme(value) not in _TRACKING_SCHEMES:
            raise ValueError(f"tracking must be an MLflow tracking URI, got {value!r}")
        return value

    @field_validator("online_store")
    @classmethod
    def _online_scheme(cls, value: str) -> str:
        if _scheme(value) not in _ONLINE_SCHEMES:
            raise ValueError(f"online_store must be a sqlite:/// or redis:// URL, got {value!r}")
        return value


class GcPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_last: int = Field(default=3, ge=1, description="newest versions of each dataset always kept")


class WorkspaceConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    backends: Backends = Backends()
    gc: GcPolicy = GcPolicy()

    def to_toml(self) -> str:
        data: dict[str, Any] = {
            "workspace": {"name": self.name},
            "backends": self.backends.model_dump(),
            "gc": self.gc.model_dump(),
        }
        return tomli_w.dumps(data)


def load_config(root: Path) -> WorkspaceConfig:
    """Read and validate ``root/keel.toml``."""
    path = root / CONFIG_FILE
    if not path.is_file():
        raise WorkspaceNotFoundError(
            f"no keelml workspace at {root}",
            expected=f"a {CONFIG_FILE} file in {root}",
            received="no such file",
            fix=f"run `keel init {root}` to create one, or pass --workspace DIR",
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML",
            expected="a keel.toml as written by `keel init`",
            received=str(exc),
            fix=f"fix the syntax at the position shown, or move the file away and run `keel init {root}`",
        ) from exc
    section = raw.get("workspace", {})
    try:
        return WorkspaceConfig.model_validate(
            {
                "name": section.get("name", root.name) if isinstance(section, dict) else None,
                "backends": raw.get("backends", {}),
                "gc": raw.get("gc", {}),
                **{k: v for k, v in raw.items() if k not in ("workspace", "backends", "gc")},
            }
        )
    except ValidationError as exc:
        raise ConfigError(
            f"{path} has invalid settings",
            expected="the keys and URI schemes documented in docs/workspace.md",
            received="; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()),
            fix="correct the listed keys in keel.toml",
        ) from exc


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding a keel.toml (like git)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise WorkspaceNotFoundError(
        f"no keelml workspace at or above {start}",
        expected=f"a {CONFIG_FILE} in this directory or a parent",
        received="none found",
        fix="run `keel init DIR`, cd into a workspace, or pass --workspace DIR",
    )


def resolve_sqlite_url(url: str, root: Path) -> str:
    """Make a relative ``sqlite:///file`` URL absolute against the workspace root.

    >>> resolve_sqlite_url("sqlite:///.keel/c.db", Path("/ws"))
    'sqlite:////ws/.keel/c.db'
    >>> resolve_sqlite_url("postgresql://h/db", Path("/ws"))
    'postgresql://h/db'
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix) :])
    if not path.is_absolute():
        path = root / path
    return prefix + str(path)


def resolve_storage(uri: str, root: Path) -> Path:
    path = Path(uri.removeprefix("file://"))
    return path if path.is_absolute() else root / path
