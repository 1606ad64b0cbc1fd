"""Training/serving parity: the same entities through the offline and the online path, compared.

For a sample of entities of each view, the offline path joins features as of ``now`` (point in time,
ttl) and the online path reads the store with the same ``now``; any differing value is reported per
feature. Derived features are included (both paths run the same function); on-demand features need
request data and are left out.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from keelml.core.errors import InvalidInputError
from keelml.features.materialize import latest_rows

if TYPE_CHECKING:
    from keelml.features.store import FeatureStore


@dataclass(frozen=True, slots=True)
class Mismatch:
    feature: str
    entity: dict[str, Any]
    offline: Any
    online: Any


@dataclass(frozen=True, slots=True)
class ParityReport:
    entities: int
    features: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]
    as_of: dt.datetime

    def __post_init__(self) -> None:
        if self.entities < 0:
            raise InvalidInputError(
                "entities must be >= 0", received=str(self.entities), fix="count entities"
            )

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def per_feature(self) -> dict[str, int]:
        counts = dict.fromkeys(self.features, 0)
        for m in self.mismatches:
            counts[m.feature] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entities": self.entities,
            "as_of": self.as_of.isoformat(),
            "mismatches_per_feature": self.per_feature(),
            "examples": [
                {"feature": m.feature, "entity": m.entity, "offline": m.offline, "online": m.online}
                for m in self.mismatches[:20]
            ],
        }


def same(a: Any, b: Any) -> bool:
    """Equal values, floats within 1e-9 relative (NaN equals NaN).

    >>> same(0.1 + 0.2, 0.3), same(None, None), same(1.0, None)
    (True, True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or math.isclose(fa, fb, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def check_parity(
    fs: FeatureStore, *, sample: int = 100, seed: int = 0, now: dt.datetime | None = None
) -> ParityReport:
    if sample < 1:
        raise InvalidInputError("the parity sample must be >= 1", received=str(sample), fix="--sample 100")
    as_of = now or dt.datetime.now(dt.UTC)
    cutoff = int(as_of.timestamp() * 1_000_000)
    rng = random.Random(seed)
    mismatches: list[Mismatch] = []
    checked: list[str] = []
    total = 0
    for view in fs.repo.views:
        derived = [
            d.name
            for d in fs.repo.derived
            if d.inputs and not d.request and set(d.inputs) <= set(view.features)
        ]
        names = [*view.features, *derived]
        checked += names
        source = fs.scan(view)
        keys = latest_rows(view, source, cutoff, None).select(list(view.entity.keys)).to_pylist()
        picked = rng.sample(keys, min(sample, len(keys)))
        if not picked:
            continue
        total += len(picked)
        ts_col = "__parity_as_of"
        rows = pa.Table.from_pylist(picked).append_column(
            ts_col, pa.array([as_of] * len(picked), pa.timestamp("us", "UTC"))
        )
        offline = fs.get_historical_features(rows, names, timestamp=ts_col).to_pylist()
        online = fs.get_online_features(picked, names, now=as_of).rows
        for key, off, on in zip(picked, offline, online, strict=True):
            mismatches += [Mismatch(n, key, off[n], on[n]) for n in names if not same(off[n], on[n])]
    return ParityReport(total, tuple(checked), tuple(mismatches), as_of)
