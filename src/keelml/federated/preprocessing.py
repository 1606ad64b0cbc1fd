"""Preprocessing fitted without pooling data: clients send column statistics, the server merges them.

The merged spec is the JSON of ``keelml.train``'s saved ``Preprocessor`` (numeric: missing -> fill value,
standard scaling; categorical: one-hot over the most frequent categories plus ``<other>``), so a
federated model file loads and serves like a centrally trained one. Numeric columns are filled with
the federated mean (a median cannot be merged from per-client sums).
Each client runs :class:`Preprocessing` on its own rows; the statistics are the only data-derived
values that leave a client before training, once.

>>> import pandas as pd
>>> a = local_stats(pd.DataFrame({"x": [1.0, 3.0], "c": ["u", "v"]}), label="c")
>>> b = local_stats(pd.DataFrame({"x": [5.0, None], "c": ["u", "u"]}), label="c")
>>> spec = merge_stats([a, b], max_categories=20)
>>> spec.classes, spec.preprocessing.output_names
(('u', 'v'), ('x',))
>>> [round(float(v), 3) for v in spec.preprocessing.transform(pd.DataFrame({"x": [3.0, None]}))[:, 0]]
[0.0, 0.0]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.core.errors import ColumnNotFoundError, EmptySourceError, SchemaConflictError

OTHER = "<other>"


class SchemaMismatchError(SchemaConflictError):
    """A client's partition does not have the columns (or column kinds) the federation trains on."""


def _is_numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col))


@dataclass(frozen=True, slots=True)
class ColumnStats:
    kind: str  # "numeric" or "categorical"
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    categories: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class ClientStats:
    """What one client reveals about its rows: schema, row count, label counts, column statistics."""

    rows: int
    labels: Mapping[str, int]
    columns: Mapping[str, ColumnStats]

    def to_json(self) -> dict[str, Any]:
        cols = {
            n: [c.kind, c.count, c.total, c.squares, dict(c.categories or {})]
            for n, c in self.columns.items()
        }
        return {"rows": self.rows, "labels": dict(self.labels), "columns": cols}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientStats:
        cols = {
            str(n): ColumnStats(str(k), int(c), float(t), float(s), {str(a): int(b) for a, b in cats.items()})
            for n, (k, c, t, s, cats) in data["columns"].items()
        }
        return cls(int(data["rows"]), {str(k): int(v) for k, v in data["labels"].items()}, cols)


def local_stats(frame: pd.DataFrame, *, label: str, features: Sequence[str] | None = None) -> ClientStats:
    """Statistics of one client's rows (run on the client)."""
    if label not in frame.columns:
        raise ColumnNotFoundError(
            f"label column {label!r} is not in this client's data",
            expected=f"one of {', '.join(map(str, frame.columns))}",
            received=label,
            fix="give every client the same columns, including the label",
        )
    frame = frame[frame[label].notna()]
    if len(frame) == 0:
        raise EmptySourceError(
            "this client's partition has no labelled rows",
            expected="at least one row with a label",
            received="0 rows",
            fix="give the client data, or leave it out of the federation",
        )
    names = list(features) if features is not None else [c for c in frame.columns if c != label]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            "this client's partition lacks feature columns of the federation",
            expected=", ".join(names),
            received=f"missing {', '.join(missing)}",
            fix="give every client the same feature columns",
        )
    columns: dict[str, ColumnStats] = {}
    for name in names:
        col = frame[name]
        if _is_numeric(col):
            values = col.astype("float64").dropna().to_numpy()
            columns[name] = ColumnStats("numeric", len(values), float(values.sum()), float((values**2).sum()))
        else:
            counts = col.dropna().astype(str).value_counts()
            columns[name] = ColumnStats(
                "categorical", int(counts.sum()), categories={str(k): int(v) for k, v in counts.items()}
            )
    labels = {str(k): int(v) for k, v in frame[label].astype(str).value_counts().items()}
    return ClientStats(len(frame), labels, columns)


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """The saved preprocessing, applied on a client's own rows (same output as train's Preprocessor)."""

    numeric: tuple[tuple[str, float, float, float], ...]  # name, fill, mean, std
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n[0] for n in self.numeric) + tuple(c[0] for c in self.categorical)

    @property
    def output_names(self) -> tuple[str, ...]:
        names = [n[0] for n in self.numeric]
        for name, cats in self.categorical:
            names.extend([f"{name}={v}" for v in cats] + [f"{name}={OTHER}"])
        return tuple(names)

    def transform(self, frame: pd.DataFrame) -> npt.NDArray[np.float32]:
        missing = [n for n in self.input_names if n not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                "the data lacks columns the model was trained on",
                expected=", ".join(self.input_names),
                received=f"missing {', '.join(missing)}",
                fix="pass rows with every training feature column",
            )
        parts: list[npt.NDArray[Any]] = []
        for name, fill, mean, std in self.numeric:
            values = pd.to_numeric(frame[name], errors="coerce").astype("float64").fillna(fill)
            parts.append(((values.to_numpy() - mean) / std)[:, None])
        for name, cats in self.categorical:
            text = frame[name].astype("string").fillna(OTHER).to_numpy(dtype=object)
            index = {v: i for i, v in enumerate(cats)}
            codes = np.array([index.get(v, len(cats)) for v in text], dtype=np.int64)
            onehot = np.zeros((len(frame), len(cats) + 1))
            onehot[np.arange(len(frame)), codes] = 1.0
            parts.append(onehot)
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(frame), 0), np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "numeric": [list(n) for n in self.numeric],
            "categorical": [[name, list(cats)] for name, cats in self.categorical],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls(
            tuple((str(n), float(f), float(m), float(s)) for n, f, m, s in data["numeric"]),
            tuple((str(n), tuple(str(v) for v in cats)) for n, cats in data["categorical"]),
        )


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What the server sends each client to train: preprocessing and class names."""

    preprocessing: Preprocessing
    classes: tuple[str, ...]
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "preprocessing": self.preprocessing.to_json(),
            "classes": list(self.classes),
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSpec:
        return cls(Preprocessing.from_json(data["preprocessing"]), tuple(data["classes"]), int(data["rows"]))


def merge_stats(stats: Sequence[ClientStats], *, max_categories: int) -> TaskSpec:
    """Merge client statistics; every client must report the same columns of the same kinds."""
    first = stats[0].columns
    for i, s in enumerate(stats[1:], start=1):
        if {n: c.kind for n, c in s.columns.items()} != {n: c.kind for n, c in first.items()}:
            theirs = {n: c.kind for n, c in s.columns.items()}
            ours = {n: c.kind for n, c in first.items()}
            diff = sorted(set(theirs.items()) ^ set(ours.items()))
            raise SchemaMismatchError(
                f"client {i}'s partition has a different schema from client 0's",
                expected=", ".join(f"{n} ({k})" for n, k in sorted(ours.items())),
                received="differs in " + ", ".join(f"{n} ({k})" for n, k in diff),
                fix="give every client the same feature columns with the same types",
            )
    numeric: list[tuple[str, float, float, float]] = []
    categorical: list[tuple[str, tuple[str, ...]]] = []
    for name, col in first.items():
        parts = [s.columns[name] for s in stats]
        if col.kind == "numeric":
            count = sum(p.count for p in parts)
            mean = sum(p.total for p in parts) / count if count else 0.0
            var = max(sum(p.squares for p in parts) / count - mean**2, 0.0) if count else 0.0
            std = math.sqrt(var)
            numeric.append((name, mean, mean, std if std > 1e-12 else 1.0))
        else:
            counts: Counter[str] = Counter()
            for p in parts:
                counts.update(p.categories or {})
            top = sorted(counts, key=lambda v: (-counts[v], v))[:max_categories]
            categorical.append((name, tuple(top)))
    labels: Counter[str] = Counter()
    for s in stats:
        labels.update(s.labels)
    classes = tuple(sorted(labels))
    if len(classes) < 2:
        raise EmptySourceError(
            f"the clients hold {len(classes)} label class(es) in all; a classifier needs two",
            received=", ".join(classes) or "none",
            fix="check the label column",
        )
    return TaskSpec(Preprocessing(tuple(numeric), tuple(categorical)), classes, sum(s.rows for s in stats))
