"""Candidates of a compression search, the Pareto front and the choice of the winner.

A candidate dominates another when it is at least as accurate, at most as slow, as large and as costly,
and strictly better on one of them. The winner is the fastest candidate (p50 latency, then size) whose
accuracy drop from the parent is within the budget and whose latency meets the target, if one is given;
a candidate that misses the budget is never the winner.

>>> a = Candidate("int8", "m@3", 0.90, 0.00, 2.0, 3.0, 1000, 0.5, 100)
>>> b = Candidate("distill+int8", "m@5", 0.89, 0.01, 1.0, 1.5, 500, 0.2, 50)
>>> c = Candidate("fp32", "m@2", 0.90, 0.00, 4.0, 5.0, 4000, 1.0, 100)
>>> [x.label for x in pareto_front([a, b, c])]
['int8', 'distill+int8']
>>> choose([a, b, c], budget=0.005, latency_target_ms=None).label
'int8'
>>> choose([a, b, c], budget=0.005, latency_target_ms=1.5) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Candidate:
    """One measured variant; ``accuracy_drop`` is from the parent's test accuracy (positive = worse)."""

    label: str
    spec: str | None
    accuracy: float
    accuracy_drop: float
    p50_ms: float | None
    p90_ms: float | None
    size_bytes: int | None
    cost_per_million: float | None
    parameters: int | None
    note: str = ""
    eligible: bool = True  # False for the uncompressed parent, shown as the baseline only

    def within(self, budget: float, latency_target_ms: float | None) -> bool:
        if self.accuracy_drop > budget + 1e-12:
            return False
        return latency_target_ms is None or (self.p50_ms is not None and self.p50_ms <= latency_target_ms)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _costs(c: Candidate) -> tuple[float, ...]:
    inf = float("inf")
    return (
        -c.accuracy,
        inf if c.p50_ms is None else c.p50_ms,
        inf if c.size_bytes is None else float(c.size_bytes),
        inf if c.cost_per_million is None else c.cost_per_million,
    )


def dominates(a: Candidate, b: Candidate) -> bool:
    ca, cb = _costs(a), _costs(b)
    return all(x <= y for x, y in zip(ca, cb, strict=True)) and ca != cb


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates no other candidate dominates, in their given order."""
    return [c for c in candidates if not any(dominates(o, c) for o in candidates if o is not c)]


def choose(
    candidates: Sequence[Candidate], *, budget: float, latency_target_ms: float | None
) -> Candidate | None:
    """The fastest candidate within the budget (and target); None when none qualifies."""
    eligible = [c for c in candidates if c.eligible and c.spec and c.within(budget, latency_target_ms)]
    if not eligible:
        return None
    inf = float("inf")
    return min(eligible, key=lambda c: (inf if c.p50_ms is None else c.p50_ms, c.size_bytes or 0))
