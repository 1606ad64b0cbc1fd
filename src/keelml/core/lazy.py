"""Public names of a capability package that load on first use, so ``import keelml`` stays light.

A package's ``__init__`` registers its workspace accessor (cheap) and sets
``__getattr__ = lazy_names(__name__, {"Name": "module", ...})``; ``from keelml.pkg import Name`` then
imports ``keelml.pkg.module`` only when someone asks for ``Name``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, home: Mapping[str, str], *, load_first: Sequence[str] = ()
) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``home[name]`` (a submodule) on first use.

    ``load_first`` names submodules imported before any lookup (e.g. those that fill a registry).

    >>> getattr_ = lazy_names("json", {"JSONDecoder": "decoder"})
    >>> getattr_("JSONDecoder").__name__
    'JSONDecoder'
    """

    def __getattr__(name: str) -> Any:
        if name in home:
            for module in load_first:
                import_module(f"{package}.{module}")
            return getattr(import_module(f"{package}.{home[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
