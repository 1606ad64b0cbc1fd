"""Hardware profiles from keel.toml, for cost per prediction and thread counts.

::

    [hardware.cpu-2core]
    price_per_hour = 0.085   # USD per hour of the machine
    cores = 2                # threads used for every variant in a benchmark
    accelerator = "none"     # or e.g. "nvidia-t4"

``cpu-2core`` is built in (0.085 USD/h: the on-demand price of a 2-vCPU general-purpose cloud VM,
an assumption to replace with your own price); a profile in keel.toml with that name replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keelml.core.errors import ConfigError, NotFoundError

DEFAULT_PROFILE = "cpu-2core"


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    name: str
    price_per_hour: float
    cores: int
    accelerator: str = "none"

    def __post_init__(self) -> None:
        if not self.price_per_hour >= 0 or self.cores < 1:
            raise ConfigError(
                f"hardware profile {self.name!r} is invalid",
                expected="price_per_hour >= 0 and cores >= 1",
                received=f"price_per_hour={self.price_per_hour}, cores={self.cores}",
                fix=f"fix [hardware.{self.name}] in keel.toml",
            )

    def cost_per_million(self, throughput: float) -> float:
        """USD per 1,000,000 predictions at ``throughput`` predictions per second on this machine."""
        return self.price_per_hour / 3600.0 * 1_000_000 / throughput if throughput > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "price_per_hour": self.price_per_hour, "cores": self.cores,
                "accelerator": self.accelerator}  # fmt: skip


BUILT_IN = {DEFAULT_PROFILE: HardwareProfile(DEFAULT_PROFILE, 0.085, 2, "none")}


def profiles(extra: Mapping[str, Any] | None) -> dict[str, HardwareProfile]:
    """Built-in profiles updated with ``[hardware.NAME]`` tables of keel.toml."""
    raw = (extra or {}).get("hardware", {})
    if not isinstance(raw, Mapping):
        raise ConfigError("[hardware] in keel.toml must hold tables", received=repr(raw)[:80],
                          fix="write [hardware.cpu-2core] with price_per_hour and cores")  # fmt: skip
    out = dict(BUILT_IN)
    for name, table in raw.items():
        if not isinstance(table, Mapping) or set(table) - {"price_per_hour", "cores", "accelerator"}:
            raise ConfigError(
                f"[hardware.{name}] in keel.toml is not a valid profile",
                expected="price_per_hour (number), cores (integer), accelerator (text, optional)",
                received=repr(dict(table) if isinstance(table, Mapping) else table)[:120],
                fix=f"write [hardware.{name}] price_per_hour = 0.1 and cores = 2",
            )
        try:
            out[str(name)] = HardwareProfile(
                str(name),
                float(table["price_per_hour"]),
                int(table["cores"]),
                str(table.get("accelerator", "none")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"[hardware.{name}] in keel.toml is not a valid profile",
                expected="price_per_hour (number) and cores (integer)",
                received=str(exc),
                fix=f"write [hardware.{name}] price_per_hour = 0.1 and cores = 2",
            ) from exc
    return out


def profile(extra: Mapping[str, Any] | None, name: str | None) -> HardwareProfile:
    known = profiles(extra)
    chosen = name or DEFAULT_PROFILE
    if chosen not in known:
        raise NotFoundError(
            f"no hardware profile {chosen!r}",
            expected=", ".join(sorted(known)),
            received=chosen,
            fix=f"add [hardware.{chosen}] with price_per_hour and cores to keel.toml",
        )
    return known[chosen]
