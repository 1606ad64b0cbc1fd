"""Loading definitions from the module named in keel.toml, and registering them in the catalog.

``[features] definitions = "feature_repo.py"`` names a Python file (relative to the workspace) or an
importable module. It defines a ``repo = FeatureRepo(...)``, or just the entities, views and derived
features at module level, which are collected in definition order.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keelml.core.errors import ColumnNotFoundError, ConfigError, InvalidInputError, NodeNotFoundError
from keelml.features.definitions import DerivedFeature, Entity, FeatureRepo, FeatureView

ONLINE_TYPES = ("int", "uint", "float", "double", "bool", "string", "large_string", "halffloat", "decimal")


def load_repo(root: Path, setting: Any) -> FeatureRepo:
    """Import the definitions module named by ``setting`` (a path or module name)."""
    if not isinstance(setting, dict) or not isinstance(setting.get("definitions"), str):
        raise ConfigError(
            "no feature definitions are configured",
            expected='a [features] section in keel.toml with definitions = "feature_repo.py"',
            received=repr(setting),
            fix='add [features]\\ndefinitions = "feature_repo.py" to keel.toml (see docs/features.md)',
        )
    target: str = setting["definitions"]
    try:
        if target.endswith(".py"):
            path = Path(target) if Path(target).is_absolute() else root / target
            if not path.is_file():
                raise FileNotFoundError(str(path))
            spec = importlib.util.spec_from_file_location(f"keel_features_{abs(hash(path))}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            sys.path.insert(0, str(root))
            try:
                module = importlib.import_module(target)
            finally:
                sys.path.remove(str(root))
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"cannot find the feature definitions {target!r}",
            expected="a .py file relative to the workspace, or an importable module",
            received=str(exc),
            fix="fix [features] definitions in keel.toml",
        ) from exc
    return repo_from_namespace(vars(module))


def repo_from_namespace(namespace: dict[str, Any]) -> FeatureRepo:
    """``repo`` if the module defines one, else every definition object at module level."""
    repo = namespace.get("repo")
    if isinstance(repo, FeatureRepo):
        return repo
    values = list(namespace.values())
    return FeatureRepo(
        entities=tuple(v for v in values if isinstance(v, Entity)),
        views=tuple(v for v in values if isinstance(v, FeatureView)),
        derived=tuple(v for v in values if isinstance(v, DerivedFeature)),
    )


def check_view_schema(view: FeatureView, schema: dict[str, str], source: str) -> None:
    """The view's columns exist in the source dataset, and its features fit the online store."""
    missing = [c for c in view.columns() if c not in schema]
    if missing:
        raise ColumnNotFoundError(
            f"feature view {view.name!r} references columns missing from dataset {source}",
            expected=", ".join(view.columns()),
            received=f"missing {', '.join(missing)}; the dataset has {', '.join(schema)}",
            fix=f"fix the column names in the definition of {view.name!r}, or add them to the dataset",
        )
    bad = [f"{f}: {schema[f]}" for f in view.features if not schema[f].startswith(ONLINE_TYPES)]
    if bad:
        raise InvalidInputError(
            f"feature view {view.name!r} has features of types the online store cannot hold",
            expected="numbers, booleans or strings",
            received=", ".join(bad),
            fix="derive a number or string from those columns first",
        )


Status = Literal["new", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class Registered:
    """One definition after ``apply``: its catalog node, version and digest."""

    kind: Literal["feature_view", "derived_feature"]
    name: str
    version: int
    digest: str
    status: Status

    @property
    def node_id(self) -> str:
        return f"{self.kind}:{self.name}@{self.version}"


def latest_node(lineage: Any, kind: str, name: str) -> tuple[int, str] | None:
    """The newest registered version of a definition and its digest (probing ids upwards)."""
    version, found = 1, None
    while True:
        try:
            node = lineage.node(f"{kind}:{name}@{version}")
        except NodeNotFoundError:
            return found
        found = (version, str(node.attrs.get("digest")))
        version += 1


def register(
    catalog: Any,
    kind: Literal["feature_view", "derived_feature"],
    name: str,
    digest: str,
    attrs: dict[str, Any],
    parents: list[str],
) -> Registered:
    latest = latest_node(catalog.lineage, kind, name)
    if latest is not None and latest[1] == digest:
        return Registered(kind, name, latest[0], digest, "unchanged")
    version = 1 if latest is None else latest[0] + 1
    entry = Registered(kind, name, version, digest, "new" if latest is None else "updated")
    with catalog.begin() as conn:
        catalog.lineage.add_node(conn, entry.node_id, kind, name, version, {**attrs, "digest": digest})
        for parent in parents:
            catalog.lineage.add_edge(conn, parent, entry.node_id, "defines")
    return entry
