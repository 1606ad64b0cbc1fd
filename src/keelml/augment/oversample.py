"""Tabular oversampling with imbalanced-learn: SMOTE, Borderline-SMOTE, ADASYN and SMOTE-NC.

The target rows are the minority of a two-group problem (target vs every other real row), so a class
and a slice are handled alike. Numbers are standardised before the neighbour search (so no column
dominates the distances by its unit) and mapped back afterwards; integer columns are rounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.augment.columns import TableSpec, UnsupportedColumnError, category_strings
from keelml.core.errors import InvalidInputError

_NAMES = {
    "smote": "SMOTE",
    "borderline-smote": "Borderline-SMOTE",
    "adasyn": "ADASYN",
    "smote-nc": "SMOTE-NC",
}
BORDER_NEIGHBOURS = 10  # Borderline-SMOTE's m_neighbors: neighbours (of any group) that decide "danger"


class TooFewRowsError(InvalidInputError):
    """The target has fewer rows than the method needs."""


def check_kinds(method: str, spec: TableSpec) -> None:
    name = _NAMES[method]
    if method == "smote-nc":
        if not spec.categorical:
            raise UnsupportedColumnError(
                "SMOTE-NC is for mixed tables, and every feature column is numeric",
                expected="at least one categorical column",
                received=", ".join(spec.numeric),
                fix="use --method smote",
            )
        if not spec.numeric:
            raise UnsupportedColumnError(
                "SMOTE-NC needs at least one numeric column to interpolate, and every feature is categorical",
                expected="at least one numeric column",
                received=", ".join(spec.categorical),
                fix="use --method copula, which samples categories",
            )
    elif spec.categorical:
        raise UnsupportedColumnError(
            f"{name} interpolates numbers, and {len(spec.categorical)} feature column(s) are categorical",
            expected="numeric feature columns only",
            received="categorical: " + ", ".join(spec.categorical[:10]),
            fix="use --method smote-nc or copula for mixed tables, or drop those columns",
        )


def _check_rows(method: str, frame: pd.DataFrame, target: npt.NDArray[np.bool_], k: int, what: str) -> None:
    n = int(target.sum())
    if n < k + 1:
        raise TooFewRowsError(
            f"{_NAMES[method]} needs at least k_neighbors + 1 = {k + 1} target rows (it interpolates between "
            f"a row and one of its k_neighbors={k} nearest target rows), and {what} has {n}",
            expected=f">= {k + 1} real rows in the target",
            received=f"{n} row(s)",
            fix=f"lower --k-neighbors (at most {max(n - 1, 1)}; at least 2 target rows are needed), "
            "use --method copula, or collect more rows",
        )
    if method == "borderline-smote" and len(frame) <= BORDER_NEIGHBOURS:
        raise TooFewRowsError(
            f"Borderline-SMOTE looks at m_neighbors={BORDER_NEIGHBOURS} neighbours of each target row, and "
            f"the data has only {len(frame)} rows",
            expected=f"more than {BORDER_NEIGHBOURS} real rows",
            received=f"{len(frame)} rows",
            fix="use --method smote",
        )
    missing = [c for c in frame.columns if frame[c].dtype.kind == "f" and frame[c].isna().any()]
    if missing:
        raise UnsupportedColumnError(
            f"{_NAMES[method]} needs complete rows, and {len(missing)} numeric column(s) have missing values",
            expected="no missing numbers",
            received=", ".join(f"{c} ({int(frame[c].isna().sum())} missing)" for c in missing[:5]),
            fix="fill them in a new version, or use --method copula (it models missing values)",
        )


def _sampler(method: str, n_total: int, k: int, seed: int, categorical: list[int]) -> Any:
    from imblearn.over_sampling import ADASYN, SMOTE, SMOTENC, BorderlineSMOTE  # type: ignore[import-untyped]

    strategy = {1: n_total}
    if method == "smote":
        return SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
    if method == "borderline-smote":
        return BorderlineSMOTE(
            sampling_strategy=strategy, k_neighbors=k, m_neighbors=BORDER_NEIGHBOURS, random_state=seed
        )
    if method == "adasyn":
        return ADASYN(sampling_strategy=strategy, n_neighbors=k, random_state=seed)
    return SMOTENC(
        categorical_features=categorical, sampling_strategy=strategy, k_neighbors=k, random_state=seed
    )


def oversample(
    frame: pd.DataFrame,
    spec: TableSpec,
    target: npt.NDArray[np.bool_],
    n_new: int,
    *,
    method: str,
    k_neighbors: int,
    seed: int,
    what: str,
) -> pd.DataFrame:
    """``n_new`` synthetic rows (about that many for ADASYN) of ``spec.columns`` near the target rows."""
    check_kinds(method, spec)
    _check_rows(method, frame[list(spec.numeric)], target, k_neighbors, what)
    num = frame[list(spec.numeric)].to_numpy(dtype=np.float64)
    centre, scale = num.mean(axis=0), num.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    x = pd.DataFrame((num - centre) / scale, columns=list(spec.numeric))
    for name in spec.categorical:
        x[name] = category_strings(frame[name]).fillna("\x00missing").astype(object)
    categorical = list(range(len(spec.numeric), len(spec.columns)))
    sampler = _sampler(method, int(target.sum()) + n_new, k_neighbors, seed, categorical)
    try:
        resampled, _ = sampler.fit_resample(x, target.astype(np.int64))
    except RuntimeError as exc:  # ADASYN: no majority rows near any target row
        raise InvalidInputError(
            f"{_NAMES[method]} cannot weight the target rows: none has a non-target neighbour",
            expected="target rows that overlap other rows (ADASYN focuses on the hard ones)",
            received=str(exc).split(".")[0],
            fix="use --method smote",
        ) from exc
    new = resampled.iloc[len(x) :].reset_index(drop=True)
    if len(new) == 0:
        raise InvalidInputError(
            f"{_NAMES[method]} made no rows: no target row lies on the border with other rows",
            expected="target rows with other rows among their neighbours",
            received=f"{int(target.sum())} target rows, all surrounded by target rows",
            fix="use --method smote, which samples from every target row",
        )
    out = pd.DataFrame(
        new[list(spec.numeric)].to_numpy(dtype=np.float64) * scale + centre, columns=spec.numeric
    )
    for name in spec.integers:
        low, high = frame[name].min(), frame[name].max()
        out[name] = np.clip(np.round(out[name]), low, high)
    for name in spec.categorical:
        out[name] = new[name].map(lambda v: None if v == "\x00missing" else v).to_numpy()
    return out
