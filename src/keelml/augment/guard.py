"""Synthetic rows never reach evaluation: the holdout of real rows, and the check that enforces it.

The holdout is chosen by row content (a seeded hash of each real row, stratified by label), so the
same source version and seed always give the same holdout, whatever the storage order, and
identical rows always fall on the same side. ``augment`` fits on the rows outside it;
``evaluate`` tests on it, and every metric that takes test rows calls :func:`require_real` first.

>>> import pyarrow as pa
>>> require_real(pa.table({"x": [1], "keel_synthetic": [True]}), "the rows")
Traceback (most recent call last):
...
keelml.augment.guard.SyntheticLeakError: the rows contain 1 synthetic row(s); evaluation uses real rows only
  expected: rows whose keel_synthetic is false (or no keel_synthetic column)
  received: 1 of 1 rows marked synthetic
  fix: take test and validation rows from the real rows (keelml does this for you in ws.augment.evaluate)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from keelml.augment.config import SYNTHETIC_COLUMN
from keelml.core.errors import InvalidInputError


class SyntheticLeakError(InvalidInputError):
    """Synthetic rows were about to be used as evaluation (test, validation or holdout) rows."""


def synthetic_mask(table: pa.Table | pd.DataFrame) -> npt.NDArray[np.bool_]:
    if SYNTHETIC_COLUMN not in (table.column_names if isinstance(table, pa.Table) else table.columns):
        return np.zeros(len(table), dtype=bool)
    values = table[SYNTHETIC_COLUMN]
    listed = values.to_pylist() if isinstance(values, pa.ChunkedArray) else values.tolist()
    return np.array([bool(v) for v in listed], dtype=bool)


def require_real(table: pa.Table | pd.DataFrame, what: str) -> None:
    marked = synthetic_mask(table)
    if marked.any():
        raise SyntheticLeakError(
            f"{what} contain {int(marked.sum())} synthetic row(s); evaluation uses real rows only",
            expected=f"rows whose {SYNTHETIC_COLUMN} is false (or no {SYNTHETIC_COLUMN} column)",
            received=f"{int(marked.sum())} of {len(marked)} rows marked synthetic",
            fix="take test and validation rows from the real rows (keelml does this for you in "
            "ws.augment.evaluate)",
        )


def holdout_mask(
    table: pa.Table, *, label: str | None, exclude: tuple[str, ...], fraction: float, seed: int
) -> npt.NDArray[np.bool_]:
    """Real rows kept out of the fit: ``fraction`` of each label's real rows, picked by content hash."""
    real = ~synthetic_mask(table)
    out = np.zeros(table.num_rows, dtype=bool)
    if fraction <= 0:
        return out
    columns = [c for c in table.column_names if c not in (*exclude, SYNTHETIC_COLUMN)]
    frame = table.select(columns).to_pandas()
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    salted = pd.util.hash_array(hashes ^ np.uint64(seed * 0x9E3779B97F4A7C15 % (1 << 64)))
    strata = (
        np.asarray([str(v) for v in table.column(label).to_pylist()])
        if label is not None and label in table.column_names
        else np.zeros(table.num_rows, dtype=str)
    )
    for value in np.unique(strata[real]):
        rows = np.flatnonzero(real & (strata == value))
        take = round(len(rows) * fraction)
        out[rows[np.argsort(salted[rows], kind="stable")[:take]]] = True
    return out
