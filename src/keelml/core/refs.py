"""Frozen, hashable references that steps take and return."""

from __future__ import annotations

import re
from dataclasses import dataclass

from keelml.core.errors import InvalidReferenceError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, what: str = "dataset") -> str:
    """Return ``name`` if it is a valid catalog name, else raise.

    >>> check_name("reviews")
    'reviews'
    """
    if not _NAME.fullmatch(name):
        raise InvalidReferenceError(
            f"{name!r} is not a valid {what} name",
            expected="a letter, then up to 127 letters, digits, '_', '.' or '-'",
            received=repr(name),
            fix=f"choose a name like 'reviews' or 'food-reviews_v2' for the {what}",
        )
    return name


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """One immutable version of a dataset; ``digest`` is its order-independent content hash."""

    name: str
    version: int
    digest: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def node_id(self) -> str:
        return f"dataset:{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def node_id(self) -> str:
        return f"model:{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    digest: str

    def __str__(self) -> str:
        return f"artifact:{self.digest[:12]}"


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """A parsed ``NAME[@VERSION]``; ``version`` is None for "the latest"."""

    name: str
    version: int | None


def parse_spec(text: str) -> VersionSpec:
    """Parse ``NAME``, ``NAME@latest`` or ``NAME@3``.

    >>> parse_spec("reviews@3")
    VersionSpec(name='reviews', version=3)
    >>> parse_spec("reviews").version is None
    True
    """
    name, sep, version = text.partition("@")
    check_name(name)
    if not sep or version in ("", "latest"):
        return VersionSpec(name, None)
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise InvalidReferenceError(
            f"cannot read the version in {text!r}",
            expected="NAME, NAME@latest or NAME@N with N a positive integer",
            received=text,
            fix=f"write e.g. {name}@1 (see `keel data log {name}` for the versions)",
        )
    return VersionSpec(name, int(version))
