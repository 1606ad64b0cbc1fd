"""Dispatch to a method: the synthetic columns, and for each synthetic row its real source row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from keelml.augment.columns import classify, nearest
from keelml.augment.config import AugmentConfig
from keelml.augment.copula import GaussianCopula
from keelml.augment.oversample import TooFewRowsError, oversample
from keelml.augment.target import Target

COPULA_MIN_ROWS = 2  # a correlation needs two rows


def generate(
    table: pa.Table,
    config: AugmentConfig,
    target: Target,
    fit_rows: npt.NDArray[np.bool_],
    n_new: int,
    *,
    label: str | None,
    skip: set[str],
    text: str | None,
    what: str,
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    fit_target = target.mask & fit_rows
    if text is not None:
        return _text(table, config, fit_target, fit_rows, n_new, text, what)
    # a slice target's copula also models the label; the oversamplers copy it from the nearest row
    keep_label = target.kind == "slice" and config.method == "copula"
    columns = [c for c in table.column_names if c not in skip or (keep_label and c == label)]
    spec = classify(table, columns)
    frame = table.select(columns).to_pandas()
    if config.method == "copula":
        fitted = frame[fit_target].reset_index(drop=True)
        if len(fitted) < COPULA_MIN_ROWS:
            raise TooFewRowsError(
                f"the copula needs at least {COPULA_MIN_ROWS} target rows to estimate correlations, and "
                f"{what} has {len(fitted)}",
                expected=f">= {COPULA_MIN_ROWS} real rows in the target",
                received=f"{len(fitted)} row(s)",
                fix="target a larger class or slice, or lower --holdout",
            )
        model = GaussianCopula.fit(fitted, spec, seed=config.seed, epsilon=config.dp_epsilon)
        new = model.sample(n_new, seed=config.seed + 1)
    else:
        fitted = frame[fit_rows].reset_index(drop=True)
        new = oversample(
            fitted,
            spec,
            target.mask[fit_rows],
            n_new,
            method=config.method,
            k_neighbors=config.k_neighbors,
            seed=config.seed,
            what=what,
        )
    positions = np.flatnonzero(fit_target)
    features = classify(table, [c for c in columns if c != label])
    closest = nearest(frame.iloc[positions].reset_index(drop=True), new, features)
    return new, positions[closest]


def _text(
    table: pa.Table,
    config: AugmentConfig,
    fit_target: npt.NDArray[np.bool_],
    fit_rows: npt.NDArray[np.bool_],
    n_new: int,
    text: str,
    what: str,
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    values = table.column(text).to_pylist()
    positions = np.flatnonzero(fit_target)
    targets = [values[i] for i in positions]
    rng = np.random.default_rng(config.seed)
    if config.method == "text-token":
        from keelml.augment.text_tokens import token_augment

        corpus = [values[i] for i in np.flatnonzero(fit_rows)]
        texts, sources = token_augment(
            targets, n_new, rate=config.token_rate, rng=rng, corpus=corpus, what=what
        )
    else:
        from keelml.augment.text_embed import embedding_augment

        texts, sources = embedding_augment(targets, n_new, rate=config.token_rate, rng=rng, what=what)
    return pd.DataFrame({text: pd.Series(texts, dtype=object)}), positions[
        np.asarray(sources, dtype=np.int64)
    ]
