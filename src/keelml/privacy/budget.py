"""Privacy budgets per dataset, declared in keel.toml and validated on read.

::

    [privacy]
    composition = "basic"        # or "pld" (see docs/privacy.md#composition)

    [privacy.budget]
    reviews = { epsilon = 8.0, delta = 1e-5 }

>>> cfg = PrivacySettings.from_mapping({"budget": {"reviews": {"epsilon": 8, "delta": 1e-5}}})
>>> cfg.budgets["reviews"]
Budget(epsilon=8.0, delta=1e-05)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from keelml.core.errors import ConfigError

Composition = Literal["basic", "pld"]
_KEYS = ("budget", "composition")


@dataclass(frozen=True, slots=True)
class Budget:
    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)) or not 0 <= self.delta < 1:
            raise ConfigError(
                "a privacy budget needs epsilon > 0 and 0 <= delta < 1",
                expected="e.g. { epsilon = 8.0, delta = 1e-5 }",
                received=f"epsilon={self.epsilon}, delta={self.delta}",
                fix="correct the [privacy.budget] entry in keel.toml",
            )


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{where} in keel.toml must be a number",
            received=repr(value)[:80],
            fix=f"write e.g. {where.split('.')[-1]} = 1e-5",
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """The ``[privacy]`` section: budgets by dataset name and the composition rule."""

    budgets: Mapping[str, Budget] = field(default_factory=dict)
    composition: Composition = "basic"

    @classmethod
    def from_mapping(cls, raw: Any) -> PrivacySettings:
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise ConfigError("the [privacy] section of keel.toml must be a table", received=repr(raw)[:80])
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown keys in [privacy] of keel.toml: {', '.join(unknown)}",
                expected=", ".join(_KEYS),
                received=", ".join(unknown),
                fix="rename or remove them (see docs/privacy.md)",
            )
        composition = raw.get("composition", "basic")
        if composition not in get_args(Composition):
            raise ConfigError(
                "privacy.composition must be 'basic' or 'pld'",
                received=repr(composition)[:80],
                fix='write composition = "basic" (sums epsilons and deltas) or "pld"',
            )
        table = raw.get("budget", {})
        if not isinstance(table, Mapping):
            raise ConfigError(
                "[privacy.budget] must be a table of dataset = { epsilon = ..., delta = ... }",
                received=repr(table)[:80],
                fix="write reviews = { epsilon = 8.0, delta = 1e-5 } under [privacy.budget]",
            )
        budgets: dict[str, Budget] = {}
        for name, entry in table.items():
            where = f"privacy.budget.{name}"
            if not isinstance(entry, Mapping) or set(entry) - {"epsilon", "delta"} or "epsilon" not in entry:
                raise ConfigError(
                    f"{where} must be {{ epsilon = ..., delta = ... }}",
                    expected="keys epsilon (required) and delta (default 0)",
                    received=repr(entry)[:80],
                    fix=f"write {name} = {{ epsilon = 8.0, delta = 1e-5 }}",
                )
            budgets[str(name)] = Budget(
                _number(f"{where}.epsilon", entry["epsilon"]),
                _number(f"{where}.delta", entry.get("delta", 0.0)),
            )
        return cls(budgets, composition)
