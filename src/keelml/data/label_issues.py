"""Likely mislabeled rows: confident learning (cleanlab) on out-of-sample predicted probabilities.

Probabilities come from stratified K-fold cross-validation of a model that fits the data: TF-IDF
and logistic regression when there is text, an ensemble of logistic regression and gradient
boosting on tabular data (averaging two different model families gives better-calibrated
probabilities than either; see benchmarks/results/label_issues.md). Rows are ranked by label
quality (self-confidence), worst first, and the worst 1.2 x cleanlab's confident-joint estimate of
the number of wrong labels are flagged (``filter_by`` selects cleanlab's own filters instead).

Rows that cannot be checked are reported, not dropped silently: unlabeled rows, and classes with
fewer examples than folds (a class with one example cannot be predicted out of sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import InvalidInputError, missing_dependency
from keelml.core.progress import NoProgress, Progress

ModelKind = Literal["auto", "linear", "boosting", "ensemble"]
FilterBy = Literal[
    "estimated_count",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_self_confidence",
    "low_normalized_margin",
]
TEXT_MEAN_LENGTH = 40
MAX_CLASSES = 1000


@dataclass(frozen=True, slots=True)
class LabelIssuesConfig:
    folds: int = 5
    model: ModelKind = "auto"
    filter_by: FilterBy = "estimated_count"
    margin: float = 1.2  # estimated_count flags margin x cleanlab's estimate of the number of issues
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.folds <= 50:
            raise InvalidInputError(
                "cross-validation needs between 2 and 50 folds", received=str(self.folds), fix="--folds 5"
            )
        if self.model not in get_args(ModelKind):
            raise InvalidInputError(
                f"unknown model {self.model!r}", expected=", ".join(get_args(ModelKind)), fix="--model auto"
            )
        if not 0.5 <= self.margin <= 3.0:
            raise InvalidInputError(
                "the margin on the estimated number of issues must be in [0.5, 3]",
                received=str(self.margin),
                fix="leave the default 1.2",
            )
        if self.filter_by not in get_args(FilterBy):
            raise InvalidInputError(
                f"unknown filter {self.filter_by!r}",
                expected=", ".join(get_args(FilterBy)),
                fix="leave the default",
            )


@dataclass(frozen=True, slots=True)
class LabelIssue:
    rank: int
    row: int  # position in the version's read order
    id: Any  # the row's id when the dataset has an id column, else the position
    given: str
    suggested: str
    quality: float  # self-confidence: predicted probability of the given label (low = suspicious)


@dataclass(frozen=True, slots=True)
class LabelIssuesReport:
    dataset: str
    label: str
    rows: int
    checked: int
    classes: tuple[str, ...]
    model: str
    folds: int
    issues: tuple[LabelIssue, ...]
    findings: tuple[str, ...]  # rows or classes that could not be checked, and why
    accuracy: float  # out-of-sample accuracy of the model on the given labels

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "label": self.label,
            "rows": self.rows,
            "checked": self.checked,
            "classes": list(self.classes),
            "model": self.model,
            "folds": self.folds,
            "accuracy": round(self.accuracy, 4),
            "findings": list(self.findings),
            "issues": [
                {
                    "rank": i.rank,
                    "row": i.row,
                    "id": i.id,
                    "given": i.given,
                    "suggested": i.suggested,
                    "quality": round(i.quality, 6),
                }
                for i in self.issues
            ],
        }


def _text_of(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        decoded = [None if v is None else v.decode("utf-8", errors="replace") for v in values.to_pylist()]
        return pa.chunked_array([pa.array(decoded, pa.string())])
    return values


def feature_columns(table: pa.Table, exclude: set[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """(text, categorical, numeric, dropped-with-reason) columns usable as features."""
    text: list[str] = []
    cat: list[str] = []
    num: list[str] = []
    dropped: list[str] = []
    for name in table.column_names:
        if name in exclude:
            continue
        values = _text_of(table.column(name))
        if values.null_count == len(values):
            dropped.append(f"{name} (all missing)")
        elif (
            pa.types.is_boolean(values.type)
            or pa.types.is_integer(values.type)
            or pa.types.is_floating(values.type)
        ):
            num.append(name)
        elif pa.types.is_string(values.type):
            mean = pc.mean(pc.utf8_length(values)).as_py() or 0
            (text if mean > TEXT_MEAN_LENGTH else cat).append(name)
        else:
            dropped.append(f"{name} ({values.type} is not used as a feature)")
    return text, cat, num, dropped


def feature_frame(table: pa.Table, columns: list[str]) -> Any:
    import pandas as pd

    data = {}
    for name in columns:
        values = _text_of(table.column(name))
        if pa.types.is_string(values.type):
            data[name] = pd.Series(values.to_pylist(), dtype=object)
        else:
            data[name] = pd.Series(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False))
    return pd.DataFrame(data)


def build_models(
    text: list[str], cat: list[str], num: list[str], kind: ModelKind, seed: int
) -> dict[str, Any]:
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise missing_dependency("sklearn", "quality", "finding label issues") from exc

    def columns(dense: bool) -> Any:
        parts: list[tuple[str, Any, Any]] = [
            (
                f"tfidf_{c}",
                TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=50_000),
                c,
            )
            for c in text
        ]
        if cat:
            onehot = OneHotEncoder(
                handle_unknown="infrequent_if_exist", max_categories=30, sparse_output=not dense
            )
            parts.append(
                (
                    "categories",
                    make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"), onehot),
                    cat,
                )
            )
        if num:
            parts.append(("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num))
        return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)

    linear = make_pipeline(columns(False), LogisticRegression(max_iter=2000, C=1.0 if not text else 4.0))
    boosting = make_pipeline(columns(True), HistGradientBoostingClassifier(max_iter=100, random_state=seed))
    if kind == "auto":
        kind = "linear" if text else "ensemble"
    if kind == "linear":
        return {"logistic regression": linear}
    if kind == "boosting":
        return {"gradient boosting": boosting}
    return {"logistic regression": linear, "gradient boosting": boosting}


def out_of_sample_probabilities(
    frame: Any,
    labels: npt.NDArray[np.int64],
    models: dict[str, Any],
    *,
    folds: int,
    seed: int,
    progress: Progress | None = None,
) -> npt.NDArray[np.float64]:
    """Stratified K-fold predicted probabilities, averaged over ``models``."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    progress = progress or NoProgress()
    k = int(labels.max()) + 1
    probs = np.zeros((len(labels), k))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    progress.stage("cross-validating", total=folds * len(models))
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        for model in models.values():
            # One OpenMP thread: on small data (and busy machines) gradient boosting's thread pool
            # spins more than it works (digits: 3.6 s CPU with 1 thread, 23 s with 2 on 2 busy cores).
            with threadpool_limits(limits=1, user_api="openmp"):
                fitted = clone(model).fit(frame.iloc[train], labels[train])
            part = np.zeros((len(test), k))
            part[:, fitted.classes_] = fitted.predict_proba(frame.iloc[test])
            probs[test] += part / len(models)
            progress.advance()
    return probs


def rank_issues(
    labels: npt.NDArray[np.int64], probs: npt.NDArray[np.float64], filter_by: FilterBy, margin: float = 1.2
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Flagged row indices, worst first, and every row's label quality (self-confidence).

    ``estimated_count`` ranks every row by self-confidence and flags the worst ``margin`` times
    cleanlab's confident-joint estimate of how many labels are wrong (the margin trades a little
    precision for recall: a review queue should not miss errors). Any other value is passed to
    cleanlab's ``find_label_issues(filter_by=...)``.
    """
    from cleanlab.count import num_label_issues
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    quality = np.asarray(get_label_quality_scores(labels, probs, method="self_confidence"), dtype=np.float64)
    if filter_by == "estimated_count":
        count = min(len(labels), int(np.ceil(margin * num_label_issues(labels, probs))))
        return np.argsort(quality, kind="stable")[:count].astype(np.int64), quality
    flagged = np.asarray(find_label_issues(labels, probs, filter_by=filter_by), dtype=bool)
    index = np.flatnonzero(flagged)
    return index[np.argsort(quality[index], kind="stable")].astype(np.int64), quality


def find_label_issues_in(
    table: pa.Table,
    label: str,
    *,
    id: str | None = None,
    exclude: tuple[str, ...] = (),
    dataset: str = "python:arrow",
    config: LabelIssuesConfig | None = None,
    progress: Progress | None = None,
) -> LabelIssuesReport:
    """Rank likely label errors in ``table`` (all rows are read: models need them)."""
    config = config or LabelIssuesConfig()
    if label not in table.column_names:
        raise InvalidInputError(
            f"{dataset} has no label column {label!r}", fix="add the dataset with --label COLUMN"
        )
    raw = pc.cast(_text_of(table.column(label)), pa.string()).to_pylist()
    findings: list[str] = []
    unlabeled = sum(v is None for v in raw)
    if unlabeled:
        findings.append(f"{unlabeled:,} unlabeled rows are not checked")
    counts: dict[str, int] = {}
    for value in raw:
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    labelled = len(raw) - unlabeled
    if len(counts) > min(MAX_CLASSES, max(2, labelled // 2)):
        raise InvalidInputError(
            f"the label {label!r} of {dataset} has {len(counts):,} classes for {labelled:,} labelled rows",
            expected="a classification label with a few examples per class",
            received=f"{len(counts):,} distinct values",
            fix="check that --label names the class column (not an id, text or a continuous target)",
        )
    rare = sorted(c for c, n in counts.items() if n < config.folds)
    if rare:
        shown = ", ".join(f"{c} ({counts[c]})" for c in rare[:10])
        findings.append(
            f"{len(rare)} classes have fewer than {config.folds} examples and are not checked: "
            f"{shown}; review them by hand"
        )
    classes = tuple(sorted(c for c in counts if c not in rare))
    if len(classes) < 2:
        raise InvalidInputError(
            f"label issues need at least two classes with {config.folds} or more examples each",
            expected="two or more classes",
            received=", ".join(f"{c}: {n}" for c, n in sorted(counts.items())[:10]) or "no labelled rows",
            fix="label more rows of other classes, or use --folds 2 for very small classes",
        )
    code = {c: i for i, c in enumerate(classes)}
    keep = np.array([v is not None and v in code for v in raw])
    rows = np.flatnonzero(keep)
    labels = np.array([code[raw[i]] for i in rows], dtype=np.int64)
    text, cat, num, dropped = feature_columns(table, {label, *exclude} | ({id} if id else set()))
    findings += [f"column {d}" for d in dropped]
    if not (text or cat or num):
        raise InvalidInputError(
            f"{dataset} has no column usable as a feature",
            expected="numeric, categorical or text columns besides the label and id",
            received=", ".join(dropped) or "only the label and id",
            fix="add feature columns to the dataset",
        )
    models = build_models(text, cat, num, config.model, config.seed)
    frame = feature_frame(table.take(pa.array(rows)), text + cat + num)
    probs = out_of_sample_probabilities(
        frame, labels, models, folds=config.folds, seed=config.seed, progress=progress
    )
    order, quality = rank_issues(labels, probs, config.filter_by, config.margin)
    ids = table.column(id).take(pa.array(rows)).to_pylist() if id else rows.tolist()
    issues = tuple(
        LabelIssue(
            rank + 1,
            int(rows[i]),
            ids[i],
            classes[labels[i]],
            classes[int(probs[i].argmax())],
            float(quality[i]),
        )
        for rank, i in enumerate(order)
    )
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    return LabelIssuesReport(
        dataset,
        label,
        table.num_rows,
        len(rows),
        classes,
        " + ".join(models),
        config.folds,
        issues,
        tuple(findings),
        accuracy,
    )
