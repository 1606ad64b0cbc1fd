"""Column kinds for tabular synthesis, and one numeric encoding shared by the samplers and metrics.

Numbers (integers, floats, decimals) are ``numeric``; booleans, dictionaries and short strings are
``categorical``; long free text, times, binaries and nested types are refused with the column named,
because interpolating them would make values that mean nothing.

>>> import pyarrow as pa
>>> spec = classify(pa.table({"x": [1.0, 2.0], "c": ["a", "b"]}), ["x", "c"])
>>> spec.numeric, spec.categorical
(('x',), ('c',))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import InvalidInputError

TEXT_MEAN_LENGTH = 40  # strings longer than this on average are free text, as in data splits
MAX_ONE_HOT = 30  # categories kept per column in the encoding; rarer ones share one column


class UnsupportedColumnError(InvalidInputError):
    """A column whose type the chosen method cannot synthesise."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    integers: tuple[str, ...]  # numeric columns whose synthetic values are rounded

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


def is_text(values: pa.ChunkedArray | pa.Array) -> bool:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    if len(values) == values.null_count:
        return False
    mean = pc.mean(pc.utf8_length(values)).as_py()
    return bool(mean is not None and mean > TEXT_MEAN_LENGTH)


def classify(table: pa.Table, columns: Sequence[str], *, text_ok: bool = False) -> TableSpec:
    numeric: list[str] = []
    categorical: list[str] = []
    integers: list[str] = []
    for name in columns:
        values = table.column(name)
        kind = values.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            numeric.append(name)
            if pa.types.is_integer(kind):
                integers.append(name)
        elif pa.types.is_boolean(kind) or pa.types.is_dictionary(kind):
            categorical.append(name)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if is_text(values) and not text_ok:
                raise UnsupportedColumnError(
                    f"column {name!r} holds free text, which tabular synthesis cannot make",
                    expected=f"numbers or categories (strings of at most {TEXT_MEAN_LENGTH} characters "
                    "on average)",
                    received=f"{name}: strings of {pc.mean(pc.utf8_length(values)).as_py():.0f} characters "
                    "on average",
                    fix="use --method text-token or text-embedding for text, or drop the column first",
                )
            categorical.append(name)
        else:
            raise UnsupportedColumnError(
                f"column {name!r} has the type {kind}, which tabular synthesis does not support",
                expected="numeric, boolean or string columns (the dataset's id and time roles are "
                "handled separately)",
                received=f"{name}: {kind}",
                fix="drop or convert the column in a new version, or make it the dataset's time column",
            )
    return TableSpec(tuple(numeric), tuple(categorical), tuple(integers))


def category_strings(values: pd.Series) -> pd.Series:
    """Categories as strings, a missing value as None (kept apart from the string 'None')."""
    return values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


@dataclass(frozen=True, slots=True)
class Encoder:
    """Standardised numbers (missing -> the median) and one-hot categories, fitted on real rows."""

    spec: TableSpec
    centre: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    median: npt.NDArray[np.float64]
    levels: tuple[tuple[str, ...], ...]

    @classmethod
    def fit(cls, frame: pd.DataFrame, spec: TableSpec) -> Encoder:
        num = frame[list(spec.numeric)].to_numpy(dtype=np.float64, na_value=np.nan)
        if num.shape[1]:
            median = np.nan_to_num(np.nanmedian(num, axis=0)) if len(num) else np.zeros(num.shape[1])
            filled = np.where(np.isnan(num), median, num)
            centre, scale = filled.mean(axis=0), filled.std(axis=0)
        else:
            median = centre = scale = np.zeros(0)
        scale = np.where(scale > 0, scale, 1.0)
        levels = []
        for name in spec.categorical:
            counts = category_strings(frame[name]).fillna("\x00missing").value_counts()
            levels.append(tuple(str(v) for v in counts.index[:MAX_ONE_HOT]))
        return cls(spec, centre, scale, median, tuple(levels))

    def transform(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        num = frame[list(self.spec.numeric)].to_numpy(dtype=np.float64, na_value=np.nan)
        parts: list[Any] = [(np.where(np.isnan(num), self.median, num) - self.centre) / self.scale]
        for name, levels in zip(self.spec.categorical, self.levels, strict=True):
            values = category_strings(frame[name]).fillna("\x00missing").to_numpy()
            hot = np.zeros((len(frame), len(levels) + 1))
            index = {v: i for i, v in enumerate(levels)}
            hot[np.arange(len(frame)), [index.get(v, len(levels)) for v in values]] = 1.0
            parts.append(hot)
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def nearest(reference: pd.DataFrame, queries: pd.DataFrame, spec: TableSpec) -> npt.NDArray[np.int64]:
    """For each query row, the position of the closest reference row (standardised, one-hot)."""
    from sklearn.neighbors import NearestNeighbors

    encoder = Encoder.fit(reference, spec)
    index = NearestNeighbors(n_neighbors=1).fit(encoder.transform(reference))
    return np.asarray(
        index.kneighbors(encoder.transform(queries), return_distance=False)[:, 0], dtype=np.int64
    )
