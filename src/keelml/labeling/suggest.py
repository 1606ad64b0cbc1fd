"""A dataset seen as a labeling pool, and the model outputs ``suggest`` feeds a strategy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import InvalidInputError, SourceNotFoundError, UnreadableSourceError
from keelml.core.refs import DatasetRef
from keelml.labeling.models import LEARNERS, Featurizer, infer_features, make_learner, pool_outputs
from keelml.labeling.protocol import ModelOutputs, Strategy
from keelml.labeling.strategies import HybridStrategy

PROBABILITY_FORMATS = (".csv", ".parquet", ".jsonl", ".ndjson")


def _missing(texts: list[str | None]) -> np.ndarray[Any, Any]:
    return np.array([t is None or not t.strip() for t in texts], dtype=bool)


@dataclass(frozen=True)
class DatasetView:
    """The latest version of a dataset with an id and a label column; unlabeled = label missing
    (null or blank)."""

    ref: DatasetRef
    table: pa.Table
    id_column: str
    label_column: str
    time_column: str | None
    label_texts: list[str | None] = field(repr=False)

    @classmethod
    def load(cls, datasets: Any, name: str) -> DatasetView:
        record = datasets.dataset(name)
        if record.label_column is None or record.id_column is None:
            role = "label" if record.label_column is None else "id"
            raise InvalidInputError(
                f"{name} has no {role} column, which labeling needs",
                expected="a dataset added with --label COLUMN and --id COLUMN",
                received=f"label={record.label_column!r}, id={record.id_column!r}",
                fix=f"re-add it with roles, e.g. `keel data add {name} FILE --label label --id id`",
            )
        ref = datasets.ref(name)
        table = datasets.read(ref)
        texts = pc.cast(table.column(record.label_column), pa.string()).to_pylist()
        return cls(ref, table, record.id_column, record.label_column, record.time_column, texts)

    @property
    def label_type(self) -> pa.DataType:
        return self.table.schema.field(self.label_column).type

    @property
    def labeled_mask(self) -> np.ndarray[Any, Any]:
        return ~_missing(self.label_texts)

    @property
    def unlabeled_index(self) -> np.ndarray[Any, Any]:
        return np.flatnonzero(~self.labeled_mask)

    @property
    def classes(self) -> set[str]:
        return {t for t in self.label_texts if t is not None and t.strip()}

    @property
    def id_text_array(self) -> pa.Array:
        return pc.cast(self.table.column(self.id_column).combine_chunks(), pa.string())

    @property
    def id_texts_list(self) -> list[str]:
        return [str(v) for v in self.id_text_array.to_pylist()]

    @property
    def id_texts(self) -> set[str]:
        return set(self.id_texts_list)


def _read_probabilities(path: Path) -> pa.Table:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    if not path.is_file():
        raise SourceNotFoundError(
            f"model {str(path)!r} is neither a built-in model nor an existing file",
            expected=f"one of {', '.join(LEARNERS)}, or a probabilities file "
            f"({', '.join(PROBABILITY_FORMATS)})",
            received=str(path),
            fix="check the path, or use --model logreg",
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pcsv.read_csv(path)
        if suffix in (".jsonl", ".ndjson"):
            return pjson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableSourceError(
            f"cannot read the probabilities file {path.name}",
            expected="the id column plus one numeric column per class",
            received=str(exc).splitlines()[0],
            fix="write it with pandas/pyarrow as Parquet or CSV",
        ) from exc
    raise InvalidInputError(
        f"cannot use {path.name} as a model",
        expected=f"a probabilities file ending in {', '.join(PROBABILITY_FORMATS)}",
        received=suffix or "no extension",
        fix="save the probabilities as Parquet",
    )


def _file_outputs(view: DatasetView, path: Path) -> tuple[ModelOutputs, list[str]]:
    table = _read_probabilities(path)
    if view.id_column not in table.column_names:
        raise InvalidInputError(
            f"the probabilities file has no id column {view.id_column!r}",
            expected=f"{view.id_column} plus one column per class",
            received=", ".join(table.column_names),
            fix=f"add the {view.id_column} column so each row of probabilities can be matched",
        )
    classes = [c for c in table.column_names if c != view.id_column]
    file_ids = pc.cast(table.column(view.id_column).combine_chunks(), pa.string())
    pool_ids = view.id_text_array.take(pa.array(view.unlabeled_index))
    position = pc.index_in(pool_ids, value_set=file_ids)
    missing = pool_ids.filter(pc.is_null(position))
    if len(missing):
        raise InvalidInputError(
            f"the probabilities file lacks {len(missing)} unlabeled rows of {view.ref}",
            expected="probabilities for every unlabeled row",
            received=f"e.g. ids {missing[:5].to_pylist()} missing",
            fix="score every unlabeled row (`keel data export` the dataset to get them)",
        )
    matrix = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in classes])
    return ModelOutputs(probs=matrix[position.to_numpy(zero_copy_only=False)]), classes


def model_outputs(
    view: DatasetView, strategy: Strategy, model: str | Path | None, *, seed: int = 0
) -> tuple[ModelOutputs, str, str | None, list[str]]:
    """The outputs for the pool, the model's name, a note (cold start), and the class order."""
    if model is not None and str(model) not in LEARNERS:
        outputs, classes = _file_outputs(view, Path(model))
        return outputs, f"file:{Path(model).name}", None, classes
    kind = "logreg" if model is None else str(model)
    labeled = view.labeled_mask
    pool = ~labeled
    exclude = {view.id_column, view.label_column} | ({view.time_column} if view.time_column else set())
    featurizer = Featurizer(infer_features(view.table, exclude))
    x = featurizer.fit_transform(view.table)
    classes = sorted(view.classes)
    codes = {c: i for i, c in enumerate(classes)}
    if len(classes) < 2:
        dense = featurizer.embed(x)
        note = (
            f"cold start: {int(labeled.sum())} labeled rows in {len(classes)} class(es), too few to train "
            "a model; picking a diverse batch (k-center on the features) instead"
        )
        return ModelOutputs(embeddings=dense[pool], labeled_embeddings=dense[labeled]), "none", note, classes
    y = np.array([codes[str(t)] for t, keep in zip(view.label_texts, labeled, strict=True) if keep])
    wants_embeddings = "embeddings" in strategy.requires or isinstance(strategy, HybridStrategy)
    emb = featurizer.embed(x) if (wants_embeddings or kind == "mlp") else None
    inputs: Any = emb if kind == "mlp" else x
    learner = make_learner(kind, len(classes), seed)  # type: ignore[arg-type]
    learner.fit(inputs[labeled], y)
    outputs = pool_outputs(
        learner,
        inputs[pool],
        strategy.requires,
        None if emb is None or not wants_embeddings else emb[pool],
        None if emb is None or not wants_embeddings else emb[labeled],
    )
    return outputs, kind, None, classes
