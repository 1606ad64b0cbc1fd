"""``keel augment evaluate``: fidelity, utility and privacy of an augmented version against real rows.

The real rows are split by the holdout recorded at augmentation time (:mod:`keelml.augment.guard`):
the method learned from the training rows only, so the holdout rows are unseen real rows. Fidelity
compares the synthetic rows with the real training rows of the target; privacy compares distances
to training rows with distances to holdout rows; utility trains on real, real with class weights,
augmented (real + synthetic) and, where they hold two classes, synthetic rows, and tests every
model on the holdout -- which is checked to hold no synthetic row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.augment.api import _text_column, declared_slices
from keelml.augment.columns import Encoder, TableSpec, classify
from keelml.augment.config import SYNTHETIC_COLUMN, TEXT_METHODS, AugmentConfig
from keelml.augment.guard import holdout_mask, require_real, synthetic_mask
from keelml.augment.manifest import Manifest
from keelml.augment.metrics import Detection, Privacy, Quality, detection, privacy, quality
from keelml.augment.target import resolve_target
from keelml.augment.utility import Utility, utility
from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace

PREVIEW_COLUMNS = 6
PREVIEW_ROWS = 2000
TEXT_MEASURES = ("words", "characters")  # what text fidelity compares


@dataclass(frozen=True, slots=True)
class ColumnPreview:
    """A sample of one column, real training target rows vs synthetic rows, for the report's plots."""

    name: str
    real: tuple[Any, ...]
    synthetic: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AugmentEvaluation:
    synthetic: DatasetRef
    real: DatasetRef
    method: str
    target: str
    target_kind: str
    rare_class: str | None
    synthetic_rows: int
    train_rows: int  # real rows the method could learn from
    holdout_rows: int  # real rows it never saw: the test rows
    quality: Quality
    detection: Detection
    privacy: Privacy | None  # None when the target has too few holdout rows
    utility: tuple[Utility, ...]
    epsilon: float | None
    previews: tuple[ColumnPreview, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "synthetic": str(self.synthetic),
            "real": str(self.real),
            "method": self.method,
            "target": self.target,
            "target_kind": self.target_kind,
            "rare_class": self.rare_class,
            "synthetic_rows": self.synthetic_rows,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "epsilon": self.epsilon,
            "fidelity": {
                "quality": self.quality.score,
                "column_shapes": round(self.quality.shape_score, 6),
                "pair_trends": round(self.quality.trend_score, 6),
                "detection_auc": self.detection.auc,
                "detection_score": self.detection.score,
                "shapes": {k: round(v, 6) for k, v in self.quality.shapes.items()},
            },
            "privacy": None
            if self.privacy is None
            else {k: getattr(self.privacy, k) for k in self.privacy.__slots__},
            "utility": [u.to_json() for u in self.utility],
        }


def _sources(
    ws: Workspace, synthetic: str | DatasetRef, real: str | DatasetRef | None
) -> tuple[DatasetRef, DatasetRef, Manifest]:
    datasets: Any = ws.datasets
    synth_ref: DatasetRef = datasets.ref(synthetic)
    manifest = Manifest.from_source(datasets.version(synth_ref).source, where=str(synth_ref))
    source: DatasetRef = datasets.ref(f"{manifest.dataset}@{manifest.version}")
    if real is not None:
        given: DatasetRef = datasets.ref(real)
        if given.digest != manifest.digest:
            raise InvalidInputError(
                f"{given} is not the version {synth_ref} was made from, so its unseen rows are unknown",
                expected=f"--real {source} (the source recorded by keel augment)",
                received=str(given),
                fix=f"pass --real {source}, or leave --real out",
            )
    if manifest.holdout_rows == 0:
        raise InvalidInputError(
            f"{synth_ref} was fitted on every real row: no unseen real rows are left to evaluate on",
            expected="an augmentation made with a holdout (the default --holdout 0.2)",
            received="holdout 0",
            fix=f"re-run keel augment {manifest.dataset}@{manifest.version} ... --holdout 0.2, then evaluate",
        )
    return synth_ref, source, manifest


def _new_synthetic(real_table: Any, synth_table: Any) -> pd.DataFrame:
    """Synthetic rows of the augmented version that the source did not already hold."""
    frame: pd.DataFrame = synth_table.filter(synthetic_mask(synth_table)).to_pandas()
    before: pd.DataFrame = real_table.filter(synthetic_mask(real_table)).to_pandas()
    if len(before) == 0:
        return frame
    keys = pd.util.hash_pandas_object(before[frame.columns], index=False)
    return frame[~pd.util.hash_pandas_object(frame, index=False).isin(set(keys))].reset_index(drop=True)


def _previews(real: pd.DataFrame, synth: pd.DataFrame, columns: list[str]) -> tuple[ColumnPreview, ...]:
    def values(frame: pd.DataFrame, c: str) -> tuple[Any, ...]:
        sample = frame[c].sample(min(len(frame), PREVIEW_ROWS), random_state=0)
        return tuple(None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in sample)

    return tuple(ColumnPreview(c, values(real, c), values(synth, c)) for c in columns[:PREVIEW_COLUMNS])


def evaluate_version(
    ws: Workspace,
    synthetic: str | DatasetRef,
    real: str | DatasetRef | None = None,
    *,
    precision: float = 0.5,
    seed: int = 0,
    progress: Progress | None = None,
) -> AugmentEvaluation:
    progress = progress or NoProgress()
    synth_ref, source, manifest = _sources(ws, synthetic, real)
    datasets: Any = ws.datasets
    config = AugmentConfig(**manifest.config)
    record = datasets.dataset(source.name)
    label, roles = record.label_column, tuple(c for c in (record.id_column, record.time_column) if c)
    progress.stage("reading the versions")
    real_table, synth_table = datasets.read(source), datasets.read(synth_ref)
    real_rows = ~synthetic_mask(real_table)
    holdout = holdout_mask(real_table, label=label, exclude=roles, fraction=config.holdout, seed=config.seed)
    train = real_rows & ~holdout
    target = resolve_target(
        real_table,
        f"{manifest.target_kind}:{config.target}",
        label=label,
        slices=declared_slices(ws),
        real=real_rows,
        where=str(source),
    )
    real_df, synth_df = real_table.to_pandas(), _new_synthetic(real_table, synth_table)
    skip = {c for c in (*roles, label, SYNTHETIC_COLUMN) if c}
    text = _text_column(real_table, config.text, skip) if config.method in TEXT_METHODS else None
    progress.stage("fidelity and privacy")
    fit_real = real_df[target.mask & train].reset_index(drop=True)
    unseen = real_df[target.mask & holdout].reset_index(drop=True)
    require_real(unseen, "the holdout rows")
    if text is not None:
        spec = TableSpec(TEXT_MEASURES, (), ())
        as_numbers = {"r": _text_numbers(fit_real, text), "s": _text_numbers(synth_df, text)}
        fidelity = quality(as_numbers["r"], as_numbers["s"], spec, seed=seed)
        previews = _previews(as_numbers["r"], as_numbers["s"], list(TEXT_MEASURES))
        encode = _tfidf(fit_real[text])
    else:
        keep_label = target.kind == "slice" and config.method == "copula"
        columns = [c for c in real_table.column_names if c not in skip or (keep_label and c == label)]
        spec = classify(real_table, columns)
        fidelity = quality(fit_real, synth_df, spec, seed=seed)
        previews = _previews(fit_real, synth_df, columns)
        encoder = Encoder.fit(fit_real, spec)
        encode = encoder.transform
    detected = detection(_dense(encode(fit_real)), _dense(encode(synth_df)), seed=seed)
    leaks = None
    if len(unseen) >= 2 and len(fit_real) >= 2:
        leaks = privacy(_dense(encode(fit_real)), _dense(encode(unseen)), _dense(encode(synth_df)), seed=seed)
        if text is not None:  # a copy of a text is the same string, not the same bag of words
            copies = synth_df[text].isin(set(fit_real[text].dropna())).mean()
            leaks = replace(leaks, exact_copies=round(float(copies), 6))
    progress.stage("utility on the holdout")
    scores, rare = _utility(
        real_df, synth_df, train, holdout, label, target, text, real_table, skip, precision, seed
    )
    return AugmentEvaluation(
        synth_ref,
        source,
        config.method,
        config.target,
        manifest.target_kind,
        rare,
        len(synth_df),
        int(train.sum()),
        int(holdout.sum()),
        fidelity,
        detected,
        leaks,
        scores,
        manifest.epsilon,
        previews,
    )


def _text_numbers(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    values = frame[text].fillna("").astype(str)
    words = values.map(lambda t: len(t.split()))
    return pd.DataFrame({"words": words, "characters": values.str.len()})


def _tfidf(texts: pd.Series) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), max_features=5000).fit(texts.fillna(""))
    return lambda f: vectorizer.transform(f[texts.name].fillna(""))


def _dense(matrix: Any) -> npt.NDArray[np.float64]:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)


def _utility(
    real_df: pd.DataFrame,
    synth_df: pd.DataFrame,
    train: Any,
    holdout: Any,
    label: str | None,
    target: Any,
    text: str | None,
    table: Any,
    skip: set[str],
    precision: float,
    seed: int,
) -> tuple[tuple[Utility, ...], str | None]:
    if label is None:
        return (), None
    train_df, test_df = real_df[train].reset_index(drop=True), real_df[holdout].reset_index(drop=True)
    counts = train_df[label].astype(str).value_counts()
    rare = target.name if target.kind == "class" else str(counts.index[-1])
    spec = None if text is not None else classify(table, [c for c in table.column_names if c not in skip])
    runs: list[tuple[str, pd.DataFrame, Literal["none", "balanced"]]] = [
        ("real", train_df, "none"),
        ("real, class weights", train_df, "balanced"),
        ("augmented", pd.concat([train_df, synth_df], ignore_index=True), "none"),
    ]
    if synth_df[label].astype(str).nunique() > 1:
        runs.append(("synthetic", synth_df, "none"))
    out = tuple(
        utility(
            name,
            frame,
            test_df,
            label=label,
            rare=rare,
            spec=spec,
            text=text,
            precision=precision,
            weighting=weighting,
            seed=seed,
        )
        for name, frame, weighting in runs
    )
    return out, rare
