"""The workspace: keel.toml plus its backends; the one composition root.

Capabilities attach themselves as accessors (``ws.datasets``) with :func:`workspace_accessor`, so
``core`` never imports a capability and a capability never imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from keelml.core.artifacts import ArtifactStore
from keelml.core.catalog import Catalog
from keelml.core.config import (
    CONFIG_FILE,
    STATE_DIR,
    Backends,
    WorkspaceConfig,
    find_root,
    load_config,
    resolve_sqlite_url,
    resolve_storage,
)
from keelml.core.errors import AlreadyExistsError, ConfigError

_ACCESSORS: dict[str, Callable[[Workspace], Any]] = {}
T = TypeVar("T")


def workspace_accessor(name: str) -> Callable[[Callable[[Workspace], T]], Callable[[Workspace], T]]:
    """Register ``factory(ws)`` as the lazily built attribute ``ws.<name>``."""

    def register(factory: Callable[[Workspace], T]) -> Callable[[Workspace], T]:
        _ACCESSORS[name] = factory
        return factory

    return register


class Workspace:
    """An opened workspace. Build it with :meth:`init`, :meth:`open` or :meth:`discover`."""

    def __init__(self, root: Path, config: WorkspaceConfig) -> None:
        self.root = root
        self.config = config
        self._attached: dict[str, Any] = {}

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        root: str | Path,
        *,
        name: str | None = None,
        catalog: str | None = None,
        storage: str | None = None,
        exist_ok: bool = False,
    ) -> Workspace:
        """Create keel.toml and .keel/ in ``root`` (made if missing) and open the workspace."""
        path = Path(root).resolve()
        if (path / CONFIG_FILE).exists():
            if exist_ok:
                return cls.open(path)
            raise AlreadyExistsError(
                f"{path} is already a keelml workspace",
                expected="a directory without keel.toml",
                received=str(path / CONFIG_FILE),
                fix="use the existing workspace, or choose another directory",
            )
        overrides = {k: v for k, v in (("catalog", catalog), ("storage", storage)) if v is not None}
        try:
            config = WorkspaceConfig(name=name or path.name, backends=Backends(**overrides))
        except ValueError as exc:
            raise ConfigError(
                "invalid workspace settings", received=str(exc), fix="see docs/workspace.md"
            ) from exc
        path.mkdir(parents=True, exist_ok=True)
        (path / STATE_DIR).mkdir(exist_ok=True)
        ws = cls(path, config)
        ws.catalog  # noqa: B018 - creates and migrates the catalog before keel.toml claims the directory
        (path / CONFIG_FILE).write_text(config.to_toml(), encoding="utf-8")
        return ws

    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        path = Path(root).resolve()
        return cls(path, load_config(path))

    @classmethod
    def discover(cls, start: str | Path = ".") -> Workspace:
        """Open the nearest workspace at or above ``start``."""
        return cls.open(find_root(Path(start)))

    # -- backends -------------------------------------------------------------------------------

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(resolve_sqlite_url(self.config.backends.catalog, self.root))

    @cached_property
    def storage_root(self) -> Path:
        path = resolve_storage(self.config.backends.storage, self.root)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.storage_root)

    def __getattr__(self, name: str) -> Any:
        factory = _ACCESSORS.get(name)
        if factory is None:
            raise AttributeError(f"'Workspace' has no attribute {name!r}")
        if name not in self._attached:
            self._attached[name] = factory(self)
        return self._attached[name]

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"
