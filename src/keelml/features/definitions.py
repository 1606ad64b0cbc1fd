"""Feature definitions in Python: entities, feature views, derived and on-demand features.

A derived or on-demand feature is one function over a batch (an Arrow table, or a pandas frame with
``mode="pandas"``) that returns one value per row. Training calls it on whole batches; serving calls
the same function on each request row, so the transform is written once.

>>> import datetime as dt
>>> import pyarrow.compute as pc
>>> customer = Entity("customer", keys=("customer_id",))
>>> orders = FeatureView("orders", entity=customer, source="orders", timestamp="ts",
...                      ttl=dt.timedelta(days=7), features=("amount", "items"))
>>> per_item = DerivedFeature("amount_per_item", lambda b: pc.divide(b["amount"], b["items"]),
...                           inputs=("amount", "items"))
>>> repo = FeatureRepo(entities=(customer,), views=(orders,), derived=(per_item,))
>>> repo.feature_names()
('amount', 'items', 'amount_per_item')
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from keelml.core.errors import ConflictError, InvalidInputError
from keelml.core.refs import check_name

BatchFn = Callable[[Any], Any]


class FeatureNameConflictError(ConflictError):
    """Two definitions produce a feature (or view) with the same name."""


def _names(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not values:
        raise InvalidInputError(
            f"a {what} list is empty", expected=f"at least one {what}", fix=f"name a {what}"
        )
    for v in values:
        check_name(v, what)
    return values


@dataclass(frozen=True, slots=True)
class Entity:
    """What features describe (a customer, a driver), identified by one or more key columns."""

    name: str
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        check_name(self.name, "entity")
        _names(tuple(self.keys), "key column")


@dataclass(frozen=True, slots=True)
class FeatureView:
    """Features read from a dataset (``source``) with an event-time column and a time to live.

    A value is usable at time T when its event time is at or before T and no older than ``ttl``.
    """

    name: str
    entity: Entity
    source: str
    timestamp: str
    ttl: dt.timedelta
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        check_name(self.name, "feature view")
        check_name(self.source, "dataset")
        _names(tuple(self.features), "feature")
        if self.ttl <= dt.timedelta(0):
            raise InvalidInputError(
                f"feature view {self.name!r} has a non-positive ttl",
                expected="a positive timedelta",
                received=str(self.ttl),
                fix="pass e.g. ttl=timedelta(days=1)",
            )
        overlap = set(self.features) & {*self.entity.keys, self.timestamp}
        if overlap:
            raise FeatureNameConflictError(
                f"feature view {self.name!r} lists key or timestamp columns as features",
                received=", ".join(sorted(overlap)),
                fix="features are the value columns; keys and the timestamp are joined on",
            )

    def columns(self) -> list[str]:
        return [*self.entity.keys, self.timestamp, *self.features]

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entity": {"name": self.entity.name, "keys": list(self.entity.keys)},
            "source": self.source,
            "timestamp": self.timestamp,
            "ttl_seconds": self.ttl.total_seconds(),
            "features": list(self.features),
        }


@dataclass(frozen=True, slots=True)
class DerivedFeature:
    """``fn(batch) -> values``: a feature computed from other features (and, when it lists
    ``request`` fields, from data that arrives with the request: an on-demand feature)."""

    name: str
    fn: BatchFn = field(compare=False)
    inputs: tuple[str, ...] = ()
    request: tuple[str, ...] = ()
    mode: Literal["arrow", "pandas"] = "arrow"

    def __post_init__(self) -> None:
        check_name(self.name, "feature")
        if not callable(self.fn):
            raise InvalidInputError(
                f"derived feature {self.name!r} has no function",
                expected="a callable taking a batch",
                received=repr(self.fn),
                fix="pass fn=lambda batch: ...",
            )
        if not self.inputs and not self.request:
            raise InvalidInputError(
                f"derived feature {self.name!r} reads nothing",
                expected="inputs=(feature, ...) and/or request=(field, ...)",
                fix="list the columns the function reads",
            )
        if self.mode not in ("arrow", "pandas"):
            raise InvalidInputError(
                f"unknown mode {self.mode!r}", expected="arrow or pandas", fix="mode='arrow'"
            )

    def code_digest(self) -> str:
        try:
            code = inspect.getsource(self.fn)
        except (OSError, TypeError):
            code = getattr(getattr(self.fn, "__code__", None), "co_code", b"").hex()
        return hashlib.sha256(code.encode()).hexdigest()

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "request": list(self.request),
            "mode": self.mode,
            "code": self.code_digest(),
        }


def on_demand(
    name: str, fn: BatchFn, *, request: tuple[str, ...], inputs: tuple[str, ...] = ()
) -> DerivedFeature:
    """A request-time feature: computed from request fields (and optionally stored features).

    >>> f = on_demand("is_big", lambda b: [v > 10 for v in b["amt"].to_pylist()], request=("amt",))
    >>> f.request
    ('amt',)
    """
    return DerivedFeature(name, fn, inputs=inputs, request=request)


@dataclass(frozen=True, slots=True)
class FeatureRepo:
    """All definitions of a workspace; names are checked for conflicts on construction."""

    entities: tuple[Entity, ...] = ()
    views: tuple[FeatureView, ...] = ()
    derived: tuple[DerivedFeature, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}

        def claim(name: str, owner: str) -> None:
            if name in seen:
                raise FeatureNameConflictError(
                    f"feature name {name!r} is defined twice",
                    expected="each feature and view name defined once",
                    received=f"{seen[name]} and {owner}",
                    fix="rename one of them",
                )
            seen[name] = owner

        for view in self.views:
            claim(view.name, f"feature view {view.name}")
        for view in self.views:
            for feature in view.features:
                claim(feature, f"view {view.name}")
        for d in self.derived:
            claim(d.name, f"derived feature {d.name}")
        known = set(self.feature_names())
        for d in self.derived:
            unknown = [i for i in d.inputs if i not in known or i == d.name]
            if unknown:
                raise InvalidInputError(
                    f"derived feature {d.name!r} reads features that are not defined",
                    expected=f"inputs among {', '.join(sorted(known - {d.name}))}",
                    received=", ".join(unknown),
                    fix="define those features in a view, or fix the names",
                )

    def feature_names(self) -> tuple[str, ...]:
        return (*(f for v in self.views for f in v.features), *(d.name for d in self.derived))

    def view(self, name: str) -> FeatureView:
        for v in self.views:
            if v.name == name:
                return v
        raise InvalidInputError(
            f"no feature view named {name!r}",
            expected=", ".join(v.name for v in self.views) or "a defined view",
            received=name,
            fix="see `keel features list`",
        )

    @staticmethod
    def digest(item: FeatureView | DerivedFeature) -> str:
        """The version key of a definition: the digest of its config (and code, for a function)."""
        text = json.dumps(item.config(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
