"""What made an augmented version, stored in its ``source`` text so ``evaluate`` can rebuild the holdout.

>>> m = Manifest("d", 1, "abc", {"target": "yes", "method": "smote"}, "class", 5, 10, 2, None)
>>> Manifest.from_source(m.to_source()) == m
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from keelml.core.errors import InvalidInputError
from keelml.core.refs import DatasetRef

PREFIX = "augment:"


@dataclass(frozen=True, slots=True)
class Manifest:
    dataset: str
    version: int  # the source version
    digest: str  # the source version's digest
    config: dict[str, Any]  # AugmentConfig.to_json()
    target_kind: str  # "class" or "slice"
    target_rows: int  # real rows of the target (holdout included)
    synthetic_rows: int
    holdout_rows: int
    epsilon: float | None  # the DP budget spent, if any

    @property
    def source(self) -> DatasetRef:
        return DatasetRef(self.dataset, self.version, self.digest)

    def to_source(self) -> str:
        return PREFIX + json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_source(cls, text: str | None, *, where: str = "the version") -> Manifest:
        if not text or not text.startswith(PREFIX):
            raise InvalidInputError(
                f"{where} was not made by keel augment",
                expected="a version written by `keel augment` (operation augment)",
                received=(text or "no source")[:80],
                fix="pass the augmented version, e.g. NAME@LATEST after `keel augment NAME ...`",
            )
        return cls(**json.loads(text[len(PREFIX) :]))
